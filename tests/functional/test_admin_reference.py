"""Administrators maintain the holiday calendar and the offences; neither opens a tip."""

from __future__ import annotations

import io

from sqlalchemy import select

from models import CalendarYear, Holiday, Offence
from portal.web.extensions import db
from tests.functional.test_admin_users import admin_client


def test_calendar_import_adds_a_year_and_names_bad_lines(app, portal_keys) -> None:
    client, _ = admin_client(app)
    assert "2026" in client.get("/admin/calendar").get_data(as_text=True)
    assert db.session.get(CalendarYear, 2027) is None
    bad = client.post("/admin/calendar?lang=en", data={
        "csv": "date,kind,name\n2027-01-01,holiday,元旦\n2027-13-01,holiday,x\n"})
    assert "line 3" in client.get(bad.location).get_data(as_text=True)
    assert db.session.get(CalendarYear, 2027) is None
    csv = ("date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休\n"
           "2027,complete,\n")
    done = client.post("/admin/calendar", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(csv.encode()), "2027.csv")})
    assert done.status_code == 303
    assert db.session.get(CalendarYear, 2027).source == "import"
    assert db.session.get(Holiday, __import__("datetime").date(2027, 2, 6)).kind == "workday"


def test_offences_are_editable(app, portal_keys, staff) -> None:
    client, _ = admin_client(app)
    client.post("/admin/offences", data={"code": "wildlife", "name_zh": "危害珍贵、濒危野生动物罪",
                                         "name_ko": "진귀·멸종위기 야생동물 위해죄",
                                         "name_en": "Harming rare or endangered wildlife",
                                         "basis": "《中华人民共和国刑法》第三百四十一条",
                                         "active": "y"})
    assert db.session.scalars(select(Offence).where(Offence.code == "wildlife")).one().active
    refused = client.post("/admin/offences?lang=en", data={
        "code": "x", "name_zh": "", "name_en": "Typed name", "basis": "typed basis"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Every offence needs a code" in page
    assert 'value="Typed name"' in page and 'value="typed basis"' in page
    too_long = client.post("/admin/offences?lang=en", data={
        "code": "y", "name_zh": "罪" * 81, "name_ko": "죄", "name_en": "Offence", "basis": "b"})
    assert too_long.status_code == 400 and "at most 80" in too_long.get_data(as_text=True)
    assert db.session.scalars(select(Offence).where(Offence.code == "x")).first() is None
    # An officer is no administrator.
    uid = staff.create("plain_officer", "yanji")
    officer = app.test_client()
    staff.login(officer, "plain_officer", uid)
    assert officer.get("/admin/offences").status_code == 403


def test_next_years_calendar_is_missed_from_1_november(app, portal_keys, runner) -> None:
    """From 1 November a missing next-year calendar is a warning on the administrator's home,
    on the calendar page and from `flask calendar-check`; on 31 October it is not yet."""
    from datetime import date

    from sqlalchemy import delete

    db.session.execute(delete(CalendarYear).where(CalendarYear.year == 2027))
    db.session.commit()
    client, _ = admin_client(app)
    warning = "The holiday calendar for 2027 is missing"
    app.config["TODAY"] = date(2026, 10, 31)
    assert warning not in client.get("/admin?lang=en").get_data(as_text=True)
    assert warning not in client.get("/admin/calendar?lang=en").get_data(as_text=True)
    quiet = runner.invoke(args=["calendar-check", "--today", "2026-10-31"])
    assert quiet.exit_code == 0 and "ok" in quiet.stdout
    app.config["TODAY"] = date(2026, 11, 1)
    assert warning in client.get("/admin?lang=en").get_data(as_text=True)
    assert warning in client.get("/admin/calendar?lang=en").get_data(as_text=True)
    loud = runner.invoke(args=["calendar-check", "--today", "2026-11-01"])
    assert loud.exit_code == 1 and "2027" in loud.stderr
    # Imported, the warning goes.
    client.post("/admin/calendar", data={"csv": "date,kind,name\n2027-01-01,holiday,元旦\n"
                                                "2027,complete,\n"})
    assert warning not in client.get("/admin?lang=en").get_data(as_text=True)
    assert runner.invoke(args=["calendar-check", "--today", "2026-11-01"]).exit_code == 0


def test_categories_name_the_usual_receiver_in_words(app, portal_keys) -> None:
    client, _ = admin_client(app)
    page = client.get("/admin/categories?lang=en").get_data(as_text=True)
    assert ">Public security (公安)</option>" in page
    assert ">public_security<" not in page and "(v1)" not in page
    missing = client.post("/admin/categories?lang=en", data={
        "code": "P01", "name_zh": "", "name_ko": "불법투기", "name_en": "Typed dumping",
        "usual_receiver": "procuratorate"})
    page = missing.get_data(as_text=True)
    assert missing.status_code == 400 and "name in all three languages" in page
    assert 'value="Typed dumping"' in page
    assert 'value="procuratorate" selected>Procuratorate (检察院)</option>' in page
    saved = client.post("/admin/categories", data={
        "code": "P01", "name_zh": "非法倾倒", "name_ko": "불법투기", "name_en": "Dumping",
        "usual_receiver": "procuratorate"})
    assert saved.status_code == 303
    page = client.get("/admin/categories?lang=en").get_data(as_text=True)
    assert 'value="procuratorate" selected>Procuratorate (检察院)</option>' in page
