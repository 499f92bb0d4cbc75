"""Signed checkpoints: C2SP signed notes (c2sp.org/signed-note) carrying a tlog checkpoint
(c2sp.org/tlog-checkpoint), signed with Ed25519. Standard library and `cryptography` only.

A checkpoint body is "<origin>\\n<size>\\n<base64(root)>\\n". A signed note is the body, an
empty line, then one line per signature: "— <key name> <base64(key id || signature)>\\n", where
key id = SHA-256(key name || 0x0A || 0x01 || public key)[:4] and the Ed25519 signature covers
the body (up to and including its last newline). Key texts follow Go's
golang.org/x/mod/sumdb/note: verifier "<name>+<key id hex>+<base64(0x01 || public key)>",
signer "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte seed)>". The signer key is
a secret kept in a file outside the database; anyone holding it can sign any history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "checkpoint_body",
    "generate_signer",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_checkpoint_body",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # as Go's note.Open; the spec asks verifiers to accept at least 16
SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note or key that is malformed, unsigned by the expected key, or badly signed."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def __repr__(self) -> str:
        return f"Checkpoint({self.origin!r}, {self.size}, {self.root.hex()})"


def _valid_name(name: str) -> bool:
    """Non-empty, no Unicode space and no "+" (Go's isValidName)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _b64decode(text: str) -> bytes:
    """Standard base64 with padding; anything else (or a non-canonical encoding) is refused."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"not standard base64: {text[:40]!r}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"not canonical base64: {text[:40]!r}")
    return raw


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Verifier:
    """An Ed25519 note verifier key: name, 4-byte key id, 32-byte public key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if not _valid_name(name):
            raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces "
                            "or '+'")
        self.name = name
        self.public_key = bytes(public_key)
        self.key_id = key_id(name, self.public_key)
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        """Parse "<name>+<key id hex>+<base64(0x01 || public key)>"."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _KEY_ID.fullmatch(parts[1]):
            raise NoteError("a verifier key reads <name>+<8 lowercase hex>+<base64 key>")
        name, hash_hex, key64 = parts
        key = _b64decode(key64)
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        verifier = cls(name, key[1:])
        if verifier.key_id.hex() != hash_hex:
            raise NoteError(f"verifier key id {hash_hex} does not match its key "
                            f"({verifier.key_id.hex()})")
        return verifier

    @property
    def label(self) -> str:
        """name+keyid, as in error messages."""
        return f"{self.name}+{self.key_id.hex()}"

    @property
    def text(self) -> str:
        key64 = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.label}+{key64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.text!r})"


class Signer:
    """An Ed25519 note signer key (secret): name and 32-byte seed."""

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self._seed = bytes(seed)
        self.verifier = Verifier(name, _raw_public(self._private.public_key()))
        self.name = name
        self.key_id = self.verifier.key_id

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """Parse "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>"."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _KEY_ID.fullmatch(parts[3]):
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<8 lowercase hex>+<base64>")
        key = _b64decode(parts[4])
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 key (0x01 and a 32-byte seed)")
        signer = cls(parts[2], key[1:])
        if signer.key_id.hex() != parts[3]:
            raise NoteError("signer key id does not match its key")
        return signer

    @property
    def text(self) -> str:
        key64 = base64.b64encode(bytes([ALG_ED25519]) + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{key64}"

    @property
    def verifier_text(self) -> str:
        return self.verifier.text

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the seed
        return f"Signer({self.verifier.label!r})"


def generate_signer(name: str) -> tuple[str, str]:
    """A new key pair: (signer text, verifier text)."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    signer = Signer(name, seed)
    return signer.text, signer.verifier_text


def _check_text(text: str) -> None:
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"malformed note: control character U+{ord(ch):04X}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("malformed note: not valid Unicode") from None


def sign_note(signer: Signer, text: str) -> str:
    """The signed note of `text` (which must end in a newline) with one signature."""
    if not text.endswith("\n"):
        raise NoteError("malformed note: the text must end in a newline")
    _check_text(text)
    signature = signer.sign(text.encode("utf-8"))
    sig64 = base64.b64encode(signer.key_id + signature).decode()
    return f"{text}\n{SIG_PREFIX}{signer.name} {sig64}\n"


def open_note(note: str | bytes, verifier: Verifier) -> str:
    """The text of a signed note that carries a valid signature by `verifier`.

    Signatures by other keys are ignored (the spec requires it); a signature by this key that
    does not verify, a note without one, or a malformed note raises NoteError.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not UTF-8") from None
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no empty line before the signatures")
    text, sigs = note[:split + 1], note[split + 2:]
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("malformed note: no signature lines, or the last is not terminated")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    found: list[str] = []
    verified = False
    message = text.encode("utf-8")
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed note: not a signature line: {line[:60]!r}")
        name, _, sig64 = line[len(SIG_PREFIX):].partition(" ")
        if not _valid_name(name) or not sig64:
            raise NoteError(f"malformed note: bad signature line: {line[:60]!r}")
        try:
            raw = _b64decode(sig64)
        except NoteError as error:
            raise NoteError(f"malformed note: signature by {name}: {error}") from None
        if len(raw) < 5:
            raise NoteError(f"malformed note: signature by {name} is too short")
        found.append(f"{name}+{raw[:4].hex()}")
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue  # another key: ignored
        if not verifier.verify(message, raw[4:]):
            raise NoteError(f"invalid signature for key {verifier.label}")
        verified = True
    if not verified:
        raise NoteError(f"no signature by the expected key {verifier.label} "
                        f"(signed by {', '.join(found)})")
    return text


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """"<origin>\\n<size>\\n<base64(root)>\\n" (c2sp.org/tlog-checkpoint, no extension lines)."""
    if not origin or "\n" in origin:
        raise NoteError("the origin must be one non-empty line")
    if type(size) is not int or size < 0:
        raise NoteError("the size must be an integer >= 0")
    if len(root) != 32:
        raise NoteError("the root must be 32 bytes")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint_body(text: str) -> Checkpoint:
    """The checkpoint in a note text (unverified: use parse_checkpoint)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("malformed checkpoint: it needs origin, size and root lines")
    if len(lines) > 4:
        raise NoteError("malformed checkpoint: extension lines are not used by this log")
    origin, size_text, root64 = lines[:3]
    if not origin:
        raise NoteError("malformed checkpoint: empty origin")
    if not _SIZE.fullmatch(size_text):
        raise NoteError(f"malformed checkpoint: size {size_text[:30]!r} is not a decimal number")
    try:
        root = _b64decode(root64)
    except NoteError as error:
        raise NoteError(f"malformed checkpoint: root {error}") from None
    if len(root) != 32:
        raise NoteError(f"malformed checkpoint: the root is {len(root)} bytes, not 32")
    return Checkpoint(origin, int(size_text), root)


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes) -> str:
    """The full signed note of the checkpoint (origin, size, root)."""
    return sign_note(signer, checkpoint_body(origin, size, root))


def parse_checkpoint(note_text: str | bytes, verifier: Verifier,
                     origin: str | None = None) -> Checkpoint:
    """Verify the note's signature by `verifier`, then parse the checkpoint it carries.

    With `origin`, the checkpoint's origin line must also equal it. Raises NoteError.
    """
    checkpoint = parse_checkpoint_body(open_note(note_text, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
