"""Bank releases: sign, verify, pack, and load for import.

A release is a folder (or a ``.cbtbank`` zip of it)::

    bank.yaml        format: cbt-bank/1, name, version, title ...
    items/*.yaml     approved items only
    media/...        images and other files the items refer to
    MANIFEST.json    written by `sign`: SHA-256 of every other file
    MANIFEST.sig     Ed25519 signature over the exact bytes of MANIFEST.json

Verification proves that every file is exactly what the signer signed: a
changed, missing or added file, a bad signature or an unknown signer each
fail with their own code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from itembank.archive import (
    MANIFEST,
    SIGNATURE,
    ArchiveLimits,
    FolderFiles,
    MemoryFiles,
    ReleaseFiles,
    check_name,
    open_release,
    write_atomic,
)
from itembank.errors import PackError, Problem, ReleaseInvalidError, SignError, VerifyError
from itembank.keys import fingerprint
from itembank.model import BankInfo, Item, ItemSet, Status
from itembank.seal import seal, unseal  # noqa: F401  (part of this module's API)
from itembank.validate import ReleaseCheck, check_release

FORMAT = "cbt-bank/1"
# Zip entries get this fixed time and mode, so that packing the same folder
# twice gives the same bytes (and the same checksum for everyone).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    files: Mapping[str, str]  # relative path -> SHA-256 hex
    item_count: int
    signer: str  # key fingerprint
    signed_at: str  # UTC, e.g. 2025-06-01T08:00:00Z

    def to_bytes(self) -> bytes:
        """The canonical bytes that are signed: sorted keys, fixed layout, UTF-8."""
        document = {
            "format": FORMAT,
            "release": {"name": self.name, "version": self.version},
            "files": dict(sorted(self.files.items())),
            "item_count": self.item_count,
            "signer": self.signer,
            "signed_at": self.signed_at,
        }
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1)
        return text.encode("utf-8") + b"\n"


@dataclass(frozen=True)
class VerifySummary:
    name: str
    version: str
    item_count: int
    file_count: int
    signer: str
    signed_at: str

    def __str__(self) -> str:
        return (
            f"{self.name} {self.version}: {self.item_count} items, {self.file_count} files,"
            f" signed by {self.signer} at {self.signed_at}"
        )


@dataclass(frozen=True)
class Release:
    """A verified, validated release, ready for the server to store."""

    info: BankInfo
    items: tuple[Item, ...]  # every item, the sets' children among them (with set_id)
    media: Mapping[str, bytes]  # "media/graph.png" -> bytes
    summary: VerifySummary
    manifest: bytes  # exact MANIFEST.json bytes, kept as proof
    signature: bytes  # raw 64-byte Ed25519 signature
    sets: tuple[ItemSet, ...] = ()


# ---------------------------------------------------------------- signing


def sign(folder: Path, private_key: Ed25519PrivateKey, now: datetime | None = None) -> Manifest:
    """Write MANIFEST.json and MANIFEST.sig into a release folder.

    Refuses (SignError listing every problem) if validation fails or any
    item is not approved.
    """
    files = FolderFiles(folder)
    check = check_release(files)
    problems = list(check.problems)
    problems += _unapproved(
        check,
        lambda what, status: (
            f"{what} is {status}: only approved items may enter a release;"
            " approve it after review, or move it out of items/"
        ),
    )
    if problems or check.info is None:
        raise SignError("invalid-release", f"{folder}: not signed: fix the problems listed above", problems)
    manifest = build_manifest(files, check.info, len(check.items), private_key, now)
    data, signature = sign_manifest(manifest, private_key)
    write_atomic(folder / MANIFEST, data)
    write_atomic(folder / SIGNATURE, signature)
    return manifest


def build_manifest(
    files: ReleaseFiles,
    info: BankInfo,
    item_count: int,
    private_key: Ed25519PrivateKey | None,
    now: datetime | None = None,
) -> Manifest:
    """The manifest `sign` writes for these (already checked) files.

    Without a key, signer and signed_at are left empty: the server keeps that
    form of a release it built, so whoever signs it later, offline or on the
    server, can be held to exactly these file hashes.
    """
    return Manifest(
        name=info.name,
        version=info.version,
        files={name: _sha256(files.read(name)) for name in _content_names(files)},
        item_count=item_count,
        signer=fingerprint(private_key.public_key()) if private_key else "",
        signed_at=(now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if private_key else "",
    )


def sign_manifest(manifest: Manifest, private_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """The bytes of MANIFEST.json and MANIFEST.sig, exactly as `sign` writes them."""
    data = manifest.to_bytes()
    return data, base64.b64encode(private_key.sign(data)) + b"\n"


# ---------------------------------------------------------------- verifying


def verify(
    source: Path | bytes,
    trusted_public_keys: Iterable[Ed25519PublicKey],
    limits: ArchiveLimits | None = None,
) -> VerifySummary:
    """Check a release folder or ``.cbtbank`` (path or bytes) against trusted keys.

    Returns a summary if every file is exactly as signed; raises VerifyError
    otherwise, with one of the codes: unsigned, missing-signature,
    bad-manifest, untrusted-signer, bad-signature, changed-file, missing-file,
    extra-file, unsafe-archive, bad-archive, not-found.
    """
    files = open_release(source, limits)
    manifest, _, _ = _verify_files(files, trusted_public_keys)
    return _summary(manifest)


def load_release(
    source: Path | bytes,
    trusted_public_keys: Iterable[Ed25519PublicKey],
    limits: ArchiveLimits | None = None,
) -> Release:
    """Verify, then validate, then return everything the server imports.

    Raises VerifyError if the release is not exactly what a trusted key
    signed, and ReleaseInvalidError (with the list of problems) if it was
    signed but breaks the item rules (e.g. signed by an older cbt).
    """
    files = open_release(source, limits)
    # Read every file once; verification and parsing then use the same bytes,
    # so nothing can change between the check and the use.
    memory = MemoryFiles({name: files.read(name) for name in files.names()}, files.label)
    manifest, manifest_bytes, signature = _verify_files(memory, trusted_public_keys)
    # Every check, the rendering ones included: a signature says who vouches
    # for a release, not that it was made (or checked) by cbt's own sign.
    check = check_release(memory)
    problems = list(check.problems)
    problems += _unapproved(check, lambda what, status: f"{what} is {status}, not approved")
    if problems or check.info is None:
        raise ReleaseInvalidError("invalid-release", f"{files.label}: signed, but its items have problems", problems)
    media = {name: data for name, data in memory.contents.items() if name.startswith("media/")}
    return Release(
        info=check.info,
        items=tuple(source.item for source in check.items),
        media=media,
        summary=_summary(manifest),
        manifest=manifest_bytes,
        signature=signature,
        sets=tuple(source.set for source in check.sets),
    )


def _unapproved(check: ReleaseCheck, message: Callable[[str, str], str]) -> list[Problem]:
    """A not-approved problem for each item and set that is not approved.

    A set's children have the set's status: the set is reported once, where
    its status is written, rather than once for each child.
    """
    problems = [
        s.problem("not-approved", message(f"item {s.item.id} version {s.item.version}", s.item.status), "status")
        for s in check.items
        if s.item.status != Status.APPROVED and s.item.set_id is None
    ]
    problems += [
        s.problem("not-approved", message(f"set {s.set.id} version {s.set.version}", s.set.status), "status")
        for s in check.sets
        if s.set.status != Status.APPROVED
    ]
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def _verify_files(
    files: ReleaseFiles, trusted_public_keys: Iterable[Ed25519PublicKey]
) -> tuple[Manifest, bytes, bytes]:
    label = files.label
    names = files.names()
    if MANIFEST not in names:
        raise VerifyError(
            "unsigned",
            f"{label}: no {MANIFEST}, so the release is not signed: sign it with"
            " cbt bank sign, or ask the exam board for the signed release",
        )
    if SIGNATURE not in names:
        raise VerifyError("missing-signature", f"{label}: {SIGNATURE} is missing: the release is incomplete")
    manifest_bytes = files.read(MANIFEST)
    manifest = _parse_manifest(manifest_bytes, label)
    signature = _parse_signature(files.read(SIGNATURE), label)
    trusted = {fingerprint(key): key for key in trusted_public_keys}
    key = trusted.get(manifest.signer)
    if key is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise VerifyError(
            "untrusted-signer",
            f"{label}: signed by key {manifest.signer}, which is not trusted here"
            f" (trusted: {known}); trust its .pub file only if you know it belongs to"
            " the exam board",
        )
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise VerifyError(
            "bad-signature",
            f"{label}: the signature does not match {MANIFEST}: the manifest was changed"
            " after signing; get a fresh copy of the release",
        ) from None
    _check_contents(files, manifest)
    return manifest, manifest_bytes, signature


def _check_contents(files: ReleaseFiles, manifest: Manifest) -> None:
    """Every file listed with the same hash, and no other file."""
    present = set(_content_names(files))
    listed = set(manifest.files)
    missing = sorted(listed - present)
    extra = sorted(present - listed)
    changed = [name for name in sorted(listed & present) if _sha256(files.read(name)) != manifest.files[name]]
    if not (missing or extra or changed):
        return
    parts = []
    for what, names in (("changed", changed), ("missing", missing), ("extra", extra)):
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            parts.append(f"{what} file{'s' if len(names) > 1 else ''} {shown}")
    code = "changed-file" if changed else "missing-file" if missing else "extra-file"
    raise VerifyError(
        code,
        f"{files.label}: not as signed: {'; '.join(parts)}. Get a fresh copy of the"
        " release (or, if you are its author, sign it again)",
        changed + missing + extra,
    )


def _parse_manifest(data: bytes, label: str) -> Manifest:
    def bad(why: str) -> VerifyError:
        return VerifyError("bad-manifest", f"{label}: {MANIFEST} is damaged ({why})")

    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"not JSON: {e}") from None
    if not isinstance(document, dict):
        raise bad("not a JSON object")
    if document.get("format") != FORMAT:
        raise VerifyError(
            "unknown-format",
            f"{label}: format {document.get('format')!r} is not {FORMAT}: update cbt",
        )
    release, files = document.get("release"), document.get("files")
    if not (
        isinstance(release, dict)
        and isinstance(release.get("name"), str)
        and isinstance(release.get("version"), str)
        and isinstance(files, dict)
        and all(isinstance(v, str) and _HEX64.fullmatch(v) for v in files.values())
        and type(document.get("item_count")) is int
        and isinstance(document.get("signer"), str)
        and _HEX16.fullmatch(document["signer"])
        and isinstance(document.get("signed_at"), str)
    ):
        raise bad("a field is missing or has the wrong type")
    for name in files:
        check_name(name, label)
    return Manifest(
        name=release["name"],
        version=release["version"],
        files=files,
        item_count=document["item_count"],
        signer=document["signer"],
        signed_at=document["signed_at"],
    )


def _parse_signature(data: bytes, label: str) -> bytes:
    try:
        signature = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        signature = b""
    # Accept only the exact form `sign` writes, so any changed byte is refused.
    if len(signature) != 64 or base64.b64encode(signature) + b"\n" != data:
        raise VerifyError("bad-signature", f"{label}: {SIGNATURE} is damaged")
    return signature


def _summary(manifest: Manifest) -> VerifySummary:
    return VerifySummary(
        name=manifest.name,
        version=manifest.version,
        item_count=manifest.item_count,
        file_count=len(manifest.files),
        signer=manifest.signer,
        signed_at=manifest.signed_at,
    )


# ---------------------------------------------------------------- packing


def pack(folder: Path, out: Path) -> int:
    """Zip a signed release folder into ``out``; returns the number of files.

    The same folder always gives the same bytes: entries sorted, fixed
    times and permissions. Refuses a folder that changed since signing.
    """
    files = FolderFiles(folder)
    names = files.names()
    if MANIFEST not in names or SIGNATURE not in names:
        raise PackError("unsigned", f"{folder} is not signed: run cbt bank sign {folder} --key FILE.key first")
    try:
        manifest = _parse_manifest(files.read(MANIFEST), str(folder))
        _check_contents(files, manifest)
    except VerifyError as e:
        raise PackError(e.code, f"{e.message}; sign it again before packing") from None
    buffer = _zip_bytes(files, names)
    write_atomic(out, buffer)
    return len(names)


def pack_bytes(contents: Mapping[str, bytes]) -> bytes:
    """Zip release files held in memory, byte for byte as `pack` zips a folder."""
    for name in contents:
        check_name(name, "release")
    return _zip_bytes(MemoryFiles(dict(contents), "release"), sorted(contents))


def _zip_bytes(files: ReleaseFiles, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = _ZIP_MODE
            info.create_system = 3  # Unix, whatever system packs it
            archive.writestr(info, files.read(name), compresslevel=6)
    return buffer.getvalue()


# ---------------------------------------------------------------- helpers


def _content_names(files: ReleaseFiles) -> list[str]:
    return [name for name in files.names() if name not in (MANIFEST, SIGNATURE)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
