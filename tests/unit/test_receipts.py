"""Receipts: format and entropy, forgiving typing, and the slow hash that stands for them."""

from __future__ import annotations

import math
import re

import pytest

from config import Argon2Params, Settings
from portal.intake import receipts
from portal.security import crypto

FAST = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
SALT = b"s" * 32


def test_receipt_format_and_entropy() -> None:
    receipt = receipts.new_receipt()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", receipt)
    bits = receipts.LENGTH * math.log2(len(receipts.ALPHABET))
    assert bits >= 80
    assert len({receipts.new_receipt() for _ in range(2000)}) == 2000


@pytest.mark.parametrize("typed", [
    "{r}", "{r_lower}", "{r_plain}", "  {r_spaced}  ", "{r_confusable}",
])
def test_normalise_forgives_case_dashes_spaces_and_confusables(typed: str) -> None:
    receipt = "ABCD-EFGH-JK01-MNPQ-RSTV"
    variants = {
        "r": receipt, "r_lower": receipt.lower(), "r_plain": receipt.replace("-", ""),
        "r_spaced": receipt.replace("-", " "), "r_confusable": "ABCD-EFGH-JKOI-MNPQ-RSTV",
    }
    assert receipts.normalise(typed.format(**variants)) == "ABCDEFGHJK01MNPQRSTV"


@pytest.mark.parametrize("typed", ["", "ABCD", "ABCD-EFGH-JK01-MNPQ-RSTU", "A" * 21, "中文"])
def test_malformed_receipts_are_refused(typed: str) -> None:
    assert receipts.normalise(typed) is None


def test_derived_keys_are_deterministic_and_distinct() -> None:
    first = receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", SALT, FAST)
    again = receipts.derive_keys("abcdefghjk01mnpqrstv", SALT, FAST)
    other = receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTW", SALT, FAST)
    other_salt = receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", b"t" * 32, FAST)
    assert first == again
    assert first.lookup != other.lookup and first.lookup != other_salt.lookup
    assert first.keypair.identity != other.keypair.identity
    assert len(first.lookup) == 32


def test_malformed_receipt_costs_one_argon2_and_matches_nothing(monkeypatch) -> None:
    calls = []
    real = crypto.derive_key
    monkeypatch.setattr(crypto, "derive_key", lambda *a: calls.append(a) or real(*a))
    keys = receipts.derive_keys("not a receipt", SALT, FAST)
    assert keys.lookup == b"\x00" * 32
    assert len(calls) == 1


def test_production_receipt_hash_is_slow() -> None:
    # The receipt is the only key to a tip: the deployed cost must stay expensive to guess.
    cost = Settings(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://").RECEIPT_ARGON2
    assert cost.memory_kib >= 64 * 1024 and cost.time_cost >= 3
    settings = Settings(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://")
    wrap, login = settings.WRAP_ARGON2, settings.LOGIN_ARGON2
    assert (wrap.time_cost, wrap.memory_kib) != (cost.time_cost, cost.memory_kib)
    # The key that wraps an officer's private key is derived with parameters distinct from the
    # login hash, so a stolen login hash is no shortcut to the key.
    assert wrap != login and wrap.memory_kib >= login.memory_kib


SECRETS = receipts.SubmissionSecrets.from_secret_key("unit test secret key")


def test_a_form_token_derives_one_receipt_and_one_hash() -> None:
    token = receipts.new_form_token(SECRETS, "report")
    submission = receipts.form_submission(SECRETS, "report", token)
    assert submission is not None and len(submission.value) == 16  # 128 random bits
    receipt = submission.receipt(SECRETS)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", receipt)
    assert receipts.normalise(receipt) is not None
    again = receipts.form_submission(SECRETS, "report", token)
    assert again is not None and again.receipt(SECRETS) == receipt
    assert again.index(SECRETS) == submission.index(SECRETS)
    assert len(submission.index(SECRETS)) == 32
    # Neither the hash nor the receipt shows the token.
    assert submission.value not in submission.index(SECRETS)
    # Fresh tokens give fresh receipts, spread over the whole alphabet.
    receipts_ = {receipts.form_submission(SECRETS, "report", receipts.new_form_token(
        SECRETS, "report")).receipt(SECRETS) for _ in range(500)}
    assert len(receipts_) == 500
    assert set("".join(receipts_).replace("-", "")) == set(receipts.ALPHABET)


def test_only_tokens_the_server_made_for_that_form_are_honoured() -> None:
    token = receipts.new_form_token(SECRETS, "report")
    other_key = receipts.SubmissionSecrets.from_secret_key("another secret key")
    assert receipts.form_submission(other_key, "report", token) is None
    assert receipts.form_submission(SECRETS, "reply", token) is None  # not a reply token
    for bad in (None, "", "x", "!!!!", token[:-2], token + "AA", "A" * len(token)):
        assert receipts.form_submission(SECRETS, "report", bad) is None


def test_kinds_never_share_a_receipt_or_a_hash() -> None:
    value = b"\x01" * 16
    report, api = receipts.Submission("report", value), receipts.Submission("api", value)
    assert report.receipt(SECRETS) != api.receipt(SECRETS)
    assert report.index(SECRETS) != api.index(SECRETS)


@pytest.mark.parametrize(("key", "accepted"), [
    ("5f0c3a1e-9b7d-4c2a-8e61-0d4b2f7a9c13", True), ("0123456789abcdef" * 2, True),
    ("short", False), ("1" * 31, False), ("a" * 129, False), ("spaces are not ok " * 3, False),
    ("中文" * 20, False),
])
def test_idempotency_keys_must_have_room_for_128_bits(key: str, accepted: bool) -> None:
    assert (receipts.api_submission(key) is not None) is accepted
