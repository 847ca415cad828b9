"""Repositories: each takes a Session, never commits, and returns DTOs from ``db.dto``."""

from db.repositories.alarms import AlarmRepo
from db.repositories.audit import AuditRepo, entry_hash
from db.repositories.inspections import InspectionRepo
from db.repositories.models import PromotionRepo, ShadowRepo, trusted_model_files
from db.repositories.queries import DayFilter, InspectionFilter
from db.repositories.reviews import ReviewRepo
from db.repositories.runs import END_REASONS, ModelRepo, RunRepo
from db.repositories.stations import StationDTO, StationRepo
from db.repositories.trust import TrustRepo
from db.repositories.users import UserRepo, authorize

__all__ = [
    "AlarmRepo", "AuditRepo", "DayFilter", "END_REASONS", "InspectionFilter", "InspectionRepo", "ModelRepo",
    "PromotionRepo", "ReviewRepo", "RunRepo", "ShadowRepo", "StationDTO", "StationRepo", "TrustRepo", "UserRepo",
    "authorize", "entry_hash",
    "trusted_model_files",
]
