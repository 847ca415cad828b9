"""The exceptions a user can act on: each message is one clear sentence with what to do."""

from __future__ import annotations


class InspectorError(Exception):
    """Base of every error that reaches the user as a message, not a traceback."""


class ConfigError(InspectorError):
    """A configuration or recipe value is wrong."""


class SourceError(InspectorError):
    """A frame source cannot be opened."""


class SourceIncomplete(SourceError):
    """A source ended before all it declared was read (a video cut short or damaged)."""


class CameraError(SourceError):
    """A camera or stream failed and could not be brought back."""


class ModelError(InspectorError):
    """A model file is missing, corrupt, tampered with or not registered."""


class DatasetError(InspectorError):
    """A data set is missing, malformed or empty."""


class StorageError(InspectorError):
    """The database or the image folder cannot be written (locked, full, read-only)."""


class PermissionDenied(InspectorError):
    """The current user's role does not allow this action."""
