"""The parameters of an action on a tip (POST /staff/tips/<id>/<action>, page and API), parsed
by a schema before the domain sees them: text is text, a number is a whole number within the
database's range (from a form field or JSON), each action names only its own fields.

What fails here is still refused by portal/triage/tip_actions.py `perform` as "bad_value", after
it has checked who may act: the rule "who may act comes before what they sent" (an officer
cannot learn from a 400 that a tip they may not see exists) holds, so a body that does not parse
is handed on as sent and the domain's guard refuses it in its turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError

from portal.web.http import MAX_ROW_ID


def _whole(value: object) -> int:
    """A whole number as JSON sends it, or its digits as a form does (a sign allowed)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isascii() and (
            value.strip().lstrip("+-").isdigit()):
        number = int(value.strip())
    else:
        raise ValueError("not a number")
    if abs(number) > MAX_ROW_ID:  # no id, number of days or priority is that large
        raise ValueError("too large")
    return number


Whole = Annotated[int, BeforeValidator(_whole)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a page's form also carries its CSRF token


class Nothing(_Params):
    pass


class Reason(_Params):
    reason: StrictStr = ""


class Classify(Reason):
    category: StrictStr = ""


class Priority(_Params):
    priority: Whole


class Extend(Reason):
    days: Whole


class Transfer(Reason):
    unit: StrictStr = ""


class Duplicate(_Params):
    original_id: Whole


class Assign(_Params):
    user_id: Whole


class Message(_Params):
    body: StrictStr = ""


ACTION_PARAMS: dict[str, type[_Params]] = {
    "classify": Classify, "priority": Priority, "accept": Nothing, "decline": Reason,
    "verify": Nothing, "close": Reason, "extend": Extend, "transfer": Transfer,
    "duplicate": Duplicate, "assign": Assign, "message": Message,
}


def action_params(action: str, sent: Mapping[str, Any]) -> Mapping[str, object]:
    """The action's parameters, typed; as sent when they do not parse (or the action is
    unknown), for `perform` to refuse after it has checked who may act."""
    model = ACTION_PARAMS.get(action)
    if model is None:
        return sent
    try:
        return model.model_validate(dict(sent)).model_dump()
    except ValidationError:
        return sent
