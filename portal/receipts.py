"""Receipts (查询码): the reporter's only key back to a tip.

A receipt is 100 random bits written as 20 Crockford base32 characters in groups of four
(easy to type on a phone: no I, L, O or U; case and dashes do not matter). It is shown once and
never stored: Argon2id of the receipt gives both the lookup value kept in the database and the
seed of an X25519 key that the tip is also sealed to, so the reporter can read officers' replies.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256
from typing import NewType, Protocol

from portal import crypto

Receipt = NewType("Receipt", str)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 20  # 20 × 5 bits = 100 bits of entropy
_TRANSLATE = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Used when the typed text is not even a well-formed receipt, so that the answer takes as long.
_DECOY = "0" * LENGTH


class Argon2Cost(Protocol):
    time_cost: int
    memory_kib: int
    parallelism: int


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
    """Slow-hash a receipt into its lookup value and its key pair. Always costs one Argon2id."""
    canonical = normalise(receipt)
    raw = crypto.derive_key(
        (canonical or _DECOY).encode(), salt, cost.time_cost, cost.memory_kib, cost.parallelism
    )
    lookup = hmac.new(raw, b"qingliu receipt lookup", sha256).digest()
    seed = hmac.new(raw, b"qingliu receipt key", sha256).digest()
    if canonical is None:
        # A malformed receipt matches nothing; the decoy only spends the same time.
        lookup = b"\x00" * 32
    return ReceiptKeys(lookup=lookup, keypair=crypto.keypair_from_seed(seed))
