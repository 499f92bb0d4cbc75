"""The API answers as the pages do (issue 9, the route × role matrix): who may act, and whether
they hold the unit's key, is settled before what they sent is read. A head without the key gets
no referral package over the API either (403, in words: who can grant the key), and a tip
action by an officer without the key is 403 whatever its input, as on the tip page."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEvent, Tip
from portal.web.extensions import db
from tests.functional.test_referral_handover import referral_scene, submit_with_report
from tests.functional.test_triage import file_tip


def token(app, staff, username: str, uid: int) -> dict[str, str]:
    response = app.test_client().post("/api/v1/staff/token", json={
        "username": username, "password": staff.PASSWORD,
        "otp": staff.code(uid, offset_steps=1)})
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}", "Accept-Language": "en"}


def test_a_head_without_the_key_gets_no_package_over_the_api(app, staff) -> None:
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    handed = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                                data={"contact_phone": "0433-2512345"})
    assert handed.status_code == 303
    keyless = staff.create("keyless_head", "yanji", "head", grant=False)
    page = app.test_client()
    staff.login(page, "keyless_head", keyless)
    assert page.get(f"/staff/referrals/{scene.referral_id}/package").status_code == 403
    api = app.test_client()
    headers = token(app, staff, "keyless_head", keyless)
    for path in (f"/api/v1/staff/referrals/{scene.referral_id}/package",
                 f"/api/v1/liaison/referrals/{scene.referral_id}/package"):
        refused = api.get(path, headers=headers)
        assert refused.status_code == 403, path
        answer = refused.get_json()
        assert answer["code"] == "key_not_held" and "grant it to you" in answer["error"]
    actions = [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.actor_id == keyless,
                                 AuditEvent.object_type == "referral"))]
    assert actions == ["referral.package_refused"] * 3  # a refusal, never a download
    # Whoever holds the key still gets the sealed file.
    holder = token(app, staff, "head", scene.ids["head"])
    sealed = api.get(f"/api/v1/staff/referrals/{scene.referral_id}/package", headers=holder)
    assert sealed.status_code == 200 and sealed.data.startswith(b"age-encryption.org/v1")


def test_tip_actions_check_the_key_before_the_input(app, client, staff) -> None:
    tip_id, _ = file_tip(client, "yanji", "a sealed report")
    keyless = staff.create("keyless", "yanji", "head", grant=False)
    page = app.test_client()
    staff.login(page, "keyless", keyless)
    api = app.test_client()
    headers = token(app, staff, "keyless", keyless)
    for action, sent in (("message", {}), ("extend", {"days": "many"}),
                         ("classify", {"category": 5}), ("accept", {})):
        on_page = page.post(f"/staff/tips/{tip_id}/{action}", data={
            k: str(v) for k, v in sent.items()})
        over_api = api.post(f"/api/v1/staff/tips/{tip_id}/{action}", json=sent, headers=headers)
        assert (on_page.status_code, over_api.status_code) == (403, 403), action
        assert "key" in over_api.get_json()["error"]
    assert db.session.get(Tip, tip_id).status == "received"  # nothing changed
    # With the key, the same bad input is what is refused.
    holder = staff.create("holder", "yanji", "head")
    bad = api.post(f"/api/v1/staff/tips/{tip_id}/extend", json={"days": "many"},
                   headers=token(app, staff, "holder", holder))
    assert bad.status_code == 400
