"""Ed25519 signing keys for releases: generate, save, load, fingerprint.

The private key is a PKCS#8 PEM file readable only by its owner (mode
0600), optionally encrypted with a passphrase; the public key is a PEM
SubjectPublicKeyInfo file that can be handed to every school. A key is
named by its fingerprint: the first 16 hex digits of the SHA-256 of the
raw 32-byte public key, short enough to read out over the phone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from itembank.errors import KeyFileError

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


@dataclass(frozen=True)
class KeyFiles:
    private_path: Path
    public_path: Path
    fingerprint: str


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key_files(name: str, out_dir: Path, passphrase: bytes | None = None) -> KeyFiles:
    """Write ``out_dir/NAME.key`` (0600) and ``out_dir/NAME.pub``; never overwrite."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise KeyFileError("bad-name", f"key name '{name}': use a plain name such as exam-board")
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / f"{name}{PRIVATE_SUFFIX}"
    public_path = out_dir / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError("exists", f"{path} already exists: choose another name, or move the old key away")
    private_key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    # Create the file with mode 0600 from the start, so the key is never
    # readable by others, not even for a moment.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # in case the umask took bits away
        f.write(pem)
    public_key = private_key.public_key()
    public_path.write_bytes(public_key_pem(public_key))
    return KeyFiles(private_path, public_path, fingerprint(public_key))


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as e:
        # cryptography says TypeError for "encrypted but no password" and
        # for "password given but the key is not encrypted".
        if passphrase:
            raise KeyFileError("not-encrypted", f"{path} is not protected by a passphrase: leave it out") from e
        raise KeyFileError(
            "passphrase-needed",
            f"{path} is protected by a passphrase: give it with --passphrase-file",
        ) from e
    except ValueError as e:
        if passphrase and b"ENCRYPTED" in data:
            raise KeyFileError("wrong-passphrase", f"wrong passphrase for {path}: check the passphrase file") from e
        raise KeyFileError(
            "not-a-key",
            f"{path} is not a PEM private key (expected a file made by cbt keys generate)",
        ) from e
    except Exception as e:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise KeyFileError("not-a-key", f"{path} cannot be read as a private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        kind = type(key).__name__.removeprefix("_")
        raise KeyFileError(
            "not-ed25519",
            f"{path} is not an Ed25519 key ({kind}): make one with cbt keys generate",
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    return public_key_from_pem(_read(path, "public key"), str(path))


def public_key_from_pem(data: bytes, label: str = "public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as e:  # ValueError or UnsupportedAlgorithm, same meaning here
        raise KeyFileError(
            "not-a-key",
            f"{label} is not a PEM public key (expected a .pub file made by cbt keys generate)",
        ) from e
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("not-ed25519", f"{label} is not an Ed25519 public key")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError("key-not-found", f"{path}: no such {what} file") from None
    except OSError as e:
        raise KeyFileError("key-unreadable", f"{path}: cannot read the {what} ({e.strerror})") from None
