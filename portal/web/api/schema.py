"""The API's one schema layer: JSON (or multipart form fields) to domain drafts, with per-field
error codes. Types are checked strictly; unknown fields are refused so a client's typo is not
silently dropped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from models import Channel
from portal.intake.filing import FieldError, Identity, TipDraft

TIP_STRINGS = ("place", "occurred", "responsible", "narrative", "officials")
TIP_FIELDS = {*TIP_STRINGS, "category", "county", "keep_photo_location", "identity",
              "language"}
IDENTITY_STRINGS = ("name", "phone", "id_number", "address")
IDENTITY_FIELDS = {*IDENTITY_STRINGS, "contact_ok", "reward"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class SchemaError(Exception):
    def __init__(self, errors: dict[str, FieldError]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


def _string(data: Mapping[str, Any], name: str, errors: dict[str, FieldError], prefix: str = ""
            ) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[prefix + name] = FieldError("invalid_type")
        return ""
    return value


def _boolean(data: Mapping[str, Any], name: str, errors: dict[str, FieldError], prefix: str = ""
             ) -> bool:
    value = data.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    errors[prefix + name] = FieldError("invalid_boolean")
    return False


def tip_draft(data: Mapping[str, Any], *, from_form: bool) -> TipDraft:
    """Build a TipDraft from a JSON object or multipart fields (identity as a JSON string)."""
    errors: dict[str, FieldError] = {}
    # A multipart part may come without a name (None): unknown too, and sortable as text.
    for unknown in sorted(str(k) for k in set(data) - TIP_FIELDS - {"attachments"}):
        errors[unknown] = FieldError("unknown_field")
    strings = {name: _string(data, name, errors) for name in TIP_STRINGS}
    category = _string(data, "category", errors).strip().upper() or None
    county = _string(data, "county", errors).strip().lower() or None
    language = _string(data, "language", errors).strip().lower() or None
    identity_raw = data.get("identity")
    if from_form and isinstance(identity_raw, str):
        try:
            identity_raw = json.loads(identity_raw) if identity_raw.strip() else None
        except ValueError:
            errors["identity"] = FieldError("invalid_json")
            identity_raw = None
    identity = None
    if identity_raw is not None:
        if not isinstance(identity_raw, dict):
            errors["identity"] = FieldError("invalid_type")
        else:
            for unknown in sorted(str(k) for k in set(identity_raw) - IDENTITY_FIELDS):
                errors["identity." + unknown] = FieldError("unknown_field")
            identity = Identity(
                **{n: _string(identity_raw, n, errors, "identity.").strip()
                   for n in IDENTITY_STRINGS},
                contact_ok=_boolean(identity_raw, "contact_ok", errors, "identity."),
                reward=_boolean(identity_raw, "reward", errors, "identity."),
            )
            identity.id_number = identity.id_number.upper()
    draft = TipDraft(
        narrative=strings["narrative"],
        category=category,
        county=None if county == "unknown" else county,
        place=strings["place"].strip(),
        occurred=strings["occurred"].strip(),
        responsible=strings["responsible"].strip(),
        officials=strings["officials"].strip(),
        keep_photo_location=_boolean(data, "keep_photo_location", errors),
        identity=identity,
        channel=Channel.API,
        language=language,
    )
    if errors:
        raise SchemaError(errors)
    return draft


def receipt_and_body(data: Any, *, need_body: bool) -> tuple[str, str]:
    errors: dict[str, FieldError] = {}
    if not isinstance(data, dict):
        raise SchemaError({"_": FieldError("invalid_json")})
    receipt = _string(data, "receipt", errors)
    body = _string(data, "body", errors) if need_body else ""
    if not receipt.strip():
        errors.setdefault("receipt", FieldError("required"))
    if need_body and not body.strip():
        errors.setdefault("body", FieldError("required"))
    if errors:
        raise SchemaError(errors)
    return receipt, body
