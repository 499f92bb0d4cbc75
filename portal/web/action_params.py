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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, ValidationError

from portal.triage.tip_actions import PRIORITIES
from portal.web.http import MAX_ROW_ID
from referral.deadlines import RULES


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
    # A page's form also carries its CSRF token. Each model's title names its schema in the API
    # document (portal/web/api/openapi.py), where every action is an operation of its own.
    model_config = ConfigDict(extra="ignore")


class Nothing(_Params):
    model_config = ConfigDict(title="TipActionWithoutFields")


# Written text must say something: a reason or message of spaces only is refused.
SAYS_SOMETHING = r"\S"


class Reason(_Params):
    model_config = ConfigDict(title="TipActionReason")
    reason: StrictStr = Field(pattern=SAYS_SOMETHING, description="why, in the officer's words "
                              "(kept with the tip's history; the reporter sees it where the "
                              "action says so)")


class Classify(_Params):
    model_config = ConfigDict(title="TipActionClassify")
    category: StrictStr = Field(description="a current category's code (GET /categories)")
    reason: StrictStr = Field("", description="why, if the category changes (optional)")


class Priority(_Params):
    model_config = ConfigDict(title="TipActionPriority")
    priority: Whole = Field(ge=min(PRIORITIES), le=max(PRIORITIES),
                            description="0 normal … 3 most urgent")


class Extend(Reason):
    model_config = ConfigDict(title="TipActionExtend")
    days: Whole = Field(ge=1, le=RULES["tip.extension"].amount, description="days added to "
                        "the closing period (once per tip; a holiday moves the end to the next "
                        "working day)")


class Transfer(Reason):
    model_config = ConfigDict(title="TipActionTransfer")
    unit: StrictStr = Field("", description="the code of the handling unit that takes the tip")


class Duplicate(_Params):
    model_config = ConfigDict(title="TipActionDuplicate")
    original_id: Whole = Field(ge=1, le=MAX_ROW_ID, description="the tip this one repeats")


class Assign(_Params):
    model_config = ConfigDict(title="TipActionAssign")
    user_id: Whole = Field(ge=1, le=MAX_ROW_ID, description="the officer who takes the tip")


class Message(_Params):
    model_config = ConfigDict(title="TipActionMessage")
    body: StrictStr = Field(pattern=SAYS_SOMETHING, description="the message to the reporter")


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
