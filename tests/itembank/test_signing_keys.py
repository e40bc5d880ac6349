"""Ed25519 key files: generation, passphrases, permissions, clear errors."""

from __future__ import annotations

import hashlib
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from itembank.errors import KeyFileError
from itembank.keys import (
    fingerprint,
    generate_key_files,
    load_private_key,
    load_public_key,
)


def test_generate_writes_a_private_key_only_the_owner_can_read(tmp_path):
    made = generate_key_files("board", tmp_path / "keys")
    assert made.private_path == tmp_path / "keys" / "board.key"
    assert stat.S_IMODE(made.private_path.stat().st_mode) == 0o600
    assert made.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert made.public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_fingerprint_is_16_hex_digits_of_sha256_of_the_raw_public_key(tmp_path):
    made = generate_key_files("board", tmp_path)
    public = load_public_key(made.public_path)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert made.fingerprint == hashlib.sha256(raw).hexdigest()[:16] == fingerprint(public)
    assert fingerprint(load_private_key(made.private_path).public_key()) == made.fingerprint


def test_passphrase_round_trip(tmp_path):
    made = generate_key_files("board", tmp_path, passphrase=b"mat khau dai")
    assert b"ENCRYPTED" in made.private_path.read_bytes()
    key = load_private_key(made.private_path, b"mat khau dai")
    assert fingerprint(key.public_key()) == made.fingerprint


def test_wrong_or_missing_passphrase_says_so(tmp_path):
    made = generate_key_files("board", tmp_path, passphrase=b"right")
    with pytest.raises(KeyFileError) as wrong:
        load_private_key(made.private_path, b"wrong")
    assert wrong.value.code == "wrong-passphrase"
    assert str(wrong.value) == f"wrong passphrase for {made.private_path}: check the passphrase file"
    with pytest.raises(KeyFileError) as missing:
        load_private_key(made.private_path)
    assert missing.value.code == "passphrase-needed"
    assert "--passphrase-file" in str(missing.value)


def test_a_passphrase_for_an_unencrypted_key_is_refused(tmp_path):
    made = generate_key_files("board", tmp_path)
    with pytest.raises(KeyFileError) as error:
        load_private_key(made.private_path, b"something")
    assert error.value.code == "not-encrypted"


def test_not_an_ed25519_key(tmp_path):
    other = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.key"
    path.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFileError) as error:
        load_private_key(path)
    assert error.value.code == "not-ed25519"
    public = tmp_path / "ec.pub"
    public.write_bytes(
        other.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError) as error:
        load_public_key(public)
    assert error.value.code == "not-ed25519"


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.key").write_text("hello")
    with pytest.raises(KeyFileError) as error:
        load_private_key(tmp_path / "junk.key")
    assert error.value.code == "not-a-key"
    with pytest.raises(KeyFileError) as error:
        load_public_key(tmp_path / "junk.key")
    assert error.value.code == "not-a-key"
    with pytest.raises(KeyFileError) as error:
        load_private_key(tmp_path / "absent.key")
    assert error.value.code == "key-not-found"


def test_existing_keys_are_never_overwritten(tmp_path):
    first = generate_key_files("board", tmp_path)
    before = first.private_path.read_bytes()
    with pytest.raises(KeyFileError) as error:
        generate_key_files("board", tmp_path)
    assert error.value.code == "exists"
    assert first.private_path.read_bytes() == before


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_key_names_must_be_plain(tmp_path, name):
    with pytest.raises(KeyFileError) as error:
        generate_key_files(name, tmp_path)
    assert error.value.code == "bad-name"
