"""Receipts (查询码): the reporter's only key back to a tip.

A receipt is 100 random bits written as 20 Crockford base32 characters in groups of four
(easy to type on a phone: no I, L, O or U; case and dashes do not matter). It is shown once and
never stored: Argon2id of the receipt gives both the lookup value kept in the database and the
seed of an X25519 key that the tip is also sealed to, so the reporter can read officers' replies.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from typing import Literal, NewType

from portal.intake import hashgate
from portal.security import crypto
from portal.security.crypto import Argon2Cost

Receipt = NewType("Receipt", str)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 20  # 20 × 5 bits = 100 bits of entropy
_TRANSLATE = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Used when the typed text is not even a well-formed receipt, so that the answer takes as long.
_DECOY = "0" * LENGTH


@dataclass(frozen=True)
class ReceiptKeys:
    lookup: bytes  # stored in tips.receipt_lookup
    keypair: crypto.KeyPair  # the identity is never stored


def new_receipt() -> Receipt:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return Receipt("-".join(chars[i : i + 4] for i in range(0, LENGTH, 4)))


def normalise(text: str) -> str | None:
    """The canonical form of a typed receipt, or None if it cannot be one."""
    cleaned = "".join(c for c in text.upper() if c not in " -\t\r\n").translate(_TRANSLATE)
    if len(cleaned) != LENGTH or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned


def derive_keys(receipt: str, salt: bytes, cost: Argon2Cost) -> ReceiptKeys:
    """Slow-hash a receipt into its lookup value and its key pair. Always costs one Argon2id,
    run through this process's gate (portal/intake/hashgate.py): raises hashgate.Busy, having done
    nothing, when the hash cannot start in time."""
    canonical = normalise(receipt)
    secret = (canonical or _DECOY).encode()
    raw = hashgate.run(lambda: crypto.derive_key(
        secret, salt, cost.time_cost, cost.memory_kib, cost.parallelism))
    lookup = hmac.new(raw, b"qingliu receipt lookup", sha256).digest()
    seed = hmac.new(raw, b"qingliu receipt key", sha256).digest()
    if canonical is None:
        # A malformed receipt matches nothing; the decoy only spends the same time.
        lookup = b"\x00" * 32
    return ReceiptKeys(lookup=lookup, keypair=crypto.keypair_from_seed(seed))


# ---------------------------------------------------------------------------------------------
# Submitting once. A report form carries a one-time submission token (128 random bits, made when
# the form is drawn and kept across error re-renders). The receipt is derived from it under a key
# of the server, and the tip stores only a keyed hash of it: a second POST of the same form (a
# refresh, a double click) finds the tip by that hash, files nothing, and can show the same
# receipt again without it ever being stored. Partner apps get the same with Idempotency-Key.

SUBMISSION_BYTES = 16  # 128 bits
# How long a repeat of the same submission may show its receipt again: the length of a visit.
# Afterwards a repeat still files nothing, but the receipt is not shown again (a browser tab left
# open on a shared computer should not hand it to the next person).
RECEIPT_REPLAY_SECONDS = 60 * 60
# An Idempotency-Key chosen by a partner app is a secret as good as the receipt: ask for room
# for at least 128 random bits (a UUID v4 has 122; 32 hex digits 128).
_API_KEY = re.compile(r"^[A-Za-z0-9._~+/=-]{32,128}$")
SubmissionKind = Literal["report", "reply", "api", "api_message", "hotline"]


@dataclass(frozen=True)
class SubmissionSecrets:
    """Keys derived from the application's SECRET_KEY, one per purpose."""

    form_mac: bytes
    receipt: bytes
    index: bytes

    @classmethod
    def from_secret_key(cls, secret_key: str) -> SubmissionSecrets:
        return cls(form_mac=crypto.server_key(secret_key, "submission token"),
                   receipt=crypto.server_key(secret_key, "receipt from submission token"),
                   index=crypto.server_key(secret_key, "submission token hash"))


@dataclass(frozen=True)
class Submission:
    """One form (or API request) that must take effect once, whatever the number of POSTs."""

    kind: SubmissionKind
    value: bytes

    def _message(self) -> bytes:
        return self.kind.encode() + b"\0" + self.value

    def index(self, secrets_: SubmissionSecrets) -> bytes:
        """What the database keeps (tips.submission_hash, messages.submission_hash)."""
        return hmac.new(secrets_.index, self._message(), sha256).digest()

    def bind(self, secrets_: SubmissionSecrets) -> Once:
        return Once(index=self.index(secrets_), receipt=self.receipt(secrets_))

    def receipt(self, secrets_: SubmissionSecrets) -> Receipt:
        """The receipt of the tip this submission files: 100 bits of a keyed hash of the token,
        written like every receipt. Without the token (only in the citizen's browser) and the
        server key it is as unguessable as a random receipt."""
        digest = hmac.new(secrets_.receipt, self._message(), sha256).digest()
        number = int.from_bytes(digest[:13], "big") >> (13 * 8 - LENGTH * 5)
        chars = "".join(ALPHABET[(number >> (5 * (LENGTH - 1 - i))) & 31] for i in range(LENGTH))
        return Receipt("-".join(chars[i : i + 4] for i in range(0, LENGTH, 4)))


@dataclass(frozen=True)
class Once:
    """What the domain needs of a submission: its stored hash and the receipt it derives."""

    index: bytes
    receipt: Receipt


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_form_token(secrets_: SubmissionSecrets, kind: SubmissionKind) -> str:
    """A fresh token for a form being drawn: 128 random bits and a MAC, so that only tokens this
    server made are honoured (a client cannot pick a weak one and have its receipt derived)."""
    value = secrets.token_bytes(SUBMISSION_BYTES)
    tag = hmac.new(secrets_.form_mac, kind.encode() + b"\0" + value, sha256).digest()[:16]
    return _b64(value + tag)


def form_submission(secrets_: SubmissionSecrets, kind: SubmissionKind, token: str | None
                    ) -> Submission | None:
    """The submission a posted form token stands for, or None if it is missing or not ours."""
    try:
        raw = base64.urlsafe_b64decode((token or "") + "=" * (-len(token or "") % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != SUBMISSION_BYTES + 16:
        return None
    value, tag = raw[:SUBMISSION_BYTES], raw[SUBMISSION_BYTES:]
    expected = hmac.new(secrets_.form_mac, kind.encode() + b"\0" + value, sha256).digest()[:16]
    if not hmac.compare_digest(tag, expected):
        return None
    return Submission(kind, value)


def api_submission(idempotency_key: str, kind: SubmissionKind = "api") -> Submission | None:
    """An Idempotency-Key header as a submission, or None if it cannot hold 128 random bits."""
    if not _API_KEY.match(idempotency_key):
        return None
    return Submission(kind, idempotency_key.encode())
