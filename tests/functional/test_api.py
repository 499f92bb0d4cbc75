"""/api/v1 for partner clients: categories, tips (JSON and multipart), follow-up, errors."""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import func, select

from models import Attachment, Message, Tip, TipIdentity
from portal.security import crypto
from portal.web.extensions import db
from tests.helpers import jpeg_with_metadata

RECEIPT = re.compile(r"^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$")


def test_categories_are_the_17_in_three_languages(client, portal_keys) -> None:
    data = client.get("/api/v1/categories").get_json()["categories"]
    assert [c["code"] for c in data][:3] == ["P01", "P02", "P03"] and len(data) == 17
    assert sum(c["scope"] == "province" for c in data) == 10
    for category in data:
        assert all(category["name"][lang] for lang in ("zh", "ko", "en"))
        assert all(category["description"][lang] for lang in ("zh", "ko", "en"))


def test_json_tip_returns_a_receipt(client, portal_keys) -> None:
    response = client.post("/api/v1/tips", json={
        "category": "P02", "county": "wangqing", "narrative": "monitor unplugged at night",
        "place": "Wangqing paper mill", "identity": {"name": "Pak", "contact_ok": True}})
    assert response.status_code == 201
    assert RECEIPT.match(response.get_json()["receipt"])
    tip = db.session.scalars(select(Tip)).one()
    assert (tip.channel, tip.unit.code, tip.real_name) == ("api", "wangqing", True)
    content = json.loads(crypto.open_sealed(tip.content, [portal_keys["wangqing"]]))
    # The name is sealed apart, to the custodians: the unit's key opens only the flags.
    assert content["identity"] is None and "Pak" not in json.dumps(content)
    assert content["reporter"] == {"contact_ok": True, "reward": False}
    assert db.session.get(TipIdentity, tip.id) is not None


def test_multipart_tip_with_attachments(client, portal_keys) -> None:
    response = client.post("/api/v1/tips", content_type="multipart/form-data", data={
        "narrative": "photos of the pit", "county": "unknown", "keep_photo_location": "false",
        "identity": "", "attachments": [(io.BytesIO(jpeg_with_metadata()), "pit.jpg"),
                                        (io.BytesIO(b"plain notes"), "notes.txt")]})
    assert response.status_code == 201, response.get_json()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 2
    assert db.session.scalars(select(Tip)).one().unit.code == "zhou"


@pytest.mark.parametrize(("lang", "needle"), [("en", "required"), ("ko", "필수"),
                                                ("zh", "必填")])
def test_errors_are_json_per_field_in_the_callers_language(client, portal_keys, lang,
                                                          needle) -> None:
    response = client.post("/api/v1/tips", json={"narrative": "", "county": "seoul",
                                                 "category": 7, "colour": "red"},
                           headers={"Accept-Language": lang})
    assert response.status_code == 400
    # The schema refuses the wrong type and the unknown field; the county is the domain's to
    # check, which it does only for a body the schema accepted (below).
    assert set(response.get_json()["errors"]) == {"category", "colour"}
    response = client.post("/api/v1/tips", json={"narrative": "x", "county": "seoul"},
                           headers={"Accept-Language": lang})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"county"}
    response = client.post("/api/v1/tips", json={"narrative": ""},
                           headers={"Accept-Language": lang})
    assert needle in response.get_json()["errors"]["narrative"]
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_type_errors_and_bad_json(client, portal_keys) -> None:
    response = client.post("/api/v1/tips", json={"narrative": "x", "keep_photo_location": "maybe",
                                                 "identity": {"name": 5}})
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert set(errors) == {"keep_photo_location", "identity.name"}
    bad = client.post("/api/v1/tips", data="{not json", content_type="application/json")
    assert bad.status_code == 400 and "_request" in bad.get_json()["errors"]
    listed = client.post("/api/v1/tips", json=["narrative"])
    assert listed.status_code == 400


def test_followup_and_messages(client, portal_keys) -> None:
    receipt = client.post("/api/v1/tips", json={"narrative": "x", "county": "helong"}
                          ).get_json()["receipt"]
    status = client.post("/api/v1/followup", json={"receipt": receipt})
    assert status.status_code == 200
    body = status.get_json()
    assert body["status"] == "received" and body["messages"] == []
    assert body["updates"][0]["status"] == "received"
    sent = client.post("/api/v1/followup/messages", json={"receipt": receipt, "body": "more info"})
    assert sent.status_code == 201
    body = client.post("/api/v1/followup", json={"receipt": receipt}).get_json()
    assert [(m["from"], m["body"]) for m in body["messages"]] == [("reporter", "more info")]
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_followup_unknown_receipt_is_404_json(client, portal_keys) -> None:
    for receipt in ("AAAA-AAAA-AAAA-AAAA-AAAA", "short"):
        response = client.post("/api/v1/followup", json={"receipt": receipt})
        assert response.status_code == 404 and response.get_json()["status"] == 404
    response = client.post("/api/v1/followup/messages",
                           json={"receipt": "AAAA-AAAA-AAAA-AAAA-AAAA", "body": "hi"})
    assert response.status_code == 404
    assert client.post("/api/v1/followup", json={}).status_code == 400


def test_413_and_429_are_json(app_factory) -> None:
    app = app_factory(MAX_CONTENT_LENGTH=10_000, SUBMIT_RATE_LIMIT="2 per minute")
    client = app.test_client()
    big = client.post("/api/v1/tips", content_type="multipart/form-data", data={
        "narrative": "x", "attachments": [(io.BytesIO(b"x" * 20_000), "big.txt")]})
    assert big.status_code == 413 and big.get_json()["status"] == 413
    # The refused 413 counted as the first of the two submissions allowed per minute.
    statuses = [client.post("/api/v1/tips", json={"narrative": ""}).status_code
                for _ in range(2)]
    assert statuses == [400, 429]
    assert client.post("/api/v1/tips", json={"narrative": ""}).get_json()["status"] == 429


def test_openapi_document_describes_the_api(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/categories", "/tips", "/followup", "/followup/messages"} <= set(doc["paths"])
    tip = doc["components"]["schemas"]["Tip"]
    assert tip["required"] == ["narrative"]
    assert {"category", "county", "place", "occurred", "responsible", "narrative", "officials",
            "keep_photo_location", "identity", "language"} == set(tip["properties"])
    responses = doc["paths"]["/tips"]["post"]["responses"]
    assert {"201", "400", "413", "429"} <= set(responses)
    assert "multipart/form-data" in doc["paths"]["/tips"]["post"]["requestBody"]["content"]


def test_openapi_document_is_valid_openapi_31_and_lists_the_staff_api(client) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert {"/staff/token", "/staff/tips", "/staff/tips/{tip_id}",
            "/staff/tips/{tip_id}/classify", "/staff/hotline"} <= set(doc["paths"])
    assert doc["paths"]["/staff/tips"]["get"]["security"] == [{"staffToken": []}]
    assert {"/liaison/token", "/liaison/referrals", "/liaison/referrals/{referral_id}/{action}",
            "/liaison/referrals/{referral_id}/package"} <= set(doc["paths"])
    step = doc["paths"]["/liaison/referrals/{referral_id}/{action}"]["post"]
    assert "409" in step["responses"]


def test_each_action_on_a_tip_is_an_operation_with_its_own_body(client) -> None:
    """An action reads only its own fields (portal/web/action_params.py), and the document says
    which: a priority is a required whole number from 0 to 3, an extension's days 1 to 30."""
    doc = client.get("/api/v1/openapi.json").get_json()
    actions = {path.rsplit("/", 1)[1] for path in doc["paths"]
               if path.startswith("/staff/tips/{tip_id}/")}
    assert actions == {"classify", "priority", "accept", "decline", "verify", "close", "extend",
                       "transfer", "duplicate", "assign", "message"}
    schemas = doc["components"]["schemas"]

    def body(action: str) -> tuple[bool, dict]:
        operation = doc["paths"][f"/staff/tips/{{tip_id}}/{action}"]["post"]
        assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == ["tip_id"]
        request_body = operation["requestBody"]
        ref = request_body["content"]["application/json"]["schema"]["$ref"]
        return request_body["required"], schemas[ref.rsplit("/", 1)[1]]

    required, priority = body("priority")
    assert required and priority["required"] == ["priority"]
    assert (priority["properties"]["priority"]["minimum"],
            priority["properties"]["priority"]["maximum"]) == (0, 3)
    assert body("extend")[1]["properties"]["days"]["maximum"] == 30
    required, accept = body("accept")
    assert not required and accept["properties"] == {}
    assert set(body("classify")[1]["properties"]) == {"category", "reason"}
