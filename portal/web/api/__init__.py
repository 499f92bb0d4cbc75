"""The JSON API for partner clients, on the same services as the pages."""

from typing import Any

from flask import Blueprint
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import AnyConverter, Map

from referral.workflow import TRANSITIONS


class StepConverter(AnyConverter):
    """`<step:action>`: a step of the referral table (referral/workflow.py). Any other word after
    a referral is no address (404), and a POST to its package is a method the package does not
    take (405, with Allow), as the OpenAPI document says."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *sorted({t.action for t in TRANSITIONS}))


bp = Blueprint("api", __name__)


@bp.record_once
def _register_step(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("step", StepConverter)


from portal.web.api import referrals, staff, views  # noqa: E402,F401
