import logging

import pytest

from portal.web.logscrub import REDACTED, RedactAddresses, redact


@pytest.mark.parametrize("address", ["203.0.113.77", "10.0.0.1", "2001:db8::1",
                                     "fe80::1ff:fe23:4567:890a", "::1",
                                     "2001:0db8:85a3:0000:0000:8a2e:0370:7334"])
def test_addresses_are_removed(address: str) -> None:
    assert address not in redact(f"Invalid request from ip={address}: bad line")
    assert REDACTED in redact(f"from {address}")


@pytest.mark.parametrize("text", ["[2026-11-27 18:12:03 +0000] [29125] [WARNING] Booting",
                                  "version 1.2.3", "took 0.25 s", "Class::method"])
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_filter_rewrites_the_formatted_message() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "from ip=%s", ("192.0.2.5",),
                               None)
    RedactAddresses().filter(record)
    assert record.getMessage() == f"from ip={REDACTED}"
