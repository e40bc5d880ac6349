"""Sealed releases: round trip, and a distinct failure for each way it goes wrong."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.items import SignedRelease, make_signed_release

from itembank.errors import SealError
from itembank.seal import (
    ALPHABET,
    format_key,
    parse_key,
    seal,
    seal_file,
    unseal,
    unseal_file,
)

ARCHIVE = b"PK\x03\x04" + bytes(range(256)) * 20
SAMPLE = seal(ARCHIVE)  # (sealed bytes, key text), shared by the property test


@pytest.fixture(scope="module")
def signed_release(tmp_path_factory) -> SignedRelease:
    return make_signed_release(tmp_path_factory.mktemp("release"))


def test_round_trip(tmp_path, signed_release):
    source = tmp_path / "demo.cbtbank"
    source.write_bytes(signed_release.packed)
    key = seal_file(source, tmp_path / "demo.sealed")
    sealed = (tmp_path / "demo.sealed").read_bytes()
    assert sealed.startswith(b"CBTSEAL\x01")
    assert signed_release.packed[:200] not in sealed
    unseal_file(tmp_path / "demo.sealed", key, tmp_path / "back.cbtbank")
    assert (tmp_path / "back.cbtbank").read_bytes() == signed_release.packed


def test_every_seal_uses_a_fresh_key():
    (one, key_one), (two, key_two) = seal(ARCHIVE), seal(ARCHIVE)
    assert key_one != key_two and one != two


def test_the_key_is_easy_to_type():
    _, key = seal(ARCHIVE)
    groups = key.split("-")
    assert len(groups) == 14 and all(len(g) == 4 for g in groups)
    assert set(key.replace("-", "")) <= set(ALPHABET)
    # Case, spaces and the letters people confuse with digits do not matter.
    relaxed = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse_key(relaxed) == parse_key(key)


def test_wrong_key(tmp_path):
    sealed, _ = seal(ARCHIVE)
    _, other_key = seal(ARCHIVE)
    assert_fails_without_output(tmp_path, sealed, other_key, "wrong-key")


def test_mistyped_key(tmp_path):
    sealed, key = seal(ARCHIVE)
    typo = key[:6] + ("A" if key[6] != "A" else "B") + key[7:]
    error = assert_fails_without_output(tmp_path, sealed, typo, "mistyped-key")
    assert "check characters do not match" in str(error)
    short = assert_fails_without_output(tmp_path, sealed, key[:-5], "mistyped-key")
    assert "it has 52 characters, a key has 56" in str(short)
    bad_char = assert_fails_without_output(tmp_path, sealed, "U" + key[1:], "mistyped-key")
    assert "character 1 'U' never appears in keys" in str(bad_char)


def test_changed_byte(tmp_path):
    sealed, key = seal(ARCHIVE)
    changed = bytearray(sealed)
    changed[len(sealed) // 2] ^= 0x01
    error = assert_fails_without_output(tmp_path, bytes(changed), key, "damaged")
    assert str(error).startswith("the sealed file was changed or damaged")


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_any_changed_byte_is_caught(position, mask):
    sealed, key = SAMPLE
    changed = bytearray(sealed)
    changed[position % len(sealed)] ^= mask
    with pytest.raises(SealError) as error:
        unseal(bytes(changed), key)
    assert error.value.code in ("damaged", "not-sealed", "unsupported-version")


def test_not_a_sealed_file_and_not_an_archive(tmp_path):
    with pytest.raises(SealError) as error:
        unseal(b"PK\x03\x04 just a zip" * 10, SAMPLE[1])
    assert error.value.code == "not-sealed"
    with pytest.raises(SealError) as error:
        seal(b"hello")
    assert error.value.code == "not-a-cbtbank"


def test_a_previous_output_file_survives_a_failed_unseal(tmp_path):
    sealed, _ = seal(ARCHIVE)
    (tmp_path / "in.sealed").write_bytes(sealed)
    out = tmp_path / "out.cbtbank"
    out.write_bytes(b"previous")
    with pytest.raises(SealError):
        unseal_file(tmp_path / "in.sealed", seal(ARCHIVE)[1], out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.sealed", "out.cbtbank"]


@given(st.binary(min_size=32, max_size=32))
def test_key_text_round_trip(key):
    assert parse_key(format_key(key)) == key


def assert_fails_without_output(tmp_path, sealed, key, code):
    (tmp_path / "in.sealed").write_bytes(sealed)
    out = tmp_path / "out.cbtbank"
    with pytest.raises(SealError) as error:
        unseal_file(tmp_path / "in.sealed", key, out)
    assert error.value.code == code
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.sealed"]  # no temporary left over
    return error.value
