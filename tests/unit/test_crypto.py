"""The age implementation: round trips, interop with pyrage and the reference `age` tool, and
refusal of every kind of damage."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pyrage
import pytest

from config import Argon2Params
from portal.security import crypto

SIZES = [0, 1, 100, crypto.CHUNK_SIZE - 1, crypto.CHUNK_SIZE, crypto.CHUNK_SIZE + 1,
         3 * crypto.CHUNK_SIZE, 200_003]


def require_age() -> str:
    path = shutil.which("age")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the reference `age` tool is required in CI (Debian package age)")
        pytest.skip("`age` is not installed")
    return path


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_pyrage_interop(size: int) -> None:
    pair = crypto.generate_keypair()
    data = os.urandom(size)
    sealed = crypto.seal(data, [pair.recipient])
    assert crypto.open_sealed(sealed, [pair.identity]) == data
    identity = pyrage.x25519.Identity.from_str(pair.identity)
    assert pyrage.decrypt(sealed, [identity]) == data
    assert crypto.open_sealed(pyrage.encrypt(data, [identity.to_public()]), [pair.identity]) == data


def test_push_writer_streams_in_small_pieces() -> None:
    pair = crypto.generate_keypair()
    data = os.urandom(5 * crypto.CHUNK_SIZE + 7)
    out = io.BytesIO()
    writer = crypto.AgeWriter(out, [pair.recipient])
    for start in range(0, len(data), 999):
        writer.write(data[start : start + 999])
    writer.close()
    assert writer.plaintext_size == len(data)
    chunks = list(crypto.open_stream(io.BytesIO(out.getvalue()), [pair.identity]))
    assert len(chunks) == 6 and b"".join(chunks) == data


def test_any_one_of_several_recipients_opens() -> None:
    pairs = [crypto.generate_keypair() for _ in range(3)]
    sealed = crypto.seal(b"for three", [p.recipient for p in pairs])
    for pair in pairs:
        assert crypto.open_sealed(sealed, [pair.identity]) == b"for three"
    with pytest.raises(crypto.CryptoError, match="no identity"):
        crypto.open_sealed(sealed, [crypto.generate_keypair().identity])


@pytest.mark.parametrize("where", ["header", "mac", "payload", "truncate", "extend"])
def test_damage_is_detected(where: str) -> None:
    pair = crypto.generate_keypair()
    sealed = bytearray(crypto.seal(os.urandom(2 * crypto.CHUNK_SIZE + 10), [pair.recipient]))
    header_end = sealed.index(b"\n---") + 1
    if where == "header":
        sealed[header_end - 3] ^= 1  # inside the stanza body
    elif where == "mac":
        sealed[header_end + 6] = ord("A") if sealed[header_end + 6] != ord("A") else ord("B")
    elif where == "payload":
        sealed[-100] ^= 1
    elif where == "truncate":
        del sealed[-(crypto.CHUNK_SIZE // 2):]
    else:
        sealed += b"\x00" * 40
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(bytes(sealed), [pair.identity])


def test_dropping_the_final_chunk_is_detected() -> None:
    pair = crypto.generate_keypair()
    data = os.urandom(2 * crypto.CHUNK_SIZE + 5)
    sealed = crypto.seal(data, [pair.recipient])
    without_last = sealed[: -(5 + 16)]
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(without_last, [pair.identity])


def test_bech32_round_trip_and_checksum() -> None:
    pair = crypto.generate_keypair()
    hrp, data = crypto.bech32_decode(pair.recipient)
    assert hrp == "age" and len(data) == 32
    assert crypto.bech32_encode("age", data) == pair.recipient
    broken = pair.recipient[:-1] + ("q" if pair.recipient[-1] != "q" else "p")
    with pytest.raises(crypto.CryptoError):
        crypto.bech32_decode(broken)
    assert crypto.recipient_of(pair.identity) == pair.recipient


def test_age_cli_decrypts_ours_and_we_decrypt_age_cli(tmp_path: Path) -> None:
    age = require_age()
    pair = crypto.generate_keypair()
    key_file = tmp_path / "unit.txt"
    key_file.write_text(crypto.identity_file_text(pair.identity, "test unit"))
    data = os.urandom(3 * crypto.CHUNK_SIZE + 123)
    (tmp_path / "ours.age").write_bytes(crypto.seal(data, [pair.recipient]))
    out = subprocess.run([age, "-d", "-i", str(key_file), str(tmp_path / "ours.age")],
                         capture_output=True, check=True)
    assert out.stdout == data
    theirs = subprocess.run([age, "-r", pair.recipient], input=data, capture_output=True,
                            check=True).stdout
    assert crypto.open_sealed(theirs, [pair.identity]) == data


def test_identity_wrapping_needs_the_password() -> None:
    cost = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    pair = crypto.generate_keypair()
    wrapped = crypto.wrap_identity(pair.identity, "a long passphrase", cost)
    assert pair.identity.encode() not in wrapped
    assert crypto.unwrap_identity(wrapped, "a long passphrase") == pair.identity
    with pytest.raises(crypto.CryptoError):
        crypto.unwrap_identity(wrapped, "a wrong passphrase")


def test_symmetric_sealing_binds_its_purpose() -> None:
    key = crypto.server_key("secret", "one purpose")
    assert key != crypto.server_key("secret", "another purpose")
    sealed = crypto.seal_symmetric(key, b"value", b"context")
    assert crypto.open_symmetric(key, sealed, b"context") == b"value"
    with pytest.raises(crypto.CryptoError):
        crypto.open_symmetric(key, sealed, b"other context")


def test_low_order_points_raise_crypto_error() -> None:
    """The spec says abort on an all-zero shared secret; it must be our error, not a ValueError
    from OpenSSL that a caller catching CryptoError would turn into a 500."""
    low_order = crypto.bech32_encode("age", bytes(32))
    with pytest.raises(crypto.CryptoError, match="low-order"):
        crypto.seal(b"x", [low_order])
    pair = crypto.generate_keypair()
    sealed = crypto.seal(b"x", [pair.recipient])
    share = sealed.split(b"\n")[1].split(b" ")[2]
    with pytest.raises(crypto.CryptoError, match="low-order"):
        crypto.open_sealed(sealed.replace(share, b"A" * 43), [pair.identity])


def test_identity_file_comment_stays_on_its_line() -> None:
    pair = crypto.generate_keypair()
    text = crypto.identity_file_text(pair.identity, "unit zhou\nAGE-SECRET-KEY-1FORGED\r\n")
    assert text.splitlines() == ["# unit zhou AGE-SECRET-KEY-1FORGED",
                                 f"# public key: {pair.recipient}", pair.identity]
