"""Persistence for Inspector: SQLite (WAL) by default, PostgreSQL by URL; repositories that return DTOs.

Build the engine from a composition root with ``open_database(url)``, make sessions with
``session_factory(engine)``, and own each transaction with ``with session.begin():``.
"""

from db.dto import (
    AlarmDTO,
    AuditEntryDTO,
    AuditReport,
    DetectionDTO,
    InspectionDetail,
    InspectionRow,
    ModelVersionDTO,
    PageCursor,
    ReviewDTO,
    RunDTO,
    UserDTO,
    VerdictCounts,
)
from db.engine import make_engine, open_database, session_factory
from db.failures import mask_url
from db.repositories import (
    AlarmRepo,
    AuditRepo,
    DayFilter,
    InspectionFilter,
    InspectionRepo,
    ModelRepo,
    PromotionRepo,
    ReviewRepo,
    RunRepo,
    ShadowRepo,
    TrustRepo,
    UserRepo,
    authorize,
    trusted_model_files,
)
from db.sink import DbWriter, ImageStore

__all__ = [
    "AlarmDTO", "AlarmRepo", "AuditEntryDTO", "AuditRepo", "AuditReport", "DayFilter", "DbWriter", "DetectionDTO",
    "ImageStore", "InspectionDetail", "InspectionFilter", "InspectionRepo", "InspectionRow", "ModelRepo",
    "ModelVersionDTO", "PageCursor", "PromotionRepo", "ReviewDTO", "ReviewRepo", "RunDTO", "RunRepo", "ShadowRepo",
    "TrustRepo", "UserDTO", "UserRepo", "VerdictCounts", "authorize", "make_engine", "mask_url", "open_database",
    "session_factory", "trusted_model_files",
]
