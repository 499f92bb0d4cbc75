"""HTTP-level protection shared by every face: the upload-spooling request class, security
headers, the language of the visit, and the rate-limit key that never stores an address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any
from urllib.parse import quote

import flask_babel
from flask import Flask, Request, abort, current_app, g, request, session
from flask.json.provider import DefaultJSONProvider
from flask.wrappers import Response
from werkzeug.datastructures import FileStorage, ImmutableMultiDict, MultiDict
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.routing import IntegerConverter, Map

from portal.intake.uploads import EncryptedSpool
from referral.filenames import safe_name

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

    def __init__(self, mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None = None
                 ) -> None:
        if mapping is None:
            super().__init__()
            return
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(mapping, MultiDict):
            pairs = mapping.items(multi=True)
        elif isinstance(mapping, Mapping):
            pairs = mapping.items()
        else:
            pairs = mapping
        super().__init__([(_without_nul(k), _without_nul(v)) for k, v in pairs])


# No body the portal accepts nests deeper than a few levels; a client's 100,000 nested arrays
# would exhaust the parser's recursion instead of being refused.
MAX_JSON_DEPTH = 64
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSON(DefaultJSONProvider):
    """The app's JSON (`app.json`, which Flask hands each request to parse its body with): the
    standard provider, except that a body nested deeper than MAX_JSON_DEPTH, holding a lone
    surrogate ("\\ud800": no character; no text column or password hash can encode it) or
    the non-numbers NaN and Infinity (1e309 is Infinity) is not valid JSON. Raising ValueError
    makes `get_json(silent=True)` answer None, so each view gives its usual 400 "not valid
    JSON" in words; `get_json()` answers 400 through the error pages."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:  # `s`: Flask's name for it
        try:
            value = json.loads(s, parse_constant=_no_constant, parse_float=_finite,
                               **kwargs)
        except RecursionError as error:  # deeper than the interpreter's own limit
            raise ValueError("JSON nested too deeply") from error
        _check_json(value)
        return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("JSON number out of range")
    return number


def _check_json(value: Any) -> None:
    """Depth and text of a parsed body, without recursion (a walk of its nodes)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            if _LONE_SURROGATE.search(node):
                raise ValueError("JSON text holds a lone surrogate")
            continue
        if not isinstance(node, (list, dict)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError("JSON nested too deeply")
        if isinstance(node, dict):
            pending.extend((key, depth) for key in node)
            pending.extend((item, depth + 1) for item in node.values())
        else:
            pending.extend((item, depth + 1) for item in node)


# Werkzeug reads a multipart body 64 KiB at a time, and gunicorn, which receives up to 1 MiB at
# once, copies what it holds beyond each read again on every read. Reads of 256 KiB took the
# parsing of a 20 MB photo from 32 to 20 ms of CPU (over loopback TCP, spool aside); an upload in
# progress holds a few hundred KiB more for it (1 MiB reads were no faster).
UPLOAD_READ_BYTES = 256 * 1024


class UploadFormParser(FormDataParser):
    """Werkzeug's form parser with UPLOAD_READ_BYTES reads (its own `_parse_multipart`, which
    has no parameter for it, otherwise as it is)."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None,
        options: dict[str, str],
    ) -> tuple[IO[bytes], MultiDict[str, str], MultiDict[str, FileStorage]]:
        parser = MultiPartParser(
            stream_factory=self.stream_factory, max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts, cls=self.cls, buffer_size=UPLOAD_READ_BYTES)
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class PortalRequest(Request):
    """Uploaded files are encrypted while they stream in (see portal/intake/uploads.py); text
    parameters and JSON strings arrive without NUL characters (TextParameters); JSON bodies
    are parsed strictly (StrictJSON). Form fields need no such guard: werkzeug decodes them as
    UTF-8, which refuses surrogates (a %-escaped one stays as its escape, raw bytes become
    U+FFFD or leave the form empty)."""

    parameter_storage_class = TextParameters
    form_data_parser_class = UploadFormParser

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        return _without_nul(super().get_json(force=force, silent=silent, cache=cache))

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return EncryptedSpool(  # type: ignore[return-value]  # a RawIOBase: no IO[bytes] to typeshed
            limit=current_app.config["MAX_FILE_BYTES"])


# Row ids are 32-bit integers (PostgreSQL `integer`): a larger number in a URL names no row.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:…>` with an upper bound: an id past it answers 404 from the router instead of
    overflowing the database driver (SQLite and PostgreSQL both refuse such a parameter)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = MAX_ROW_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """`attachment` (or `inline`) with the file's own name made safe (filenames.safe_name: no
    folders, no control or invisible characters, not too long): an ASCII stand-in for old clients
    and the exact name in RFC 5987 form (filename*=UTF-8''…) for the rest."""
    filename = safe_name(filename)
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%;'
                       else "_" for c in filename) or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def install_converters(app: Flask) -> None:
    """Before any blueprint is registered: rules take their converters when they are added."""
    app.url_map.converters["int"] = RowIdConverter


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


def refuse_json_outside_the_api() -> None:
    """Only the API (/api/) takes JSON. The pages' forms are sent by browsers, which never send
    it, and Flask-WTF would read a JSON body as a form's data: numbers, lists and objects where
    every field expects text. Such a request is answered 400 in words, before any view."""
    if (request.method not in ("GET", "HEAD", "OPTIONS") and request.is_json
            and not request.path.startswith("/api/")):
        abort(400)


_TRANSLATIONS = "qingliu_translations"


def refresh_language() -> None:
    """Forget the language and translations found so far in this request (at its start, and
    when a page changes the language while answering)."""
    flask_babel.refresh()
    g.pop(_TRANSLATIONS, None)


def translations() -> Any:
    """The request's translations, found once: Flask-Babel looks them up again at every string
    (a page of the queue has some 700), which took a third of its time."""
    found = g.get(_TRANSLATIONS)
    if found is None:
        found = flask_babel.get_translations()
        setattr(g, _TRANSLATIONS, found)
    return found


def install(app: Flask) -> None:
    app.request_class = PortalRequest
    app.json = StrictJSON(app)
    app.before_request(refuse_json_outside_the_api)
    # The language is a property of the request: never reuse one cached on a shared app context.
    app.before_request(refresh_language)
    # As Flask-Babel's, with the translations found once; the i18n extension adds the method.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # set by jinja2.ext.i18n
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True)
    app.after_request(add_security_headers)
    app.context_processor(language_links)
