"""A .cbtbank from anywhere is hostile until verified: unpacking it is bounded."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from itembank.archive import ArchiveLimits, ZipFiles
from itembank.errors import VerifyError
from itembank.package import load_release, verify

TRUSTED = [Ed25519PrivateKey.generate().public_key()]


def archive(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def refused(data: bytes, limits: ArchiveLimits | None = None) -> VerifyError:
    with pytest.raises(VerifyError) as error:
        verify(data, TRUSTED, limits)
    with pytest.raises(VerifyError):
        load_release(data, TRUSTED, limits)
    return error.value


@pytest.mark.parametrize("name", ["../evil.yaml", "items/../../evil", "/etc/passwd", "C:/x", "items\\x.yaml", "a//b"])
def test_path_traversal_and_absolute_paths_are_refused(name):
    error = refused(archive(("bank.yaml", b"x"), (name, b"boom")))
    assert error.code == "unsafe-archive"
    assert "refused unsafe path" in error.message


def test_symlink_entries_are_refused():
    link = zipfile.ZipInfo("media/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    error = refused(archive(("bank.yaml", b"x"), (link, b"/etc/passwd")))
    assert error.code == "unsafe-archive"
    assert "symbolic link" in error.message


def test_a_zip_bomb_is_refused_while_unpacking():
    bomb = archive(("MANIFEST.json", b"{}"), ("MANIFEST.sig", b"x"), ("media/zeros", bytes(20_000_000)))
    assert len(bomb) < 100_000
    error = refused(bomb)
    assert error.code == "unsafe-archive"
    assert "compressed suspiciously well" in error.message


def test_an_oversized_entry_is_refused():
    data = archive(("bank.yaml", b"x"), ("media/big.bin", os.urandom(5000)))
    error = refused(data, ArchiveLimits(max_entry_bytes=4096))
    assert error.code == "unsafe-archive"
    assert "more than the limit of 4096" in error.message


def test_the_total_size_is_bounded():
    entries = [(f"media/{i}.bin", os.urandom(3000)) for i in range(5)]
    limits = ArchiveLimits(max_total_bytes=10_000)
    files = ZipFiles(archive(*entries), "t.cbtbank", limits)
    with pytest.raises(VerifyError) as error:
        for name in files.names():
            files.read(name)
    assert error.value.code == "unsafe-archive"
    assert "unpacks to more than 10000 bytes" in error.value.message


def test_too_many_entries():
    data = archive(*[(f"media/{i}", b"") for i in range(20)])
    assert refused(data, ArchiveLimits(max_entries=10)).code == "unsafe-archive"


def test_duplicate_names_are_refused_even_differing_only_in_case():
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = archive(("bank.yaml", b"a"), ("bank.yaml", b"b"))
    assert "appears twice" in refused(twice).message
    assert "appears twice" in refused(archive(("items/A.yaml", b"a"), ("items/a.yaml", b"b"))).message


def test_not_a_zip_at_all():
    error = refused(b"this is not a zip file")
    assert error.code == "bad-archive"


def test_a_missing_file_path():
    with pytest.raises(VerifyError) as error:
        verify(__import__("pathlib").Path("/nonexistent/x.cbtbank"), TRUSTED)
    assert error.value.code == "not-found"
