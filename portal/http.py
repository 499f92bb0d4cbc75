"""HTTP-level protection shared by every face: the upload-spooling request class, security
headers, the language of the visit, and the rate-limit key that never stores an address."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from hashlib import sha256
from typing import IO, Any

import flask_babel
from flask import Flask, Request, current_app, request, session
from flask.wrappers import Response
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.routing import IntegerConverter, Map

from portal import crypto
from portal.uploads import EncryptedSpool

LOCALES = {"zh": "zh_Hans", "ko": "ko", "en": "en"}
LANG_LABELS = (("zh", "中文"), ("ko", "조선어"), ("en", "English"))

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _without_nul(value: object) -> object:
    """A value with every NUL character dropped from its text, however deeply nested."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


class TextParameters(ImmutableMultiDict):
    """Query and form parameters without NUL characters. No browser puts NUL in what a person
    types, and PostgreSQL can neither store nor compare text holding it (psycopg refuses the
    parameter), so it is dropped where the request is parsed, before any view reads a value."""

    def __init__(self, mapping: object = None) -> None:
        if mapping is None:
            super().__init__()
            return
        if isinstance(mapping, MultiDict):
            pairs: Iterable[tuple[object, object]] = mapping.items(multi=True)
        elif isinstance(mapping, dict):
            pairs = mapping.items()
        else:
            pairs = mapping  # type: ignore[assignment]
        super().__init__([(_without_nul(k), _without_nul(v)) for k, v in pairs])


class PortalRequest(Request):
    """Uploaded files are encrypted while they stream in (see portal/uploads.py); text
    parameters and JSON strings arrive without NUL characters (TextParameters)."""

    parameter_storage_class = TextParameters

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        return _without_nul(super().get_json(force=force, silent=silent, cache=cache))

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return EncryptedSpool(limit=current_app.config["MAX_FILE_BYTES"])  # type: ignore[return-value]


# Row ids are 32-bit integers (PostgreSQL `integer`): a larger number in a URL names no row.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:…>` with an upper bound: an id past it answers 404 from the router instead of
    overflowing the database driver (SQLite and PostgreSQL both refuse such a parameter)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = MAX_ROW_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install_converters(app: Flask) -> None:
    """Before any blueprint is registered: rules take their converters when they are added."""
    app.url_map.converters["int"] = RowIdConverter


def rate_limit_key() -> str:
    """A keyed hash of the client address under a key that changes every UTC day, so counts
    work within a day but the store never holds an address, nor a value linkable across days."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    key = crypto.server_key(current_app.config["SECRET_KEY"], "rate-limit " + day)
    return hmac.new(key, (request.remote_addr or "").encode(), sha256).hexdigest()


def select_locale() -> str:
    """?lang= chooses and remembers for the visit; otherwise the browser's preference."""
    chosen = request.args.get("lang")
    if chosen in LOCALES:
        session["lang"] = chosen
        return LOCALES[chosen]
    remembered = session.get("lang")
    if remembered in LOCALES:
        return LOCALES[remembered]
    best = request.accept_languages.best_match(["zh", "ko", "en"], default="zh")
    return LOCALES[best]


def current_lang() -> str:
    """The short code (zh, ko, en) of the visit's language, for links and data columns."""
    locale = select_locale()
    return next(code for code, name in LOCALES.items() if name == locale)


def add_security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


# Pages that exist only as POST results: their language links lead to the page's GET twin.
_GET_TWIN = {"/followup/reply": "/followup", "/receipt.txt": "/report"}


def language_links() -> dict[str, object]:
    path = request.path if request.method == "GET" else _GET_TWIN.get(request.path, request.path)
    current = current_lang()
    return {"lang_links": [(code, label, f"{path}?lang={code}", code == current)
                           for code, label in LANG_LABELS],
            "html_lang": {"zh": "zh-Hans", "ko": "ko", "en": "en"}[current]}


def install(app: Flask) -> None:
    app.request_class = PortalRequest
    # The language is a property of the request: never reuse one cached on a shared app context.
    app.before_request(flask_babel.refresh)
    app.after_request(add_security_headers)
    app.context_processor(language_links)
