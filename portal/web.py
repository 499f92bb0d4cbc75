"""Glue between Flask requests and the domain, shared by the citizen pages and the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app
from werkzeug.datastructures import FileStorage
from wtforms.fields.choices import SelectChoice

from portal.intake import Limits


@dataclass
class RequestUpload:
    filename: str
    stream: BinaryIO
    oversize: bool


def uploads_from(files: list[FileStorage]) -> list[RequestUpload]:
    return [
        RequestUpload(filename=f.filename or "", stream=f.stream,  # type: ignore[arg-type]
                      oversize=bool(getattr(f.stream, "oversize", False)))
        for f in files
        if f.filename
    ]


def limits() -> Limits:
    config = current_app.config
    return Limits(max_files=config["MAX_FILES"], max_file_bytes=config["MAX_FILE_BYTES"],
                  max_clean_bytes=config["MAX_CLEAN_BYTES"])


def followup_secret() -> bytes:
    from portal import crypto

    return crypto.server_key(current_app.config["SECRET_KEY"], "followup token")


def choices(pairs: Iterable[tuple[str, object]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, str(label)) for value, label in pairs]
