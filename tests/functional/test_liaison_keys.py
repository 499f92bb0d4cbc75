"""A receiving body's key through the pages: a liaison who holds it grants it to the body's other
liaisons (README), the body's recovery key grants it too, and the package ZIP then opens. The
"you hold no key" page keeps the menu and says how to get the key."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import func, select

from models import Unit, UnitKeyGrant, User
from portal.web.extensions import db
from tests.functional.test_admin_users import admin_client
from tests.functional.test_referrals import chain, cst, form, step  # noqa: F401 (fixture)


def user_id(username: str) -> int:
    return db.session.scalars(select(User.id).where(User.username == username)).one()


def holds(username: str, unit_code: str) -> bool:
    unit = db.session.scalars(select(Unit).where(Unit.code == unit_code)).one()
    return db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.user_id == user_id(username), UnitKeyGrant.unit_id == unit.id,
        UnitKeyGrant.revoked_at.is_(None))) == 1


def handed_over(staff, tips) -> int:
    _, referral = form(staff, tips)
    rid = referral.id
    step(staff, "case_a", rid, "submit", cst(2026, 9, 28, 10))
    step(staff, "head_y", rid, "approve", cst(2026, 9, 30, 9))
    step(staff, "case_b", rid, "hand_over", cst(2026, 9, 30, 16),
         letter_context={"contact_phone": "0433-1234567"})
    return rid


def test_a_liaison_grants_the_bodys_key_to_another_liaison(app, staff, chain,  # noqa: F811
                                                           portal_keys) -> None:
    rid = handed_over(staff, chain)
    second = staff.create("psb_second", "psb_zhou", "liaison", grant=False)
    newcomer = app.test_client()
    staff.login(newcomer, "psb_second", second)
    package = f"/liaison/referrals/{rid}/package"
    assert newcomer.get(package).status_code == 403
    page = newcomer.get("/staff/keys?lang=en").get_data(as_text=True)
    assert "You do not hold the key of: Yanbian" in page

    holder = app.test_client()
    staff.login(holder, "psb_liaison", user_id("psb_liaison"))
    page = holder.get("/staff/keys?lang=en").get_data(as_text=True)
    assert 'value="psb_zhou"' in page and f'value="{second}"' in page
    # A body's key opens packages: a liaison's page does not call it the reports key.
    assert "Reports key" not in page and "Each handling unit has two keys" not in page
    assert 'value="yanji"' not in page and f'value="{user_id("case_a")}"' not in page
    # Not to an officer of another unit, and not the key of a unit the liaison is no part of.
    holder.post("/staff/keys", data={"unit": "psb_zhou", "user_id": str(user_id("case_a"))})
    holder.post("/staff/keys", data={"unit": "yanji", "user_id": str(second)})
    assert not holds("case_a", "psb_zhou") and not holds("psb_second", "yanji")

    granted = holder.post("/staff/keys?lang=en", data={"unit": "psb_zhou",
                                                       "user_id": str(second)})
    assert granted.status_code == 303
    assert "psb_second now holds the key of" in holder.get(granted.location).get_data(
        as_text=True)
    assert holds("psb_second", "psb_zhou")
    download = newcomer.get(package)
    assert download.status_code == 200
    assert any(name.endswith(".pdf") for name in zipfile.ZipFile(
        io.BytesIO(download.data)).namelist())


def test_the_bodys_recovery_key_grants_it_through_the_page(app, staff, chain,  # noqa: F811
                                                          portal_keys) -> None:
    rid = handed_over(staff, chain)
    third = staff.create("psb_third", "psb_zhou", "liaison", grant=False)
    admin, _ = admin_client(app)
    # The administrator keeps the printed recovery keys: without one nothing is granted, and
    # a wrong one is refused.
    admin.post("/staff/keys", data={"unit": "psb_zhou", "user_id": str(third)})
    admin.post("/staff/keys", data={"unit": "psb_zhou", "user_id": str(third),
                                    "recovery_key": portal_keys["yanji"]})
    assert not holds("psb_third", "psb_zhou")
    admin.post("/staff/keys", data={"unit": "psb_zhou", "user_id": str(third),
                                    "recovery_key": portal_keys["psb_zhou"]})
    assert holds("psb_third", "psb_zhou")
    # The administrator still holds nothing and opens nothing.
    assert db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.user_id == user_id("admin"))) == 0
    liaison = app.test_client()
    staff.login(liaison, "psb_third", third)
    package = liaison.get(f"/liaison/referrals/{rid}/package")
    assert package.status_code == 200 and package.data.startswith(b"PK")  # read to the end

    # A liaison without the key may paste the recovery key and choose themself.
    fourth = staff.create("psb_fourth", "psb_zhou", "liaison", grant=False)
    own = app.test_client()
    staff.login(own, "psb_fourth", fourth)
    own.post("/staff/keys", data={"unit": "psb_zhou", "user_id": str(fourth),
                                  "recovery_key": portal_keys["psb_zhou"]})
    assert holds("psb_fourth", "psb_zhou")


def test_no_key_page_keeps_the_menu_and_says_how_to_get_the_key(app, client, staff) -> None:
    from tests.functional.test_triage import file_tip

    tip_id, _ = file_tip(client, "yanji", "a sealed report")
    uid = staff.create("keyless", "yanji", grant=False)
    browser = app.test_client()
    staff.login(browser, "keyless", uid)
    page = browser.get(f"/staff/tips/{tip_id}?lang=en")
    text = page.get_data(as_text=True)
    assert page.status_code == 403
    assert "You do not hold the key of Yanji" in text
    assert 'href="/staff/keys"' in text and 'href="/staff/"' in text  # the staff menu
    assert "recovery key" in text and "yanji" not in text.replace('lang="', "")
    assert "a sealed report" not in text
