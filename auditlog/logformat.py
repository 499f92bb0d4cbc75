"""The audit log's entry format: canonical JSON, leaf hash, chain hash and bundle lines.

Standard library only. The specification is docs/audit-log.md; in short:

    canonical(entry) = json.dumps(entry, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode("utf-8")
    leaf_hash(c)     = SHA-256(0x00 || c)                       (RFC 6962 §2.1)
    chain_hash(p, l) = SHA-256(p || l), p = 32 zero bytes for seq 0
    line             = canonical({"chain": hex(chain), "entry": entry}) + "\\n"

`canonical` validates the entry strictly (exact key set, exact types, no floats) and raises
FormatError naming the first problem, so that nothing that another verifier could encode
differently is ever hashed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CHAIN_PREFIX",
    "ENTRY_KEYS",
    "ENTRY_START",
    "VERSION",
    "ZERO",
    "FormatError",
    "canonical",
    "chain_hash",
    "decode_line",
    "encode_line",
    "format_time",
    "leaf_hash",
    "parse_time",
    "validate",
]

VERSION = 1
ZERO = bytes(32)
ENTRY_KEYS = frozenset({
    "v", "seq", "at", "actor_type", "actor_id", "role", "action", "object_type", "object_id",
    "unit", "details", "prev",
})
# Integers must fit a signed 64-bit column (PostgreSQL bigint), and so every JSON reader.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A bundle line is canonical JSON of {"chain": ..., "entry": ...}; "chain" sorts first, so the
# entry's canonical bytes are line[ENTRY_START:-2] (before the closing "}" and the newline).
CHAIN_PREFIX = b'{"chain":"'
_ENTRY_INFIX = b'","entry":'
_LINE_END = b"}\n"
ENTRY_START = len(CHAIN_PREFIX) + 64 + len(_ENTRY_INFIX)

_STR = "string"
_STR_OR_NULL = "string or null"
_INT_OR_NULL = "integer or null"
_FIELDS: dict[str, str] = {
    "actor_type": _STR,
    "actor_id": _INT_OR_NULL,
    "role": _STR_OR_NULL,
    "action": _STR,
    "object_type": _STR_OR_NULL,
    "object_id": _INT_OR_NULL,
    "unit": _STR_OR_NULL,
}


class FormatError(ValueError):
    """An entry or a bundle line that does not follow the format; the message names the problem."""


def _is_int(value: object) -> bool:
    return type(value) is int and INT_MIN <= value <= INT_MAX  # bool is not an int here


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def validate(entry: Mapping[str, Any]) -> None:
    """Raise FormatError unless `entry` is a well-formed version-1 audit entry.

    (Strings that cannot be encoded as UTF-8, i.e. lone surrogates, are caught by `canonical`.)
    """
    if not _is_mapping(entry):
        raise FormatError(f"entry must be a JSON object, not {type(entry).__name__}")
    if entry.keys() != ENTRY_KEYS:
        keys = set(entry.keys())
        missing, extra = sorted(ENTRY_KEYS - keys), sorted(map(str, keys - ENTRY_KEYS))
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise FormatError(f"entry keys: {'; '.join(parts)}")
    if not (_is_int(entry["v"]) and entry["v"] == VERSION):
        raise FormatError(f"v must be {VERSION}, not {entry['v']!r}")
    seq = entry["seq"]
    if not (_is_int(seq) and seq >= 0):
        raise FormatError(f"seq must be an integer >= 0, not {seq!r}")
    at = entry["at"]
    if type(at) is not str:
        raise FormatError(f"at must be a string, not {type(at).__name__}")
    parse_time(at)
    for name, kind in _FIELDS.items():
        value = entry[name]
        if kind == _INT_OR_NULL:
            if not (value is None or _is_int(value)):
                raise FormatError(f"{name} must be a 64-bit {kind}, not {value!r}")
        elif not (type(value) is str or (value is None and kind == _STR_OR_NULL)):
            raise FormatError(f"{name} must be a {kind}, not {type(value).__name__}")
    details = entry["details"]
    if not _is_mapping(details):
        raise FormatError(f"details must be an object, not {type(details).__name__}")
    for key, value in details.items():
        if type(key) is not str:
            raise FormatError(f"details key {key!r} is not a string")
        if not (type(value) is str or value is None or type(value) is bool or _is_int(value)):
            raise FormatError(
                f"details[{key!r}] must be a string, 64-bit integer, boolean or null, "
                f"not {type(value).__name__} {value!r}")
    prev = entry["prev"]
    if not (type(prev) is str and _HEX64.fullmatch(prev)):
        raise FormatError(f"prev must be 64 lowercase hex characters, not {prev!r}")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of `entry` (validated first); these bytes are what is hashed.

    Equal to json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    encoded as UTF-8.
    """
    validate(entry)
    if type(entry) is not dict:
        entry = dict(entry)
    if type(entry["details"]) is not dict:
        entry = {**entry, "details": dict(entry["details"])}
    try:
        return _ENCODER.encode(entry).encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("a string is not valid Unicode (lone surrogate)") from None


def leaf_hash(canonical_bytes: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || canonical bytes)."""
    return hashlib.sha256(b"\x00" + canonical_bytes).digest()


def chain_hash(prev: bytes, leaf: bytes) -> bytes:
    """SHA-256(prev || leaf); prev is the previous entry's chain hash, ZERO for seq 0."""
    if len(prev) != 32 or len(leaf) != 32:
        raise ValueError("chain_hash takes two 32-byte hashes")
    return hashlib.sha256(prev + leaf).digest()


def format_time(when: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC. A naive datetime is refused, as in models.base."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise FormatError("naive datetime: audit times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a `format_time` string; FormatError if it is not one exactly."""
    if not _TIME.fullmatch(text):
        raise FormatError(f"at must look like 2026-01-31T23:59:59.000000Z, not {text!r}")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise FormatError(f"at is not a real time: {text!r}") from None


def encode_line(entry: Mapping[str, Any], chain: bytes) -> bytes:
    """One `entries.jsonl` line: canonical {"chain": hex, "entry": entry} and a newline."""
    if len(chain) != 32:
        raise ValueError("chain must be 32 bytes")
    return CHAIN_PREFIX + chain.hex().encode() + _ENTRY_INFIX + canonical(entry) + _LINE_END


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormatError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise FormatError(f"floats are not allowed: {text}")


_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_no_float,
                                   parse_constant=_no_float)
# Duplicate keys need no hook on the fast path: the canonical re-encoding would differ.
_FAST_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


def _loads(data: bytes, decoder: json.JSONDecoder = _STRICT_DECODER) -> Any:
    try:
        return decoder.decode(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise FormatError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise FormatError(f"not JSON: {error.msg} at column {error.colno}") from None


def decode_line(line: bytes) -> tuple[dict[str, Any], bytes]:
    """The (entry, chain hash) of one bundle line, which must be byte for byte canonical.

    Accepts the line with or without its final newline. Raises FormatError naming the problem.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    if (line.startswith(CHAIN_PREFIX) and line.endswith(b"}")
            and line[ENTRY_START - len(_ENTRY_INFIX):ENTRY_START] == _ENTRY_INFIX):
        # The fast path: the entry's canonical bytes are a slice of the line.
        chain_hex = line[len(CHAIN_PREFIX):len(CHAIN_PREFIX) + 64]
        entry_bytes = line[ENTRY_START:-1]
        entry = _loads(entry_bytes, _FAST_DECODER)
        if not isinstance(entry, dict):
            raise FormatError("entry is not a JSON object")
        if canonical(entry) != entry_bytes:
            _loads(entry_bytes)  # names a duplicate key, if that is the problem
            raise FormatError("entry is not in canonical form")
        if not _HEX64.fullmatch(chain_hex.decode("ascii", "replace")):
            raise FormatError("chain must be 64 lowercase hex characters")
        return entry, bytes.fromhex(chain_hex.decode("ascii"))
    # Anything else is an error; decode it to say what is wrong.
    wrapper = _loads(line)
    if not isinstance(wrapper, dict) or set(wrapper) != {"chain", "entry"}:
        raise FormatError('a line must be an object with exactly the keys "chain" and "entry"')
    chain = wrapper["chain"]
    if not (isinstance(chain, str) and _HEX64.fullmatch(chain)):
        raise FormatError("chain must be 64 lowercase hex characters")
    validate(wrapper["entry"])
    raise FormatError("line is not in canonical form")
