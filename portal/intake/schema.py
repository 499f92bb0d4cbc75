"""What a tip's input is, defined once: its fields, their limits, which are required, and the
choices (category, county, language, channel, yes/no). The citizen form, the officers' hotline
entry (page and API) and the partner API all build their TipDraft here, and
portal/intake/filing.py `validate` checks a draft by the same rules; the API's OpenAPI document is
generated from these models (portal/web/api/openapi.py), so it cannot say other than the code.

Errors carry the portal's own codes (FieldError, worded in portal/web/messages.py). A body is
checked in two stages, as the API always answered: its shape first (unknown fields, wrong types,
a yes/no that is neither), and only a body of the right shape for its values (required, too long,
not one of the choices), so that a client sees first what it sent wrong, then what the reporter
typed wrong. Plain Python and pydantic: no Flask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, TypeVar

from annotated_types import GroupedMetadata
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from models import Channel, Language

COUNTIES = ("yanji", "tumen", "dunhua", "hunchun", "longjing", "helong", "wangqing", "antu")
LANGUAGES = tuple(code.value for code in Language)
# Channels an officer enters a tip through for someone (not the citizen pages, not the API).
ENTERED_CHANNELS = tuple(c for c in Channel if c not in (Channel.ONLINE, Channel.API))
MAX_LENGTH = {"narrative": 20000, "officials": 4000, "responsible": 2000, "place": 1000,
              "occurred": 200, "name": 100, "phone": 40, "id_number": 18, "address": 500,
              "message": 10000}
TEXT_FIELDS = ("place", "occurred", "responsible", "narrative", "officials")
IDENTITY_FIELDS = ("name", "phone", "id_number", "address")
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,30}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
YES = ("true", "1", "yes", "on")
NO = ("false", "0", "no", "off", "")
# Codes of the first stage: what the client sent has the wrong shape.
SHAPE_CODES = frozenset({"unknown_field", "invalid_type", "invalid_boolean", "invalid_json"})
# A JSON-Schema format for the resident identity number's check character (GB 11643), which a
# pattern cannot say; tests/fuzzing_api.py tells Schemathesis how to make valid ones.
ID_NUMBER_FORMAT = "gb11643"


@dataclass(frozen=True)
class FieldError:
    code: str
    params: dict[str, str | int] = field(default_factory=dict)


class SchemaError(Exception):
    """What was sent does not fit the schema: `errors` maps each field ("identity.name" for a
    part of the identity object) to what is wrong with it."""

    def __init__(self, errors: dict[str, FieldError]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass
class Identity:
    name: str = ""
    phone: str = ""
    id_number: str = ""
    address: str = ""
    contact_ok: bool = False
    reward: bool = False


@dataclass
class TipDraft:
    """The citizen's fields, as typed; `identity` is None for an anonymous tip."""

    narrative: str = ""
    category: str | None = None
    county: str | None = None
    place: str = ""
    occurred: str = ""
    responsible: str = ""
    officials: str = ""
    keep_photo_location: bool = False
    identity: Identity | None = None
    channel: Channel = Channel.ONLINE
    language: str | None = None  # zh, ko, en: the language the citizen filed in


def valid_id_number(value: str) -> bool:
    """GB 11643 resident identity number: 17 digits and a check character."""
    value = value.upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def caseless(words: Iterable[str]) -> str:
    """A JSON-Schema pattern for one of `words` in any letter case, with spaces around (what
    the parsers below accept after strip() and lower()); "" in words allows an empty value."""
    def one(word: str) -> str:
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c)
                       for c in word)
    return "^\\s*(" + "|".join(one(w) for w in words) + ")\\s*$"


def _error(code: str, **params: str | int) -> PydanticCustomError:
    return PydanticCustomError(code, code, dict(params))


def _values_checked(info: ValidationInfo) -> bool:
    return not (info.context or {}).get("shape_only", False)


@dataclass(frozen=True)
class _Rules(GroupedMetadata):
    """A field's parsing and JSON schema, as one piece of `Annotated` metadata (pydantic
    unpacks it): `name: Annotated[str, _text("name")]` keeps the field's type readable."""

    items: tuple[object, ...]

    def __iter__(self) -> Iterator[object]:
        return iter(self.items)


def _text(limit: str | None, *, required: str | None = None) -> _Rules:
    """Text: a string or null (empty). At most MAX_LENGTH[limit] characters as sent; with
    `required`, something other than spaces (the code of the error otherwise)."""
    maximum = MAX_LENGTH[limit] if limit else None

    def parse(value: object, info: ValidationInfo) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise _error("invalid_type")
        if _values_checked(info):
            if required is not None and not value.strip():
                raise _error(required)
            if maximum is not None and len(value) > maximum:
                raise _error("too_long", max=maximum)
        return value

    schema: dict[str, Any] = {"type": ["string", "null"]}
    if required is not None:
        schema = {"type": "string", "pattern": "\\S"}
    if maximum is not None:
        schema["maxLength"] = maximum
    return _Rules((BeforeValidator(parse), WithJsonSchema(schema)))


def _choice(choices: tuple[str, ...], code: str, *, none: tuple[str, ...] = (),
            upper: bool = False) -> _Rules:
    """One of `choices` in any case and with spaces around; null, "" and the words in `none`
    mean not given (None)."""
    empty = ("", *none)

    def parse(value: object, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _error("invalid_type")
        value = value.strip().upper() if upper else value.strip().lower()
        if value.lower() in empty:
            return None
        if _values_checked(info) and choices and value not in choices:
            raise _error(code)
        return value

    schema = {"anyOf": [{"type": "string", "pattern": caseless((*empty, *choices))},
                        {"type": "null"}]}
    return _Rules((BeforeValidator(parse), WithJsonSchema(schema)))


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in YES + NO:
        return value.strip().lower() in YES
    raise _error("invalid_boolean")


Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema(
    {"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": caseless(YES + NO)}],
     "default": False})]


def _phone(value: object, info: ValidationInfo) -> str:
    value = _text_value(value)
    if _values_checked(info):
        if len(value) > MAX_LENGTH["phone"]:
            raise _error("too_long", max=MAX_LENGTH["phone"])
        if value.strip() and not PHONE.match(value.strip()):
            raise _error("invalid_phone")
    return value


def _id_number(value: object, info: ValidationInfo) -> str:
    value = _text_value(value)
    if _values_checked(info) and value.strip() and not valid_id_number(value.strip()):
        raise _error("invalid_id_number")
    return value


def _text_value(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error("invalid_type")
    return value


class IdentityFields(BaseModel):
    """A real-name reporter: present only when the reporter chose to give their name."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["name"]},
                              title="Identity")

    name: Annotated[str, _text("name", required="required_real_name")] = Field(
        default="", validate_default=True)
    phone: Annotated[str, BeforeValidator(_phone), WithJsonSchema({
        "type": ["string", "null"], "maxLength": MAX_LENGTH["phone"],
        "pattern": "^\\s*(\\+?[0-9][0-9 \\-]{4,30})?\\s*$"})] = ""
    id_number: Annotated[str, BeforeValidator(_id_number), WithJsonSchema({
        "type": ["string", "null"], "format": ID_NUMBER_FORMAT,
        "pattern": "^\\s*([0-9]{17}[0-9Xx])?\\s*$",
        "description": "GB 11643: 17 digits and a check character"})] = ""
    address: Annotated[str, _text("address")] = ""
    contact_ok: Flag = False
    reward: Flag = False


class TipFields(BaseModel):
    """A tip as a reporter (or an officer for a caller) gives it."""

    model_config = ConfigDict(extra="forbid", title="Tip",
                              json_schema_extra={"required": ["narrative"]})

    category: Annotated[str | None, _choice((), "unknown_category", upper=True)] = Field(
        default=None, description="a current category's code (GET /categories); omit when "
                                  "not sure")
    county: Annotated[str | None,
                      _choice(COUNTIES, "unknown_county", none=("unknown",))] = Field(
        default=None, description="where the problem is; omit or 'unknown' routes to 州本级")
    narrative: Annotated[str, _text("narrative", required="required")] = Field(
        default="", validate_default=True, description="what happened (required)")
    place: Annotated[str, _text("place")] = ""
    occurred: Annotated[str, _text("occurred")] = ""
    responsible: Annotated[str, _text("responsible")] = ""
    officials: Annotated[str, _text("officials")] = ""
    keep_photo_location: Flag = False
    identity: IdentityFields | None = None
    language: Annotated[str | None, _choice(LANGUAGES, "unknown_language")] = Field(
        default=None, description="the language the tip is written in; omitted: the "
                                  "request's (?lang= or Accept-Language), else unknown")


def _exactly(choices: tuple[str, ...], code: str) -> _Rules:
    """Exactly one of `choices` (a select's value): anything else is `code`."""
    def parse(value: object, info: ValidationInfo) -> object:
        if _values_checked(info) and value not in choices:
            raise _error(code)
        return value

    return _Rules((BeforeValidator(parse), WithJsonSchema(
        {"type": "string", "enum": list(choices)})))


class HotlineFields(TipFields):
    """A tip an officer enters for a caller: the tip, and the channel it came through."""

    model_config = ConfigDict(title="HotlineTip")

    channel: Annotated[str, _exactly(tuple(c.value for c in ENTERED_CHANNELS),
                                     "unknown_channel")] = Channel.HOTLINE.value


class HotlinePage(HotlineFields):
    """The hotline page: the officer also says which language the caller speaks."""

    language: Annotated[str, _exactly(LANGUAGES, "unknown_language")] = Field(
        default="", validate_default=True)


Errors = dict[str, FieldError]
_Model = TypeVar("_Model", bound=BaseModel)
_CODES = {"extra_forbidden": "unknown_field", "model_type": "invalid_type",
          "model_attributes_type": "invalid_type", "dict_type": "invalid_type",
          "missing": "required", "string_type": "invalid_type", "bool_type": "invalid_boolean",
          "bool_parsing": "invalid_boolean"}


def _errors(error: ValidationError) -> Errors:
    """pydantic's errors in the portal's codes: the shape's if any, else the values'. A value
    error of the identity is named by its field alone ("name"), as the form's fields are."""
    shape: Errors = {}
    values: Errors = {}
    for item in error.errors():
        code = _CODES.get(item["type"], item["type"])
        loc = [str(part) for part in item["loc"]]
        params = {k: v for k, v in (item.get("ctx") or {}).items() if isinstance(v, str | int)}
        if code in SHAPE_CODES:
            shape.setdefault(".".join(loc), FieldError(code, params))
        else:
            name = loc[-1] if loc[:1] == ["identity"] else ".".join(loc)
            values.setdefault(name, FieldError(code, params))
    return dict(sorted(shape.items())) if shape else values


def _check(model: type[_Model], data: Mapping[str, Any], *, values: bool) -> _Model:
    try:
        return model.model_validate(dict(data), context={"shape_only": not values})
    except ValidationError as error:
        raise SchemaError(_errors(error)) from None


def _identity_from_text(data: Mapping[str, Any]) -> dict[str, Any]:
    """A multipart form carries the identity object as JSON text (empty: none)."""
    raw = data.get("identity")
    if not isinstance(raw, str):
        return dict(data)
    try:
        identity = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise SchemaError({"identity": FieldError("invalid_json")}) from None
    return {**data, "identity": identity}


def _draft(fields: TipFields, channel: Channel) -> TipDraft:
    identity = None
    if fields.identity is not None:
        given = fields.identity
        identity = Identity(name=given.name.strip(), phone=given.phone.strip(),
                            id_number=given.id_number.strip().upper(),
                            address=given.address.strip(), contact_ok=given.contact_ok,
                            reward=given.reward)
    return TipDraft(
        narrative=fields.narrative, category=fields.category, county=fields.county,
        place=fields.place.strip(), occurred=fields.occurred.strip(),
        responsible=fields.responsible.strip(), officials=fields.officials.strip(),
        keep_photo_location=fields.keep_photo_location, identity=identity, channel=channel,
        language=fields.language)


def tip_draft(data: Mapping[str, Any], channel: Channel, *, text_identity: bool = False,
              values: bool = True) -> TipDraft:
    """A TipDraft from a JSON object, a multipart form (`text_identity`: the identity as JSON
    text) or a page's form; SchemaError lists what does not fit. With values=False only the
    shape is checked (a page's form: filing.validate checks the values, with the database's
    categories and the files, and lists every error at once)."""
    if text_identity:
        data = _identity_from_text(data)
    return _draft(_check(TipFields, data, values=values), channel)


def hotline_draft(data: Mapping[str, Any], *, page: bool = False, values: bool = True
                  ) -> TipDraft:
    """A tip an officer enters for a caller: the tip's fields and the channel (on the `page`,
    also the caller's language; the caller's name and phone are its identity, when a name is
    given). The API checks the shape only (values=False): whether the caller takes hotline calls
    is decided before the values are (tip_actions.hotline_tip, then filing.validate)."""
    if page:
        name, phone = str(data.get("name") or ""), str(data.get("phone") or "")
        data = {k: v for k, v in data.items() if k not in ("name", "phone")}
        data["identity"] = {"name": name, "phone": phone} if name.strip() else None
    fields = _check(HotlinePage if page else HotlineFields, data, values=values)
    if not page and not values and fields.channel not in {
            c.value for c in ENTERED_CHANNELS}:
        # Named before anything else is looked at, as the API always did.
        raise SchemaError({"channel": FieldError("unknown_channel")})
    channel = fields.channel
    entered = Channel(channel) if channel in {c.value for c in ENTERED_CHANNELS} else (
        Channel.HOTLINE)
    return _draft(fields, entered)


def draft_errors(draft: TipDraft) -> Errors:
    """What is wrong with a draft's values, by the same rules as what was sent."""
    fields = {name: getattr(draft, name) for name in (*TEXT_FIELDS, "category", "county",
                                                      "keep_photo_location", "language")}
    fields["identity"] = asdict(draft.identity) if draft.identity is not None else None
    try:
        TipFields.model_validate(fields)
    except ValidationError as error:
        return _errors(error)
    return {}


def receipt_and_body(data: object, *, need_body: bool) -> tuple[str, str]:
    """A follow-up request: the receipt, and with `need_body` a message (other fields are
    ignored)."""
    if not isinstance(data, dict):
        raise SchemaError({"_": FieldError("invalid_json")})
    model = FollowupMessage if need_body else FollowupRequest
    try:
        given = model.model_validate(data)
    except ValidationError as error:
        raise SchemaError(_errors(error)) from None
    return given.receipt, getattr(given, "body", "")


class FollowupRequest(BaseModel):
    """A receipt, to read a tip's progress (other fields are ignored)."""

    model_config = ConfigDict(title="FollowupRequest", json_schema_extra={
        "required": ["receipt"]})

    receipt: Annotated[str, _text(None, required="required")] = Field(
        default="", validate_default=True)


class FollowupMessage(FollowupRequest):
    """A receipt and a message to the officers."""

    model_config = ConfigDict(title="FollowupMessage", json_schema_extra={
        "required": ["receipt", "body"]})

    body: Annotated[str, _text("message", required="required")] = Field(
        default="", validate_default=True)
