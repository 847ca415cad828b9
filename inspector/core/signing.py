"""A station's own Ed25519 key pair (issue 30): each station of a plant signs the rows it writes with its own
private key, kept owner-only in its data folder; anyone checks them with the public keys the database holds.

No shared secret: a stolen panel PC can sign as that one station, not as any other (the README's "One plant,
many stations"). The payload signed is the canonical JSON the HMAC seals use (``integrity.seal``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inspector.core.errors import StorageError

log = logging.getLogger(__name__)

PRIVATE_FILE = "station.key"
PUBLIC_FILE = "station.pub"


def payload(*fields: Any) -> bytes:
    """The canonical bytes of ``fields`` (the same JSON as the HMAC seals)."""
    return json.dumps(list(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def fingerprint(public_hex: str) -> str:
    """A short name for a public key to compare by eye: the first 16 hex digits of its sha256."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


@dataclass(frozen=True)
class StationSigner:
    """Signs as station ``name`` with its private key (held in memory only by the station that owns it)."""

    name: str
    key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("expected a station name, got ''")

    @property
    def public_hex(self) -> str:
        return public_hex(self.key.public_key())

    def sign(self, *fields: Any) -> str:
        """Base64 Ed25519 signature over ``fields``."""
        return base64.b64encode(self.key.sign(payload(*fields))).decode("ascii")


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verify(public: str, signature: str | None, *fields: Any) -> bool:
    """True when ``signature`` (base64) is ``public``'s (hex) over ``fields``."""
    if not signature or not public:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
        key.verify(base64.b64decode(signature, validate=True), payload(*fields))
        return True
    except (InvalidSignature, ValueError):
        return False


def private_path(home: Path | None = None) -> Path:
    from inspector.core.home import data_home

    return (home or data_home()) / PRIVATE_FILE


def public_path(home: Path | None = None) -> Path:
    from inspector.core.home import data_home

    return (home or data_home()) / PUBLIC_FILE


def has_key(home: Path | None = None) -> bool:
    return private_path(home).is_file()


def ensure_key_pair(home: Path | None = None) -> Path:
    """This data folder's key pair, made on first use (private key owner-only); returns the public key file."""
    priv, pub = private_path(home), public_path(home)
    if not priv.is_file():
        _create(priv)
    key = load_private(home)
    text = key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    if not pub.is_file() or pub.read_text() != text:  # the public half can always be made again from the private
        tmp = pub.with_name(pub.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(pub)
    return pub


def _create(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs stands
        return
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    log.warning("created this station's signing key %s: back it up; its public half goes to the plant's database "
                "with 'inspector station add'", path)


def load_private(home: Path | None = None) -> Ed25519PrivateKey:
    path = private_path(home)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise StorageError(f"This station's signing key {path} is missing: restore it from the backup, or make a "
                           "new one with 'inspector station key' and register it again.") from None
    except (OSError, ValueError, TypeError) as e:
        raise StorageError(f"This station's signing key {path} is unreadable ({e}); restore it from the "
                           "backup.") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise StorageError(f"This station's signing key {path} is not an Ed25519 key; make one with "
                           "'inspector station key'.")
    return key


def read_public(path: Path) -> str:
    """A public key file (PEM, as ``station key`` writes it, or 64 hex digits) as hex."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise StorageError(f"Cannot read the public key file {path} ({e.strerror or e}); give the file that "
                           "'inspector station key' printed.") from e
    text = data.decode("ascii", errors="replace").strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        if b"PRIVATE KEY" in data:
            raise StorageError(f"{path} is a private key: give the public one (station.pub), never the private "
                               "key.") from e
        raise StorageError(f"{path} is not a public key file ({e}); give the file that 'inspector station key' "
                           "printed.") from e
    if not isinstance(key, Ed25519PublicKey):
        raise StorageError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key.")
    return public_hex(key)
