"""Signing and verifying releases: any change to any file is caught."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.items import SignedRelease, make_signed_release

from itembank import package
from itembank.archive import ZipFiles
from itembank.demo import write_demo_bank
from itembank.errors import PackError, ReleaseInvalidError, SignError, VerifyError
from itembank.keys import fingerprint
from itembank.limits import TooLarge
from itembank.package import load_release, pack, sign, verify

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def signed_release(tmp_path_factory) -> SignedRelease:
    return make_signed_release(tmp_path_factory.mktemp("release"))


def zip_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- success


def test_sign_then_verify_succeeds_on_folder_and_archive(signed_release):
    trusted = [signed_release.public_key]
    summary = verify(signed_release.folder, trusted)
    assert summary == verify(signed_release.packed, trusted)
    assert (summary.name, summary.version, summary.item_count) == ("demo-thpt", "2025.1", 64)
    assert summary.signer == fingerprint(signed_release.public_key)
    assert summary.signed_at == "2025-06-01T08:00:00Z"
    assert str(summary).startswith("demo-thpt 2025.1: 64 items")


def test_the_manifest_lists_every_file_with_its_sha256(signed_release):
    manifest = json.loads((signed_release.folder / "MANIFEST.json").read_bytes())
    assert manifest["format"] == "cbt-bank/1"
    assert manifest["release"] == {"name": "demo-thpt", "version": "2025.1"}
    listed = set(manifest["files"])
    on_disk = {p.relative_to(signed_release.folder).as_posix() for p in files_of(signed_release.folder)}
    assert listed == on_disk - {"MANIFEST.json", "MANIFEST.sig"}
    assert list(manifest["files"]) == sorted(manifest["files"])


@PROPERTY
@given(seconds=st.integers(0, 4_000_000_000))
def test_sign_then_verify_succeeds_for_any_key_and_time(signed_release, tmp_path_factory, seconds):
    folder = signed_release.copy(tmp_path_factory.mktemp("any") / "bank")
    key = Ed25519PrivateKey.generate()
    sign(folder, key, now=datetime.fromtimestamp(seconds, UTC))
    others = [Ed25519PrivateKey.generate().public_key(), key.public_key()]
    assert verify(folder, others).signer == fingerprint(key.public_key())


# ---------------------------------------------------------------- tampering with a folder


@PROPERTY
@given(which=st.integers(min_value=0), position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipping_any_byte_of_any_file_fails_verification(signed_release, tmp_path_factory, which, position, mask):
    folder = signed_release.copy(tmp_path_factory.mktemp("flip") / "bank")
    files = files_of(folder)
    target = files[which % len(files)]
    data = bytearray(target.read_bytes())
    data[position % len(data)] ^= mask
    target.write_bytes(bytes(data))
    with pytest.raises(VerifyError):
        verify(folder, [signed_release.public_key])


@PROPERTY
@given(
    name=st.sampled_from(["extra.txt", "items/new.yaml", "media/x.png", "items/sub/y.yaml"]),
    content=st.binary(max_size=50),
)
def test_adding_a_file_fails_verification(signed_release, tmp_path_factory, name, content):
    folder = signed_release.copy(tmp_path_factory.mktemp("add") / "bank")
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    with pytest.raises(VerifyError) as error:
        verify(folder, [signed_release.public_key])
    assert error.value.code == "extra-file"
    assert error.value.files == [name]


@PROPERTY
@given(which=st.integers(min_value=0))
def test_removing_any_file_fails_verification(signed_release, tmp_path_factory, which):
    folder = signed_release.copy(tmp_path_factory.mktemp("remove") / "bank")
    files = files_of(folder)
    target = files[which % len(files)]
    target.unlink()
    with pytest.raises(VerifyError) as error:
        verify(folder, [signed_release.public_key])
    expected = {"MANIFEST.json": "unsigned", "MANIFEST.sig": "missing-signature"}
    assert error.value.code == expected.get(target.name, "missing-file")


def test_each_failure_has_a_precise_message(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    trusted = [signed_release.public_key]
    (folder / "items" / "hs-01.yaml").write_text("changed\n")
    (folder / "media" / "do-thi-bac-ba.svg").unlink()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(VerifyError) as error:
        verify(folder, trusted)
    assert error.value.code == "changed-file"
    assert error.value.message == (
        f"{folder}: not as signed: changed file items/hs-01.yaml; missing file"
        " media/do-thi-bac-ba.svg; extra file notes.txt. Get a fresh copy of the release"
        " (or, if you are its author, sign it again)"
    )
    assert error.value.files == ["items/hs-01.yaml", "media/do-thi-bac-ba.svg", "notes.txt"]


def test_untrusted_signer_names_its_fingerprint(signed_release):
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(VerifyError) as error:
        verify(signed_release.folder, [other])
    assert error.value.code == "untrusted-signer"
    assert fingerprint(signed_release.public_key) in error.value.message
    assert fingerprint(other) in error.value.message
    with pytest.raises(VerifyError) as error:
        verify(signed_release.folder, [])
    assert "(trusted: none)" in error.value.message


def test_a_signature_by_another_key_with_the_same_claimed_signer_is_bad(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    forged = Ed25519PrivateKey.generate().sign((folder / "MANIFEST.json").read_bytes())
    (folder / "MANIFEST.sig").write_bytes(base64.b64encode(forged) + b"\n")
    with pytest.raises(VerifyError) as error:
        verify(folder, [signed_release.public_key])
    assert error.value.code == "bad-signature"


def test_a_symlink_in_a_folder_is_refused(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    target = folder / "items" / "hs-01.yaml"
    target.rename(tmp_path / "outside.yaml")
    os.symlink(tmp_path / "outside.yaml", target)
    with pytest.raises(VerifyError) as error:
        verify(folder, [signed_release.public_key])
    assert error.value.code == "unsafe-archive"
    assert "symbolic link" in error.value.message


# ---------------------------------------------------------------- tampering with an archive


@PROPERTY
@given(which=st.integers(min_value=0), position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipping_any_byte_of_any_file_in_the_archive_fails(signed_release, which, position, mask):
    entries = zip_entries(signed_release.packed)
    name = sorted(entries)[which % len(entries)]
    data = bytearray(entries[name])
    data[position % len(data)] ^= mask
    entries[name] = bytes(data)
    with pytest.raises(VerifyError):
        verify(make_zip(entries), [signed_release.public_key])


@PROPERTY
@given(which=st.integers(min_value=0), extra=st.sampled_from(["x.txt", "items/z.yaml", "media/q"]))
def test_adding_or_removing_an_archive_entry_fails(signed_release, which, extra):
    entries = zip_entries(signed_release.packed)
    removed = dict(entries)
    del removed[sorted(entries)[which % len(entries)]]
    with pytest.raises(VerifyError):
        verify(make_zip(removed), [signed_release.public_key])
    with pytest.raises(VerifyError) as error:
        verify(make_zip({**entries, extra: b"x"}), [signed_release.public_key])
    assert error.value.code == "extra-file"


@PROPERTY
@given(position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_a_damaged_archive_is_refused_or_still_holds_exactly_the_signed_files(signed_release, position, mask):
    """Flipping a byte of the zip itself (headers, timestamps ...) either fails
    verification with a VerifyError, or is refused as too large (a flipped size
    field can make a member claim gigabytes: TooLarge says so before reading),
    never another exception; or it leaves every signed file intact."""
    data = bytearray(signed_release.packed)
    data[position % len(data)] ^= mask
    try:
        verify(bytes(data), [signed_release.public_key])
    except (VerifyError, TooLarge):
        return
    damaged = ZipFiles(bytes(data), "damaged")
    original = zip_entries(signed_release.packed)
    assert {name: damaged.read(name) for name in damaged.names()} == original


def test_an_entry_claiming_a_zip_version_from_the_future_is_refused(signed_release):
    """Found by the property above: a byte flipped in a directory entry's
    "version needed to extract" makes zipfile raise NotImplementedError
    ("zip file version 8.4"), which must be a refusal like any other damage."""
    data = bytearray(signed_release.packed)
    entry = data.index(b"PK\x01\x02")
    data[entry + 6] = 84
    with pytest.raises(VerifyError):
        verify(bytes(data), [signed_release.public_key])


# ---------------------------------------------------------------- packing


def test_pack_is_byte_identical_for_identical_input(signed_release, tmp_path):
    copy = signed_release.copy(tmp_path / "elsewhere")
    for path in files_of(copy):  # other times and permissions must not matter
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o600)
    pack(copy, tmp_path / "a.cbtbank")
    pack(signed_release.folder, tmp_path / "b.cbtbank")
    assert (tmp_path / "a.cbtbank").read_bytes() == (tmp_path / "b.cbtbank").read_bytes()
    assert (tmp_path / "a.cbtbank").read_bytes() == signed_release.packed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    media=st.dictionaries(st.from_regex(r"[a-z0-9_-]{1,12}\.(png|svg)", fullmatch=True), st.binary(max_size=300)),
    order=st.randoms(use_true_random=False),
)
def test_pack_is_byte_identical_whatever_order_and_times_the_files_were_made(tmp_path_factory, media, order):
    key = Ed25519PrivateKey.generate()
    archives = []
    for copy in range(2):
        folder = tmp_path_factory.mktemp("order") / "bank"
        write_demo_bank(folder)
        names = list(media)
        order.shuffle(names)
        for name in names:
            path = folder / "media" / name
            path.write_bytes(media[name])
            os.utime(path, (order.randint(0, 2**31), order.randint(0, 2**31)))
            path.chmod(0o600 if copy else 0o664)
        sign(folder, key, now=datetime(2025, 6, 1, tzinfo=UTC))
        pack(folder, folder.parent / "x.cbtbank")
        archives.append((folder.parent / "x.cbtbank").read_bytes())
    assert archives[0] == archives[1]
    assert verify(archives[0], [key.public_key()]).file_count == 60 + len(media)


def test_pack_lays_the_zip_out_canonically(signed_release):
    with zipfile.ZipFile(io.BytesIO(signed_release.packed)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_pack_refuses_unsigned_or_changed_folders(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    (folder / "items" / "hs-02.yaml").write_text("x")
    with pytest.raises(PackError) as error:
        pack(folder, tmp_path / "x.cbtbank")
    assert error.value.code == "changed-file"
    assert error.value.message.endswith("sign it again before packing")
    (folder / "MANIFEST.sig").unlink()
    with pytest.raises(PackError) as error:
        pack(folder, tmp_path / "x.cbtbank")
    assert error.value.code == "unsigned"
    assert not (tmp_path / "x.cbtbank").exists()


# ---------------------------------------------------------------- signing refusals


def test_sign_refuses_unapproved_items_and_lists_them(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    item = folder / "items" / "hs-01.yaml"
    item.write_text(item.read_text().replace("status: approved", "status: reviewed"))
    manifest_before = (folder / "MANIFEST.json").read_bytes()
    with pytest.raises(SignError) as error:
        sign(folder, signed_release.private_key)
    assert [str(p).replace(f"{folder}/", "") for p in error.value.problems] == [
        "items/hs-01.yaml:10: item HS-01 version 1 is reviewed: only approved items may"
        " enter a release; approve it after review, or move it out of items/"
    ]
    assert (folder / "MANIFEST.json").read_bytes() == manifest_before


def test_sign_refuses_a_release_that_fails_validation(signed_release, tmp_path):
    folder = signed_release.copy(tmp_path / "bank")
    item = folder / "items" / "hs-01.yaml"
    item.write_text(item.read_text().replace("level: 1", "level: 7"))
    with pytest.raises(SignError) as error:
        sign(folder, signed_release.private_key)
    assert [p.code for p in error.value.problems] == ["level-range"]


# ---------------------------------------------------------------- loading for import


def test_load_release_returns_items_and_media(signed_release):
    release = load_release(signed_release.packed, [signed_release.public_key])
    assert release.info.name == "demo-thpt"
    assert len(release.items) == 64
    assert set(release.media) == {"media/do-thi-bac-ba.svg"}
    assert release.media["media/do-thi-bac-ba.svg"].startswith(b"<svg")
    assert release.manifest == (signed_release.folder / "MANIFEST.json").read_bytes()
    assert len(release.signature) == 64
    assert release.summary == verify(signed_release.folder, [signed_release.public_key])
    from_folder = load_release(signed_release.folder, [signed_release.public_key])
    assert from_folder.items == release.items


def test_load_release_verifies_first(signed_release):
    with pytest.raises(VerifyError) as error:
        load_release(signed_release.packed, [Ed25519PrivateKey.generate().public_key()])
    assert error.value.code == "untrusted-signer"


def test_load_release_refuses_a_signed_release_with_unapproved_items(tmp_path):
    folder = tmp_path / "bank"
    write_demo_bank(folder)
    key = Ed25519PrivateKey.generate()
    package.sign(folder, key)
    # Forge what an older or buggy signer might have produced: sign a draft.
    item = folder / "items" / "hs-01.yaml"
    item.write_text(item.read_text().replace("status: approved", "status: draft"))
    files = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files_of(folder)
        if not p.name.startswith("MANIFEST")
    }
    manifest = package.Manifest("demo-thpt", "2025.1", files, 64, fingerprint(key.public_key()), "t")
    data = manifest.to_bytes()
    (folder / "MANIFEST.json").write_bytes(data)
    (folder / "MANIFEST.sig").write_bytes(base64.b64encode(key.sign(data)) + b"\n")
    assert verify(folder, [key.public_key()]).item_count == 64
    with pytest.raises(ReleaseInvalidError) as error:
        load_release(folder, [key.public_key()])
    assert [p.code for p in error.value.problems] == ["not-approved"]
