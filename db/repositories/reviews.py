"""QC reviews: appended, never edited; the inspection itself is never touched. Each one is audited."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.dto import ReviewDTO
from db.repositories._common import dumps, review_dto, utcnow, verdict
from db.repositories.audit import AuditRepo, bind_row
from db.repositories.queries import refused_reviews
from db.repositories.users import authorize
from db.schema import REVIEW_ACTIONS, DetectionRecord, InspectionRecord, Review
from db.seal import review_fields
from inspector.core.auth import Actor
from inspector.core.reviewing import UNDOES, standing
from inspector.core.types import Verdict

log = logging.getLogger(__name__)


class ReviewRepo:
    @staticmethod
    def add(session: Session, inspection_id: int, reviewer: Actor, action: str,
            new_verdict: Verdict | str | None = None, reason: str = "",
            detail: dict[str, Any] | None = None) -> ReviewDTO:
        """Record a review of one inspection and its audit entry.

        ``action``: "confirm" (keeps the verdict), "override" (needs ``new_verdict`` and a reason),
        "false_detection" / "missed_defect" (``detail`` names the detection id or the drawn box
        ``{label, x1, y1, x2, y2}``; ``new_verdict`` optional: a false detection keeps the verdict, a missed
        defect makes the part FAIL, so that a box drawn on a PASS part is an escape). ``old_verdict`` is the
        final verdict before this review. ValueError for a rule broken, LookupError for an unknown inspection.
        """
        if action not in REVIEW_ACTIONS:
            raise ValueError(f"expected a review action among {list(REVIEW_ACTIONS)}, got {action!r}")
        if not isinstance(reviewer, Actor):
            raise ValueError(f"expected the reviewing Actor (name and role), got {reviewer!r}")
        # the role comes from the users table, not from the Actor the caller built
        reviewer = authorize(session, reviewer, "override" if action == "override" else "review",
                             fresh_install=False)
        reason = (reason or "").strip()
        if action == "override" and not reason:
            raise ValueError("expected a reason for an override, got an empty one")
        if action == "override" and new_verdict is None:
            raise ValueError("expected the new verdict of an override, got None")
        created = session.execute(select(InspectionRecord.created_at)
                                  .where(InspectionRecord.id == inspection_id)).scalar()
        if created is None:
            raise LookupError(f"no inspection with id {inspection_id}")
        old = ReviewRepo.final_verdict(session, inspection_id)
        # a defect QC drew is a defect: the part fails (on a machine-PASS part: an escape), unless told otherwise
        default = Verdict.FAIL if action == "missed_defect" else old
        new = default if new_verdict is None else verdict(new_verdict)
        if action == "confirm" and new != old:
            raise ValueError(f"expected a confirm to keep the verdict {old.value}, got {new.value}: use an override")
        if action == "confirm" and old == Verdict.REVIEW:
            raise ValueError("a REVIEW part needs a decision, not a confirm: override it to PASS or FAIL with a reason")
        if action == "override" and new == old:
            raise ValueError(f"the part is already {old.value}: an override to {new.value} would change nothing")
        if action == "false_detection":
            ReviewRepo._check_open_box(session, inspection_id, (detail or {}).get("detection_id"))
        return ReviewRepo._append(session, inspection_id, created, reviewer, action, old, new, reason, detail or {})

    @staticmethod
    def _append(session: Session, inspection_id: int, created: Any, reviewer: Actor, action: str, old: Verdict,
                new: Verdict, reason: str, detail: dict[str, Any]) -> ReviewDTO:
        review = Review(inspection_id=inspection_id, inspection_created_at=created, reviewer=reviewer.name,
                        created_at=utcnow(), action=action, old_verdict=old.value, new_verdict=new.value,
                        reason=reason, detail=dumps(detail))
        session.add(review)
        bound = bind_row(session, review_fields, review)
        AuditRepo.append(session, actor=reviewer.name, action=f"review.{action}", target=f"inspection:{inspection_id}",
                         detail={"review_id": review.id, "old_verdict": old.value, "new_verdict": new.value,
                                 "reason": reason, "detail": detail, **bound})
        return review_dto(review)

    @staticmethod
    def undo_last(session: Session, inspection_id: int, reviewer: Actor) -> ReviewDTO:
        """Take back one's own last review of this inspection with a new record (the same action, its
        ``detail`` naming the review undone; the verdict back to what it was). Only the inspection's
        latest review may be undone, and only by who made it; ValueError otherwise."""
        if not isinstance(reviewer, Actor):
            raise ValueError(f"expected the reviewing Actor (name and role), got {reviewer!r}")
        reviews = [r for r in ReviewRepo.for_inspection(session, inspection_id) if r.counts]
        if not reviews:
            raise ValueError(f"inspection {inspection_id} has no review to undo")
        last = reviews[-1]
        if UNDOES in last.detail:
            raise ValueError("the last review of this part is already an undo; nothing more to undo")
        reviewer = authorize(session, reviewer, "override" if last.action == "override" else "review",
                             fresh_install=False)
        if last.reviewer != reviewer.name:
            raise ValueError(f"the last review of this part is {last.reviewer}'s: only they can undo it")
        created = session.execute(select(InspectionRecord.created_at)
                                  .where(InspectionRecord.id == inspection_id)).scalar()
        detail = {**{k: v for k, v in last.detail.items() if k == "detection_id"}, UNDOES: last.id}
        return ReviewRepo._append(session, inspection_id, created, reviewer, last.action, last.new_verdict,
                                  last.old_verdict, f"undo of review {last.id}", detail)

    @staticmethod
    def _check_open_box(session: Session, inspection_id: int, detection_id: Any) -> None:
        """A false detection names a box of this inspection that is not marked false already."""
        if not isinstance(detection_id, int):
            raise ValueError(f"expected the detection id of a false detection, got {detection_id!r}")
        owner = session.execute(select(DetectionRecord.inspection_id)
                                .where(DetectionRecord.id == detection_id)).scalar()
        if owner != inspection_id:
            raise ValueError(f"expected a box of inspection {inspection_id}, got detection {detection_id}")
        for r in standing(r for r in ReviewRepo.for_inspection(session, inspection_id) if r.counts):
            if r.action == "false_detection" and r.detail.get("detection_id") == detection_id:
                raise ValueError(f"box {detection_id} is already marked as a false detection")

    @staticmethod
    def final_verdict(session: Session, inspection_id: int) -> Verdict:
        """The latest review's new verdict, else the machine's; LookupError for an unknown inspection. A review
        whose seal fails (changed, or copied in from elsewhere: issue 24) is skipped and logged, as on every
        screen and report (``refused_reviews``)."""
        refused = refused_reviews(session)
        q = select(Review).where(Review.inspection_id == inspection_id).order_by(Review.id.desc())
        for review in session.scalars(q):
            if review.id not in refused:
                return Verdict(review.new_verdict)
            log.warning("review %d of inspection %d was changed or added outside Inspector: not counted", review.id,
                        inspection_id)
        machine = session.execute(select(InspectionRecord.verdict)
                                  .where(InspectionRecord.id == inspection_id)).scalar()
        if machine is None:
            raise LookupError(f"no inspection with id {inspection_id}")
        return Verdict(machine)

    @staticmethod
    def for_inspection(session: Session, inspection_id: int) -> list[ReviewDTO]:
        """Oldest first; a review that does not count (``refused_reviews``) has ``counts`` False."""
        refused = refused_reviews(session)
        q = select(Review).where(Review.inspection_id == inspection_id).order_by(Review.id)
        return [review_dto(r, r.id not in refused) for r in session.scalars(q)]
