"""The ORM tables. Rows here never leave ``db/``: repositories turn them into DTOs (``db.dto``).

Times are stored as naive UTC (``UTCDateTime``) and come back timezone-aware. JSON values are
stored as text, encoded and decoded by the repositories. ``reviews`` and ``audit_log`` are
append-only: nothing in ``db/`` updates or deletes their rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERDICTS = ("PASS", "FAIL", "REVIEW", "NOT_INSPECTED")
REVIEW_ACTIONS = ("confirm", "override", "false_detection", "missed_defect")
ROLES = ("operator", "qc", "admin")
ZERO_HASH = "0" * 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def to_utc_naive(value: dt.datetime) -> dt.datetime:
    """An aware time converted to naive UTC; a naive time is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC on every backend and returned timezone-aware (UTC)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else to_utc_naive(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    # named constraints, so that alembic's batch mode on SQLite can find them again
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class DatabaseInfo(Base):
    """Facts about the database itself; ``db_id`` (made once by migration 0002) names its image folder."""

    __tablename__ = "database_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    classes: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    recipe: Mapped[str] = mapped_column(Text, default="{}")
    recipe_name: Mapped[str] = mapped_column(String(200), default="")
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    station: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(50), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the process that owns the run while it is open: closed as interrupted only once provably gone
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    process_started: Mapped[float | None] = mapped_column(Float, nullable=True)


class InspectionRecord(Base):
    """One judged part. Written once, never updated: reviews live in their own table."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # indexed by ix_inspections_latest
    verdict: Mapped[str] = mapped_column(String(16))  # indexed by ix_inspections_verdict_created
    reasons: Mapped[str] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float)
    image_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    frame_name: Mapped[str] = mapped_column(Text, default="")
    model_sha256: Mapped[str] = mapped_column(String(64), default="")
    # made when the part was inspected: a forward retried after a lost acknowledgement is not doubled
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # trust (issue 12): the recipe that judged the part, and the seal over what decides its verdict
    recipe_sha256: Mapped[str] = mapped_column(String(64), default="")
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the line (issue 13): the PLC's part id (unique within a run) and the trigger's other keys as JSON
    part_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    trigger: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the plant's day (issue 14): what the line made, in which lot and work order, in which shift
    # ("2026-11-30/A", the date the shift started); NULL before it was recorded
    product: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lot: Mapped[str | None] = mapped_column(String(100), nullable=True)
    work_order: Mapped[str | None] = mapped_column(String(100), nullable=True)
    shift: Mapped[str | None] = mapped_column(String(40), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("verdict", VERDICTS), name="verdict"),
        # the review filters and reports by product, lot and shift, newest first
        Index("ix_inspections_product_created", product, created_at, id),
        Index("ix_inspections_lot_created", lot, created_at, id),
        Index("ix_inspections_shift_created", shift, created_at, id),
        Index("ix_inspections_run_part", run_id, part_id, unique=True),
        Index("ix_inspections_uid", uid, unique=True),
        CheckConstraint("seq >= 0", name="seq"),
        CheckConstraint("latency_ms >= 0", name="latency"),
        # newest first (the review table's default order) and its keyset continuation
        Index("ix_inspections_latest", created_at.desc(), id.desc()),
        # "by verdict", newest first; id makes the keyset order explicit on PostgreSQL
        Index("ix_inspections_verdict_created", verdict, created_at, id),
        # one run, newest first; also serves last_seq
        Index("ix_inspections_run_created", run_id, created_at, id),
    )


class DetectionRecord(Base):
    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"), index=True)
    # a copy of the inspection's created_at (both never change): "latest with a scratch" walks one index
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cls: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        # by label, newest first: a page of "inspections with a hole" costs a page, however rare holes are
        Index("ix_detections_label", label, created_at, inspection_id),
    )


class Review(Base):
    """A QC decision about one inspection. Append-only; the latest one gives the final verdict."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"))
    # a copy of the inspection's created_at, so that reviewed rows are found newest first by index
    inspection_created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reviewer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    old_verdict: Mapped[str] = mapped_column(String(16))
    new_verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint(_in("action", REVIEW_ACTIONS), name="action"),
        CheckConstraint(_in("old_verdict", VERDICTS), name="old_verdict"),
        CheckConstraint(_in("new_verdict", VERDICTS), name="new_verdict"),
        # the latest review of an inspection is the last entry of its range
        Index("ix_reviews_inspection", inspection_id, id),
        # reviewed inspections newest first, in all or by the verdict a review gave
        Index("ix_reviews_created", inspection_created_at, inspection_id),
        Index("ix_reviews_verdict_created", new_verdict, inspection_created_at, inspection_id),
    )


class AuditEntry(Base):
    """One hash-chained line of the audit trail. Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # a plant (issue 30): the station whose chain the entry belongs to (its anchor is that station's row in
    # ``stations``, signed with its key); NULL: the single-station chain anchored by ``audit_anchor``
    station: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (Index("ix_audit_log_station", station, id),)


class AuditAnchor(Base):
    """One row: the audit trail's length and last hash, so that a deleted tail is noticed."""

    __tablename__ = "audit_anchor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=ZERO_HASH)
    mac: Mapped[str] = mapped_column(String(64), default="")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recovery_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)


class StationKey(Base):
    """A station of the plant (issue 30): its Ed25519 public key, registered by an admin, and the end of its audit
    chain (count, last entry, last hash), signed by the station itself, so that a deleted tail shows."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=ZERO_HASH)
    anchor_sig: Mapped[str | None] = mapped_column(Text, nullable=True)


class StationStatus(Base):
    """What each station last said of itself (issue 30): its outbox backlog, run and model, for the plant view.
    Not part of the record (not signed, overwritten): a station cut off from the server cannot update it, which
    the age of ``reported_at`` shows."""

    __tablename__ = "station_status"

    station: Mapped[str] = mapped_column(String(200), primary_key=True)
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    peak: Mapped[int] = mapped_column(Integer, default=0)  # the largest backlog of its current run
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(20), default="running")  # "running" or "ended"
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


TRUST_KINDS = ("model", "recipe")


class TrustedFile(Base):
    """A model or recipe hash a signed-in user trusted on this station; sealed, and audited when added."""

    __tablename__ = "trusted_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text, default="")
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (CheckConstraint(_in("kind", TRUST_KINDS), name="kind"),
                      UniqueConstraint("kind", "sha256", name="uq_trusted_files_kind_sha256"))


ALARM_RULES = ("fail_streak", "low_yield", "not_inspected", "model_refused")


class AlarmRecord(Base):
    """An alarm a rule raised on a station, and who acknowledged it when (sealed, audited both times)."""

    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    rule: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (CheckConstraint(_in("rule", ALARM_RULES), name="rule"),
                      Index("ix_alarms_station_raised", station, raised_at))


PROMOTION_ACTIONS = ("promote", "rollback")


class ModelPromotion(Base):
    """Which model judges a station's parts from when on (issue 15). Append-only and sealed: the latest row of a
    station whose seal holds names its active model; before any row, the configuration's model is active."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200), default="")
    previous_sha256: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mac: Mapped[str] = mapped_column(String(64), default="")
    # a plant (issue 30): the station whose Ed25519 key signed the row, and the signature (NULL: HMAC-sealed)
    signer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sig: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (CheckConstraint(_in("action", PROMOTION_ACTIONS), name="action"),
                      Index("ix_model_promotions_station", station, id))


class ShadowResult(Base):
    """A challenger's verdict on a live part, beside the active model's (shadow mode). Never a part's verdict."""

    __tablename__ = "shadow_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int] = mapped_column(Integer)
    inspection_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the part waits in the outbox
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    model_sha256: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    active_sha256: Mapped[str] = mapped_column(String(64))
    active_verdict: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    latency_ms: Mapped[float] = mapped_column(Float)

    __table_args__ = (CheckConstraint(_in("verdict", VERDICTS), name="verdict"),
                      CheckConstraint(_in("active_verdict", VERDICTS), name="active_verdict"),
                      Index("ix_shadow_results_station", station, model_sha256, id))
