"""Log records never carry a client address: gunicorn, for one, logs malformed requests with
`ip=…` at WARNING. RedactAddresses rewrites every IPv4/IPv6 address in a record's message."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.config import Config

_IPV4 = r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"
_IPV6 = (r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){3,7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f])"
         r"|(?<![\w:])[0-9A-Fa-f:]*::[0-9A-Fa-f:]*[0-9A-Fa-f]")
_ADDRESS = re.compile(f"{_IPV4}|{_IPV6}")
REDACTED = "[address removed]"


def redact(text: str) -> str:
    return _ADDRESS.sub(REDACTED, text)


class RedactAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with every handler of its error log filtered."""

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.addFilter(RedactAddresses())
