"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks): how to make values of the
formats the API's document names that JSON Schema cannot say (portal/web/api/openapi.py)."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from portal.intake.schema import _ID_CHECK, _ID_WEIGHTS, ID_NUMBER_FORMAT
from portal.web.api.openapi import CURSOR_FORMAT


@st.composite
def _id_number(draw: st.DrawFn) -> str:
    """A GB 11643 number with its right check character."""
    body = draw(st.text("0123456789", min_size=17, max_size=17))
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


schemathesis.openapi.format(ID_NUMBER_FORMAT, _id_number())
# No cursor but the first page's: a cursor is only what a page answered as `next`.
schemathesis.openapi.format(CURSOR_FORMAT, st.just(""))
