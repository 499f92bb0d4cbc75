"""/api/v1/staff: tokens, the queue, a tip, actions (409 on state conflicts), hotline."""

from __future__ import annotations

from sqlalchemy import func, select

from models import AuditEvent, Tip
from portal.web.extensions import db


def token_for(app, staff, username: str, uid: int, offset_steps: int = 0) -> str:
    response = app.test_client().post("/api/v1/staff/token", json={
        "username": username, "password": staff.PASSWORD,
        "otp": staff.code(uid, offset_steps=offset_steps)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def test_token_needs_password_and_a_fresh_code(app, staff) -> None:
    uid = staff.create("api_user", "yanji")
    client = app.test_client()
    bad = client.post("/api/v1/staff/token", json={"username": "api_user", "password": "x",
                                                    "otp": staff.code(uid)})
    unknown = client.post("/api/v1/staff/token", json={"username": "nobody", "password": "x",
                                                        "otp": "123456"})
    assert bad.status_code == unknown.status_code == 401
    assert bad.get_json()["error"] == unknown.get_json()["error"]
    code = staff.code(uid)
    first = client.post("/api/v1/staff/token", json={"username": "api_user",
                                                     "password": staff.PASSWORD, "otp": code})
    assert first.status_code == 201 and first.get_json()["expires_at"]
    replay = client.post("/api/v1/staff/token", json={"username": "api_user",
                                                      "password": staff.PASSWORD, "otp": code})
    assert replay.status_code == 401


def test_queue_tip_and_actions_over_the_api(app, client, staff) -> None:
    created = client.post("/api/v1/tips", json={"narrative": "API CONTENT", "county": "yanji"})
    receipt = created.get_json()["receipt"]
    tip_id = db.session.scalar(select(func.max(Tip.id)))
    uid = staff.create("api_officer", "yanji")
    headers = {"Authorization": f"Bearer {token_for(app, staff, 'api_officer', uid)}",
               "Accept-Language": "en"}
    api = app.test_client()
    assert api.get("/api/v1/staff/tips").status_code == 401
    listed = api.get("/api/v1/staff/tips?status=received", headers=headers).get_json()
    assert [t["id"] for t in listed["tips"]] == [tip_id]
    assert listed["tips"][0]["deadline_state"] == "ok" and listed["tips"][0]["due_at"]
    assert api.get("/api/v1/staff/counts", headers=headers).get_json() == {
        "open_by_category": {"unclassified": 1}}
    detail = api.get(f"/api/v1/staff/tips/{tip_id}", headers=headers).get_json()
    assert detail["content"]["narrative"] == "API CONTENT"
    refused = api.post(f"/api/v1/staff/tips/{tip_id}/accept", headers=headers)
    assert refused.status_code == 409 and refused.get_json()["code"] == "classify_first"
    assert db.session.get(Tip, tip_id).status == "received"  # nothing changed
    ok = api.post(f"/api/v1/staff/tips/{tip_id}/classify", json={"category": "Z06"},
                  headers=headers)
    assert ok.status_code == 200
    assert api.post(f"/api/v1/staff/tips/{tip_id}/accept", headers=headers).status_code == 200
    again = api.post(f"/api/v1/staff/tips/{tip_id}/accept", headers=headers)
    assert again.status_code == 409
    bad = api.post(f"/api/v1/staff/tips/{tip_id}/extend", json={"days": "many"},
                   headers=headers)
    assert bad.status_code == 400
    api.post(f"/api/v1/staff/tips/{tip_id}/message", json={"body": "Thanks"}, headers=headers)
    seen = client.post("/api/v1/followup", json={"receipt": receipt}).get_json()
    assert seen["status"] == "accepted" and seen["messages"][-1]["body"] == "Thanks"
    assert api.post(f"/api/v1/staff/tips/{tip_id}/fly", headers=headers).status_code == 404
    # Revoked tokens stop working at once.
    assert api.delete("/api/v1/staff/token", headers=headers).status_code == 204
    assert api.get("/api/v1/staff/tips", headers=headers).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "token.revoked")) == 1


def test_api_respects_units_and_roles(app, client, staff) -> None:
    client.post("/api/v1/tips", json={"narrative": "yanji", "county": "yanji"})
    tip_id = db.session.scalar(select(func.max(Tip.id)))
    case = staff.create("case_api", "yanji", "case_officer")
    other = staff.create("other_api", "antu")
    case_headers = {"Authorization": f"Bearer {token_for(app, staff, 'case_api', case)}"}
    other_headers = {"Authorization": f"Bearer {token_for(app, staff, 'other_api', other)}"}
    api = app.test_client()
    forbidden = api.post(f"/api/v1/staff/tips/{tip_id}/classify", json={"category": "P01"},
                         headers=case_headers)
    assert forbidden.status_code == 403
    assert api.get(f"/api/v1/staff/tips/{tip_id}", headers=other_headers).status_code == 404
    assert api.post(f"/api/v1/staff/tips/{tip_id}/classify", json={"category": "P01"},
                    headers=other_headers).status_code == 404


def test_hotline_over_the_api(app, staff) -> None:
    uid = staff.create("operator_api", "zhou")
    headers = {"Authorization": f"Bearer {token_for(app, staff, 'operator_api', uid)}"}
    api = app.test_client()
    made = api.post("/api/v1/staff/hotline", json={"channel": "petition",
                                                   "narrative": "letter", "county": "tumen"},
                    headers=headers)
    assert made.status_code == 201 and made.get_json()["receipt"]
    assert db.session.get(Tip, made.get_json()["tip_id"]).channel == "petition"
    bad = api.post("/api/v1/staff/hotline", json={"channel": "online", "narrative": "x"},
                   headers=headers)
    # The API checks the channel with the other fields: a 400 naming it, not a refusal.
    assert bad.status_code == 400 and set(bad.get_json()["errors"]) == {"channel"}
    missing = api.post("/api/v1/staff/hotline", json={"channel": "hotline", "narrative": ""},
                       headers=headers)
    assert missing.status_code == 400 and "narrative" in missing.get_json()["errors"]
    # A length counts what was sent, as the document's maxLength says (schemathesis found a
    # padded phone of 41 characters accepted because it was trimmed first).
    padded = api.post("/api/v1/staff/hotline", headers=headers, json={
        "channel": "hotline", "narrative": "x", "identity": {"name": "Kim",
                                                            "phone": "13800000000" + " " * 30}})
    assert padded.status_code == 400 and set(padded.get_json()["errors"]) == {"phone"}
