"""The one door to ciphertext: age v1 (https://age-encryption.org/v1) sealing and opening,
X25519 keys in age's Bech32 encoding, and password wrapping of private keys.

Why our own age writer: the citizen's upload arrives as chunks pushed by Werkzeug's multipart
parser, and plaintext must never touch the disk nor sit whole in memory. pyrage only offers
whole-buffer or pull-from-reader APIs, so this module implements the (small) age format on top of
`cryptography` with a push-mode writer and a streaming reader. tests/unit/test_age_interop.py holds
it to the reference: interop in both directions with Debian's `age` and with pyrage, and the same
damaged or non-canonical files refused by all three. The reader is as strict as the spec's ABNF.

Nothing here imports Flask.
"""

from __future__ import annotations

import base64
import hmac
import io
import os
import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import BinaryIO, NewType, Protocol

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

AgeRecipient = NewType("AgeRecipient", str)  # "age1…"
AgeIdentity = NewType("AgeIdentity", str)  # "AGE-SECRET-KEY-1…"

_INTRO = b"age-encryption.org/v1\n"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
CHUNK_SIZE = 64 * 1024
_TAG = 16
_COLUMNS = 64  # stanza bodies are wrapped at 64 columns
# An argument line can be long (a post-quantum or plugin stanza carries a 1,500-character share),
# and must still be read; the caps only keep a hostile header from filling memory.
_MAX_LINE = 64 * 1024
_MAX_HEADER = 1024 * 1024
_ARGUMENT = re.compile(rb"[\x21-\x7e]+")  # argument = 1*VCHAR
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NO_ENC = serialization.NoEncryption()


class CryptoError(Exception):
    """Ciphertext that is malformed, not for any of the given keys, or tampered with."""


# ---------------------------------------------------------------------------------------------
# Bech32 (BIP 173), which age uses for keys, without BIP 173's 90-character limit.

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: Iterable[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & maxv)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & maxv):
        raise CryptoError("invalid bech32 padding")
    return out


def bech32_encode(hrp: str, payload: bytes) -> str:
    data = _convert_bits(payload, 8, 5, True)
    checksum_value = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(checksum_value >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise CryptoError("mixed-case bech32")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise CryptoError("malformed bech32")
    hrp, rest = text[:pos], text[pos + 1 :]
    try:
        data = [_CHARSET.index(c) for c in rest]
    except ValueError as exc:
        raise CryptoError("invalid bech32 character") from exc
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise CryptoError("bad bech32 checksum")
    return hrp, bytes(_convert_bits(data[:-6], 5, 8, False))


# ---------------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class KeyPair:
    identity: AgeIdentity
    recipient: AgeRecipient


def _identity_from_private(private: X25519PrivateKey) -> KeyPair:
    raw = private.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)
    pub = private.public_key().public_bytes(_RAW, _RAW_PUB)
    return KeyPair(
        identity=AgeIdentity(bech32_encode("age-secret-key-", raw).upper()),
        recipient=AgeRecipient(bech32_encode("age", pub)),
    )


def generate_keypair() -> KeyPair:
    return _identity_from_private(X25519PrivateKey.generate())


def keypair_from_seed(seed: bytes) -> KeyPair:
    """A deterministic key pair (used for the receipt key: the seed comes from Argon2id)."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    return _identity_from_private(X25519PrivateKey.from_private_bytes(seed))


def _parse_recipient(recipient: str) -> X25519PublicKey:
    hrp, data = bech32_decode(recipient.strip())
    if hrp != "age" or len(data) != 32:
        raise CryptoError("not an age X25519 recipient")
    return X25519PublicKey.from_public_bytes(data)


def _parse_identity(identity: str) -> X25519PrivateKey:
    hrp, data = bech32_decode(identity.strip())
    if hrp != "age-secret-key-" or len(data) != 32:
        raise CryptoError("not an age X25519 identity")
    return X25519PrivateKey.from_private_bytes(data)


def recipient_of(identity: AgeIdentity) -> AgeRecipient:
    return _identity_from_private(_parse_identity(identity)).recipient


def identity_file_text(identity: AgeIdentity, comment: str) -> str:
    """The text of an identity file as age-keygen writes it, readable by `age -d -i FILE`.

    The comment is kept on one line: a line break in it would start a line that age reads as a
    (malformed) identity and refuses the whole file.
    """
    recipient = recipient_of(identity)
    comment = " ".join(comment.splitlines())
    return f"# {comment}\n# public key: {recipient}\n{identity}\n"


# ---------------------------------------------------------------------------------------------
# age v1 format


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    if b"=" in text or b"\r" in text:
        raise CryptoError("non-canonical base64")
    padded = text + b"=" * (-len(text) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except ValueError as exc:
        raise CryptoError("bad base64") from exc
    if _b64(data) != text:
        raise CryptoError("non-canonical base64")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _x25519_stanza(file_key: bytes, recipient: X25519PublicKey) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes(_RAW, _RAW_PUB)
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError as exc:  # OpenSSL refuses the all-zero secret of a low-order point
        raise CryptoError("low-order X25519 recipient") from exc
    salt = share + recipient.public_bytes(_RAW, _RAW_PUB)
    wrap_key = _hkdf(shared, salt, _X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(b"\x00" * 12, file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n"


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Argon2Cost(Hashable, Protocol):
    """Argon2id's cost, as config.Argon2Params gives it. Hashable, so that what is derived from
    a cost (a hasher, a dummy hash) can be cached per cost."""

    @property
    def time_cost(self) -> int: ...
    @property
    def memory_kib(self) -> int: ...
    @property
    def parallelism(self) -> int: ...


class ByteSink(Protocol):
    """Where AgeWriter puts the ciphertext: a file, or a store of rows (intake.blobs.ChunkSink)."""

    def write(self, data: bytes, /) -> int: ...


class AgeWriter:
    """Push-mode age encryption: write() plaintext as it arrives, close() to finish.

    Holds at most one 64 KiB chunk of plaintext at a time.
    """

    def __init__(self, sink: ByteSink, recipients: Sequence[str]) -> None:
        if not recipients:
            raise CryptoError("no recipients")
        self._sink = sink
        file_key = os.urandom(16)
        header = _INTRO + b"".join(
            _x25519_stanza(file_key, _parse_recipient(r)) for r in recipients
        ) + b"---"
        mac = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
        nonce = os.urandom(16)
        sink.write(header + b" " + _b64(mac) + b"\n" + nonce)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False
        self.plaintext_size = 0

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed AgeWriter")
        self._buffer += data
        self.plaintext_size += len(data)
        # Keep the last (possibly full) chunk back: only close() knows it is the final one.
        while len(self._buffer) > CHUNK_SIZE:
            self._emit(bytes(self._buffer[:CHUNK_SIZE]), last=False)
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def _emit(self, chunk: bytes, last: bool) -> None:
        self._sink.write(self._aead.encrypt(_chunk_nonce(self._counter, last), chunk, None))
        self._counter += 1

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._closed = True

    def __enter__(self) -> AgeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _read_line(source: BinaryIO) -> bytes:
    line = source.readline(_MAX_LINE)
    if not line.endswith(b"\n"):
        raise CryptoError("truncated age header")
    return line[:-1]


@dataclass(frozen=True)
class _Stanza:
    args: list[bytes]
    body: bytes


def _read_header(source: BinaryIO) -> tuple[list[_Stanza], bytes, bytes]:
    """The stanzas, the header text the MAC covers, and the MAC, read as strictly as the age spec's
    ABNF: LF only, no padding or stray bits in base64, arguments of visible ASCII separated by one
    space, body lines of exactly 64 columns ended by a shorter one."""
    header = bytearray(_read_line(source) + b"\n")
    if bytes(header) != _INTRO:
        raise CryptoError("not an age v1 file")
    stanzas: list[_Stanza] = []
    while True:
        line = _read_line(source)
        if line.startswith(b"--- "):
            mac = _unb64(line[4:])
            if len(mac) != 32:
                raise CryptoError("malformed age header MAC")
            return stanzas, bytes(header + b"---"), mac
        if not line.startswith(b"-> "):
            raise CryptoError("malformed age header")
        args = line[3:].split(b" ")
        if not all(_ARGUMENT.fullmatch(arg) for arg in args):
            raise CryptoError("malformed stanza arguments")
        header += line + b"\n"
        body = bytearray()
        while True:
            body_line = _read_line(source)
            if len(body_line) > _COLUMNS:
                raise CryptoError("stanza body line longer than 64 columns")
            header += body_line + b"\n"
            body += _unb64(body_line)
            if len(header) > _MAX_HEADER:
                raise CryptoError("age header too large")
            if len(body_line) < _COLUMNS:
                break
        stanzas.append(_Stanza(args, bytes(body)))


def _x25519_share(stanza: _Stanza) -> X25519PublicKey:
    """The ephemeral share of an X25519 stanza, which must have exactly two arguments, a 32-byte
    share and a 32-byte body (the spec's MUSTs, checked for every X25519 stanza)."""
    if len(stanza.args) != 2:
        raise CryptoError("X25519 stanza with a wrong number of arguments")
    share = _unb64(stanza.args[1])
    if len(share) != 32 or len(stanza.body) != 32:
        raise CryptoError("malformed X25519 stanza")
    return X25519PublicKey.from_public_bytes(share)


def _unwrap_file_key(share: X25519PublicKey, body: bytes, identity: X25519PrivateKey
                     ) -> bytes | None:
    try:
        shared = identity.exchange(share)
    except ValueError as exc:  # OpenSSL refuses the all-zero secret; the spec says abort
        raise CryptoError("low-order X25519 share") from exc
    salt = share.public_bytes(_RAW, _RAW_PUB) + identity.public_key().public_bytes(_RAW, _RAW_PUB)
    try:
        return ChaCha20Poly1305(_hkdf(shared, salt, _X25519_LABEL)).decrypt(
            b"\x00" * 12, body, None
        )
    except InvalidTag:
        return None


def _open_header(source: BinaryIO, identities: Sequence[str]) -> ChaCha20Poly1305:
    keys = [_parse_identity(i) for i in identities]
    stanzas, header, mac = _read_header(source)
    if not stanzas:
        raise CryptoError("age header without a recipient stanza")
    if len(stanzas) > 1 and any(stanza.args[0] == b"scrypt" for stanza in stanzas):
        raise CryptoError("an scrypt stanza must be the only one")  # the spec's MUST
    x25519 = [(_x25519_share(s), s.body) for s in stanzas if s.args[0] == b"X25519"]
    file_key = next((found for share, body in x25519 for key in keys
                     if (found := _unwrap_file_key(share, body, key)) is not None), None)
    if file_key is None:
        raise CryptoError("no identity matches this file")
    expected = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise CryptoError("age header MAC mismatch")
    nonce = source.read(16)
    if len(nonce) != 16:
        raise CryptoError("truncated age payload")
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))


def open_stream(source: BinaryIO, identities: Sequence[str]) -> Iterator[bytes]:
    """Decrypt an age file chunk by chunk. Raises CryptoError on any tampering or truncation."""
    aead = _open_header(source, identities)
    counter = 0
    block = source.read(CHUNK_SIZE + _TAG)
    while True:
        following = source.read(CHUNK_SIZE + _TAG) if len(block) == CHUNK_SIZE + _TAG else b""
        last = not following
        if not block or (not last and len(block) != CHUNK_SIZE + _TAG):
            raise CryptoError("truncated age payload")
        try:
            chunk = aead.decrypt(_chunk_nonce(counter, last), block, None)
        except InvalidTag as exc:
            raise CryptoError("age payload authentication failed") from exc
        if last and not chunk and counter > 0:
            raise CryptoError("empty final chunk")
        yield chunk
        if last:
            return
        counter += 1
        block = following


def seal(plaintext: bytes, recipients: Sequence[str]) -> bytes:
    out = io.BytesIO()
    with AgeWriter(out, recipients) as writer:
        writer.write(plaintext)
    return out.getvalue()


def open_sealed(ciphertext: bytes, identities: Sequence[str]) -> bytes:
    return b"".join(open_stream(io.BytesIO(ciphertext), identities))


# ---------------------------------------------------------------------------------------------
# Password-derived wrapping of a personal identity, and symmetric sealing under a server secret.


def derive_key(secret: bytes, salt: bytes, time_cost: int, memory_kib: int, lanes: int) -> bytes:
    return hash_secret_raw(
        secret, salt, time_cost=time_cost, memory_cost=memory_kib, parallelism=lanes,
        hash_len=32, type=Type.ID,
    )


def wrap_identity(identity: AgeIdentity, password: str, params: Argon2Cost) -> bytes:
    """Wrap a personal identity under Argon2id(password); the output carries salt and params."""
    salt = os.urandom(16)
    t, m, p = params.time_cost, params.memory_kib, params.parallelism
    key = derive_key(password.encode(), salt, t, m, p)
    nonce = os.urandom(12)
    head = b"QLW1" + t.to_bytes(2, "big") + m.to_bytes(4, "big") + p.to_bytes(1, "big") + salt
    return head + nonce + AESGCM(key).encrypt(nonce, identity.encode(), head)


def unwrap_identity(wrapped: bytes, password: str) -> AgeIdentity:
    if not wrapped.startswith(b"QLW1") or len(wrapped) < 4 + 7 + 16 + 12 + 16:
        raise CryptoError("not a wrapped identity")
    t = int.from_bytes(wrapped[4:6], "big")
    m = int.from_bytes(wrapped[6:10], "big")
    p = wrapped[10]
    head, nonce, body = wrapped[:27], wrapped[27:39], wrapped[39:]
    key = derive_key(password.encode(), head[11:27], t, m, p)
    try:
        return AgeIdentity(AESGCM(key).decrypt(nonce, body, head).decode())
    except InvalidTag as exc:
        raise CryptoError("wrong password or damaged key") from exc


def server_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the application's SECRET_KEY."""
    return _hkdf(secret_key.encode(), b"qingliu", purpose.encode())


def seal_symmetric(key: bytes, plaintext: bytes, associated: bytes = b"") -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def open_symmetric(key: bytes, sealed: bytes, associated: bytes = b"") -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], associated)
    except (InvalidTag, ValueError) as exc:
        raise CryptoError("sealed value rejected") from exc
