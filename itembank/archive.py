"""Reading the files of a release, from a folder or a ``.cbtbank`` zip, safely.

Both kinds look the same to the rest of the library: a sorted list of
relative POSIX paths, and a way to read each one. A release may come from
anywhere (a USB stick, an e-mail), so a zip is treated as hostile until
verified: no absolute paths, no ``..``, no links, no duplicate names, and
bounded sizes, checked while decompressing rather than trusted from the
zip's own headers (which a zip bomb lies in).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Protocol

from itembank.errors import VerifyError
from itembank.limits import ArchiveLimits, TooLarge, check_total, declared_total, directory_size, megabytes

MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
_CHUNK = 1 << 16


class ReleaseFiles(Protocol):
    label: str  # how messages name the release (its path)

    def names(self) -> list[str]:
        """Sorted relative POSIX paths of every file."""
        ...

    def read(self, name: str) -> bytes: ...


def unsafe(message: str) -> VerifyError:
    return VerifyError("unsafe-archive", message)


def check_name(name: str, label: str) -> None:
    """Refuse names that could escape the release folder on any system."""
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or (len(name) > 1 and name[1] == ":")  # C:foo on Windows
        or any(part in ("", ".", "..") for part in name.split("/"))
        or path.is_absolute()
        or "\x00" in name
    ):
        raise unsafe(f"{label}: refused unsafe path '{name}' (absolute, '..' or empty part)")


class FolderFiles:
    """The files of a release folder; symbolic links are refused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = sorted(self._walk(self.root, ""))
        return self._names

    def _walk(self, folder: Path, prefix: str) -> Iterator[str]:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_symlink():
                    raise unsafe(f"{self.label}: '{name}' is a symbolic link; copy the real file in")
                if entry.is_dir():
                    yield from self._walk(Path(entry.path), name + "/")
                elif entry.is_file():
                    yield name
                else:
                    raise unsafe(f"{self.label}: '{name}' is not a regular file")

    def read(self, name: str) -> bytes:
        check_name(name, self.label)
        return (self.root / name).read_bytes()


class ZipFiles:
    """The files of a ``.cbtbank`` zip, checked entry by entry before use."""

    def __init__(self, data: bytes, label: str, limits: ArchiveLimits | None = None) -> None:
        self.label = label
        self.limits = limits or ArchiveLimits()
        self._total = 0
        # Before zipfile makes an object of every entry the directory declares.
        declared = directory_size(data)
        if declared is not None and declared[0] > self.limits.max_entries:
            raise unsafe(f"{label}: {declared[0]} entries, more than {self.limits.max_entries}")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except Exception as e:  # zipfile raises a zoo of types on damaged input
            raise VerifyError("bad-archive", f"{label}: not a readable zip file ({e})") from e
        if len(infos) > self.limits.max_entries:
            raise unsafe(f"{label}: {len(infos)} entries, more than {self.limits.max_entries}")
        self._infos: dict[str, zipfile.ZipInfo] = {}
        folded: set[str] = set()
        for info in infos:
            name = info.filename
            check_name(name.rstrip("/") if info.is_dir() else name, label)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise unsafe(f"{label}: '{name}' is a symbolic link; links are not allowed")
            if info.flag_bits & 0x1:
                raise unsafe(f"{label}: '{name}' is encrypted; releases are sealed, not zip-encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise unsafe(f"{label}: '{name}' uses an unsupported compression method")
            if info.is_dir():
                continue
            # Names that differ only in case would overwrite each other on
            # Windows and macOS, so they count as duplicates too.
            if name.casefold() in folded:
                raise unsafe(f"{label}: the name '{name}' appears twice")
            folded.add(name.casefold())
            if info.file_size > self.limits.max_entry_bytes:
                raise unsafe(
                    f"{label}: '{name}' unpacks to {info.file_size} bytes,"
                    f" more than the limit of {self.limits.max_entry_bytes}"
                )
            if info.file_size > max(info.compress_size * self.limits.max_ratio, self.limits.ratio_applies_above):
                raise unsafe(f"{label}: '{name}' is compressed suspiciously well (a zip bomb?)")
            self._infos[name] = info

    def names(self) -> list[str]:
        return sorted(self._infos)

    def read(self, name: str) -> bytes:
        info = self._infos.get(name)
        if info is None:
            raise VerifyError("missing-file", f"{self.label}: no file '{name}'", [name])
        limit = self.limits.max_entry_bytes
        out = bytearray()
        try:
            with self._zip.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    out += chunk
                    # zipfile trusts the sizes in the header, which we checked
                    # above; count what really comes out all the same.
                    self._total += len(chunk)
                    if len(out) > limit:
                        raise unsafe(f"{self.label}: '{name}' unpacks to more than {limit} bytes")
                    if self._total > self.limits.max_total_bytes:
                        raise unsafe(
                            f"{self.label}: the archive unpacks to more than {self.limits.max_total_bytes} bytes"
                        )
                    ratio_base = max(info.compress_size, 1) * self.limits.max_ratio
                    if len(out) > max(ratio_base, self.limits.ratio_applies_above):
                        raise unsafe(f"{self.label}: '{name}' is compressed suspiciously well (a zip bomb?)")
        except VerifyError:
            raise
        except Exception as e:  # BadZipFile, zlib.error, EOFError, NotImplementedError ...
            raise VerifyError(
                "bad-archive", f"{self.label}: '{name}' is damaged and cannot be read ({e})", [name]
            ) from e
        return bytes(out)


def open_release(source: Path | bytes, limits: ArchiveLimits | None = None) -> ReleaseFiles:
    """A folder, a ``.cbtbank`` file, or the bytes of one (e.g. just unsealed).

    Raises itembank.limits.TooLarge for a file, or a zip, bigger than
    `limits` allow in all, before reading or unpacking it.
    """
    limits = limits or ArchiveLimits()
    if isinstance(source, bytes):
        data, label = source, "release archive"
    elif source.is_dir():
        return FolderFiles(source)
    else:
        label = str(source)
        try:
            # A zip is never much larger than what it unpacks to.
            if source.stat().st_size > limits.max_total_bytes:
                raise TooLarge(
                    f"{label}: the file is larger than {megabytes(limits.max_total_bytes)}, the most"
                    " a release may unpack to",
                    megabytes(limits.max_total_bytes),
                )
            data = source.read_bytes()
        except FileNotFoundError:
            raise VerifyError("not-found", f"{source}: no such file or folder") from None
        except OSError as e:
            raise VerifyError("not-found", f"{source}: cannot read ({e.strerror})") from None
    declared = directory_size(data)
    if declared is None or declared[0] <= limits.max_entries:  # else ZipFiles refuses the count
        check_total(declared_total(data) or 0, label, limits)
    return ZipFiles(data, label, limits)


class MemoryFiles:
    """Release files already read into memory (read once, checked twice)."""

    def __init__(self, contents: dict[str, bytes], label: str) -> None:
        self.contents = contents
        self.label = label

    def names(self) -> list[str]:
        return sorted(self.contents)

    def read(self, name: str) -> bytes:
        try:
            return self.contents[name]
        except KeyError:
            raise VerifyError("missing-file", f"{self.label}: no file '{name}'", [name]) from None


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new
    one, never a part: write a temporary file next to it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; releases are meant to be shared
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
