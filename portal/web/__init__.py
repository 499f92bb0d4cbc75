"""Glue between Flask requests and the domain, shared by the citizen pages and the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from flask import current_app
from werkzeug.datastructures import FileStorage
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3, stubs 3.2

from portal.intake.filing import Limits

if TYPE_CHECKING:
    from auditlog.database import LogKeys


@dataclass
class RequestUpload:
    filename: str
    stream: BinaryIO
    oversize: bool


def uploads_from(files: list[FileStorage]) -> list[RequestUpload]:
    return [
        RequestUpload(filename=f.filename or "",
                      stream=f.stream,  # type: ignore[arg-type]  # our spool; werkzeug says IO[bytes]
                      oversize=bool(getattr(f.stream, "oversize", False)))
        for f in files
        if f.filename
    ]


def row_id(value: object) -> int | None:
    """A row id typed into a form or sent in JSON: ASCII digits (or a JSON integer) within the
    database's range, else None. `str.isdigit` alone lets "²" through, and `int` alone lets a
    40-digit number reach the database driver, which refuses it."""
    from portal.web.http import MAX_ROW_ID

    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if number <= MAX_ROW_ID else None


def limits() -> Limits:
    config = current_app.config
    return Limits(max_files=config["MAX_FILES"], max_file_bytes=config["MAX_FILE_BYTES"],
                  max_clean_bytes=config["MAX_CLEAN_BYTES"])


def followup_secret() -> bytes:
    from portal.security import crypto

    return crypto.server_key(current_app.config["SECRET_KEY"], "followup token")


def choices(pairs: Iterable[tuple[str, object]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, str(label)) for value, label in pairs]


def audit_keys() -> LogKeys:
    """The log-signing keys of this app (loaded once, from outside the database)."""
    from pathlib import Path

    from auditlog.database import load_keys

    keys: LogKeys | None = current_app.extensions.get("audit_keys")
    if keys is None:
        path = current_app.config.get("AUDIT_SIGNING_KEY_FILE") or str(
            Path(current_app.instance_path) / "audit-log.key")
        keys = load_keys(Path(path), current_app.config["AUDIT_LOG_ORIGIN"])
        current_app.extensions["audit_keys"] = keys
    return keys


def checkpoint_now() -> str:
    """Sign a checkpoint of the log as it stands and return its note (printed on a 移送书)."""
    from auditlog.database import make_checkpoint
    from portal.web.extensions import db

    return make_checkpoint(db.session(), audit_keys(),
                           current_app.config["AUDIT_LOG_ORIGIN"]).note
