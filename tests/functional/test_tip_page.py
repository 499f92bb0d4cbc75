"""The officer's queue and tip page in words: the report's language (stored, shown, filtered),
a photo's kept location and time, what the log says about photos and downloads, form errors
instead of 500s, and refreshes that repeat nothing."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import unquote

from PIL import Image
from sqlalchemy import func, select

from models import AuditEvent, Tip
from portal.web.extensions import db
from tests.helpers import jpeg_with_metadata

SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
RECEIPT = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")


def events(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


def newest_tip() -> Tip:
    tip = db.session.scalars(select(Tip).order_by(Tip.id.desc()).limit(1)).one()
    db.session.refresh(tip)
    return tip


def web_report(client, lang: str, **fields) -> Tip:
    """File through the citizen's page in `lang`, as a browser does."""
    page = client.get(f"/report?lang={lang}").get_data(as_text=True)
    data = {"narrative": "오수를 강에 버린다", "county": "yanji",
            "submission": SUBMISSION.search(page).group(1), **fields}
    response = client.post("/report", data=data, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    return newest_tip()


def officer(app, staff, name: str = "intake", unit: str = "yanji", **kwargs):
    uid = staff.create(name, unit, **kwargs)
    browser = app.test_client()
    staff.login(browser, name, uid)
    return browser, uid


def test_the_language_is_stored_shown_and_filtered(app, client, staff) -> None:
    korean = web_report(app.test_client(), "ko")
    chinese = web_report(app.test_client(), "zh", narrative="往河里倒废油")
    assert (korean.language, chinese.language) == ("ko", "zh")
    # The API: an explicit field wins, else the request's language, else unknown.
    api = app.test_client()
    here = {"narrative": "x", "county": "yanji"}
    assert api.post("/api/v1/tips", json={**here, "language": "en"},
                    headers={"Accept-Language": "ko"}).status_code == 201
    explicit = newest_tip()
    assert api.post("/api/v1/tips", json=here,
                    headers={"Accept-Language": "ko-KR,ko;q=0.9"}).status_code == 201
    from_header = newest_tip()
    assert api.post("/api/v1/tips", json=here).status_code == 201
    unknown = newest_tip()
    assert (explicit.language, from_header.language, unknown.language) == ("en", "ko", None)
    bad = api.post("/api/v1/tips", json={"narrative": "x", "language": "fr"})
    assert bad.status_code == 400 and "language" in bad.get_json()["errors"]

    browser, uid = officer(app, staff)
    page = browser.get("/staff/?lang=zh").get_data(as_text=True)
    assert "朝鲜语" in page or "Korean" in page  # words, until the catalogs are merged
    assert 'name="language"' in page and '<option value="ko"' in page
    listed = browser.get("/staff/?language=ko&lang=en").get_data(as_text=True)
    ids = {int(i) for i in re.findall(r'href="/staff/tips/(\d+)"', listed)}
    assert ids == {korean.id, from_header.id}
    ids = {int(i) for i in re.findall(r'href="/staff/tips/(\d+)"',
                                      browser.get("/staff/?language=unknown").get_data(
                                          as_text=True))}
    assert ids == {unknown.id}
    # An out-of-range filter is an error on the page, never a 500 nor a silently empty list.
    wrong = browser.get("/staff/?language=fr&lang=en")
    assert wrong.status_code == 400
    text = wrong.get_data(as_text=True)
    assert "Please choose one of the listed languages." in text and 'href="#f-language"' in text
    assert f'href="/staff/tips/{korean.id}"' in text  # the rest of the queue is still listed
    # The tip page names the language too.
    assert "Korean" in browser.get(f"/staff/tips/{korean.id}?lang=en").get_data(as_text=True)

    token = app.test_client().post("/api/v1/staff/token", json={
        "username": "intake", "password": staff.PASSWORD,
        "otp": staff.code(uid, offset_steps=1)}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    rows = api.get("/api/v1/staff/tips?language=ko", headers=headers).get_json()["tips"]
    assert {r["id"] for r in rows} == {korean.id, from_header.id}
    assert {r["language"] for r in rows} == {"ko"} and rows[0]["language_text"] == "Korean"
    refused = api.get("/api/v1/staff/tips?language=fr&channel=fax", headers=headers)
    assert refused.status_code == 400
    assert set(refused.get_json()["errors"]) == {"language", "channel"}
    doc = api.get("/api/v1/openapi.json").get_json()
    names = [p["name"] for p in doc["paths"]["/staff/tips"]["get"]["parameters"]]
    assert "language" in names
    assert "language" in doc["components"]["schemas"]["Tip"]["properties"]


def test_the_queue_speaks_in_words(app, client, staff) -> None:
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji", "category": "P01",
                                      "language": "ko"})
    browser, _ = officer(app, staff)
    page = browser.get("/staff/?lang=en").get_data(as_text=True)
    row = page[page.index("<tbody>"):page.index("</tbody>")]
    for words in ("Partner app", "Normal", "Yanji", "Korean",
                  "Decide to accept or decline"):
        assert words in row, words
    for code in (">api<", 'label="Priority">0<', ">yanji<", "tip.accept", ">ko<"):
        assert code not in row, code
    assert re.search(r"P01 [^<]*illegal dumping", row, re.IGNORECASE)
    counts = page[page.index('id="counts-title"'):page.index("</details>")]
    assert re.search(r"P01 [^<:]+: <strong>1</strong>", counts)
    # Out-of-range values in any select of the filter form: errors, never a 500.
    for query in ("status=lost", "category=X99", "county=atlantis", "channel=fax",
                  "deadline=yesterday", "sort=size", "from=31.12.2026", "to=9999-12-31",
                  "from=0001-01-01", "real_name=maybe",
                  "attachments=3", "after=%25%25%25"):
        response = browser.get(f"/staff/?{query}&lang=en")
        assert response.status_code == 400, query
        assert 'class="error-summary"' in response.get_data(as_text=True), query


def test_queue_folds_counts_and_filters_and_counts_the_active_filters(app, client,
                                                                       staff) -> None:
    """On a phone the tips come first: counts and filters fold into closed boxes (no script),
    the filters' box says how many are in use and opens by itself when one is in error."""
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji", "language": "ko"})
    browser, _ = officer(app, staff)

    def boxes(query: str) -> tuple[str, str, str]:
        page = browser.get(f"/staff/?{query}&lang=en").get_data(as_text=True)
        counts = re.search(r'<details class="counts"[^>]*>', page)
        filters = re.search(r'<details class="filter-box"[^>]*>\s*<summary>([^<]*)</summary>'
                            r'\s*<form method="get"[^>]*class="filters"', page)
        assert counts and filters, query
        assert page.index("</details>", filters.end()) < page.index('<table class="queue')
        return counts.group(0), filters.group(0), filters.group(1)

    counts, box, summary = boxes("")
    assert " open" not in counts and " open" not in box
    assert summary == "Filters (none active)"
    _, box, summary = boxes("language=ko&status=received&sort=deadline")
    assert " open" not in box and summary == "Filters (2 active)"
    _, box, summary = boxes("language=fr&status=received")  # fr is left out: an error
    assert box.startswith('<details class="filter-box" id="filters" open>')
    assert summary == "Filters (1 active)"


def test_kept_location_is_shown_and_photos_are_part_of_the_opening(app, client, staff) -> None:
    photo = jpeg_with_metadata()
    response = client.post("/api/v1/tips", content_type="multipart/form-data", data={
        "narrative": "pipe under the bridge", "county": "yanji", "keep_photo_location": "true",
        "attachments": [(io.BytesIO(photo), "현장사진 1.jpg"), (io.BytesIO(b"notes"), "n.txt")]})
    assert response.status_code == 201
    kept = newest_tip()
    client.post("/api/v1/tips", content_type="multipart/form-data", data={
        "narrative": "same without location", "county": "yanji",
        "attachments": [(io.BytesIO(photo), "p.jpg")]})
    stripped = newest_tip()
    browser, uid = officer(app, staff)

    page = browser.get(f"/staff/tips/{kept.id}?lang=en").get_data(as_text=True)
    assert "42.90833, 129.50278" in page  # N 42°54'30", E 129°30'10", to 5 decimals
    assert "2026-11-01 08:30:00" in page
    assert "현장사진 1.jpg" in page
    assert "keep where and when the photos and videos were taken" in page  # the same box for both
    # Photos are drawn within the page itself: no image is fetched from a download address.
    sources = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert sources and all(src.startswith("data:image/jpeg;base64,") for src in sources)
    assert "http://" not in page and "https://" not in page  # no outside map
    # Seeing the photo is part of opening the tip: no download is logged for it.
    assert (events("tip.opened"), events("attachment.downloaded")) == (1, 0)
    other = browser.get(f"/staff/tips/{stripped.id}?lang=en").get_data(as_text=True)
    assert "42.90833" not in other and "2026-11-01 08:30" not in other
    assert "keep where and when" not in other
    assert 'src="data:image/jpeg;base64,' in other
    assert events("attachment.downloaded") == 0

    # An explicit download is logged as one and keeps the name, the true type and the
    # location the reporter chose to keep.
    image = next(a for a in kept.attachments if a.family == "image")
    download = browser.get(f"/staff/attachments/{image.id}")
    assert download.status_code == 200 and download.mimetype == "image/jpeg"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="____ 1.jpg"' in disposition  # the ASCII stand-in
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "현장사진 1.jpg"
    with Image.open(io.BytesIO(download.data)) as saved:
        assert saved.getexif().get_ifd(0x8825)  # GPS kept, as chosen
        assert not saved.getexif().get(0x010F)  # the camera's make is gone
    text_file = next(a for a in kept.attachments if a.family == "text")
    plain = browser.get(f"/staff/attachments/{text_file.id}")
    assert plain.mimetype == "text/plain" and plain.data == b"notes"
    assert 'filename="n.txt"' in plain.headers["Content-Disposition"]
    logged = list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "attachment.downloaded").order_by(AuditEvent.id)))
    assert [e.object_id for e in logged] == [image.id, text_file.id]
    assert all(e.actor_id == uid for e in logged)

    # The API gives the location as numbers, and the file as the page does.
    token = app.test_client().post("/api/v1/staff/token", json={
        "username": "intake", "password": staff.PASSWORD,
        "otp": staff.code(uid, offset_steps=1)}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    detail = client.get(f"/api/v1/staff/tips/{kept.id}", headers=headers).get_json()
    located = next(a for a in detail["attachments"] if a["family"] == "image")
    assert located["location"] == {"latitude": 42.90833, "longitude": 129.50278,
                                   "taken": "2026-11-01 08:30:00"}
    api_file = client.get(f"/api/v1/staff/attachments/{image.id}", headers=headers)
    assert api_file.mimetype == "image/jpeg" and api_file.data.startswith(b"\xff\xd8")
    assert "filename*=UTF-8''" in api_file.headers["Content-Disposition"]


def test_history_and_metadata_in_words(app, client, staff) -> None:
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji"})
    tip = newest_tip()
    browser, _ = officer(app, staff)
    assert browser.post(f"/staff/tips/{tip.id}/classify", data={"category": "P04"}
                        ).status_code == 303
    browser.post(f"/staff/tips/{tip.id}/priority", data={"priority": "2"})
    page = browser.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    history = page[page.index('id="history-title"'):page.index('id="actions-title"')]
    for code in ("tip.received", "tip.classified", "{", "reporter<", "api<"):
        assert code not in history, code
    meta = page[page.index('<dl class="meta">'):page.index("</dl>")]
    assert "Partner app" in meta and "version 1" in meta and "Urgent" in meta
    assert "Decide to accept or decline" in meta and "tip.accept" not in meta
    # The actions are within reach: linked from the top, and before the long history.
    assert page.index('href="#act-classify"') < page.index('id="content-title"')
    assert 'id="act-classify"' in page and 'id="act-message"' in page


def test_refused_actions_keep_the_input_and_bad_values_are_no_500(app, client, staff) -> None:
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji"})
    tip = newest_tip()
    browser, _ = officer(app, staff)
    long_reason = "Not ours. " * 500  # over 4,000 characters
    refused = browser.post(f"/staff/tips/{tip.id}/decline?lang=en", data={"reason": long_reason})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "The text is too long." in text and long_reason.strip()[:200] in text
    assert 'id="act-decline-error"' in text
    db.session.refresh(tip)
    assert tip.status == "received"
    for action, data in (("classify", {"category": "X99"}), ("priority", {"priority": "9"}),
                         ("priority", {"priority": "high"}), ("assign", {"user_id": "abc"}),
                         ("assign", {"user_id": "999999"}), ("transfer", {"unit": "atlantis",
                                                                          "reason": "r"}),
                         ("extend", {"days": "many", "reason": "r"}),
                         ("duplicate", {"original_id": "x"})):
        response = browser.post(f"/staff/tips/{tip.id}/{action}?lang=en", data=data)
        assert response.status_code == 400, (action, data)
        assert 'class="error-summary"' in response.get_data(as_text=True)
    assert browser.post(f"/staff/tips/{tip.id}/fly", data={}).status_code == 404


def test_actions_follow_post_redirect_get(app, client, staff) -> None:
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji"})
    tip = newest_tip()
    browser, _ = officer(app, staff)
    sent = browser.post(f"/staff/tips/{tip.id}/message", data={"body": "Which road?"})
    assert sent.status_code == 303 and sent.headers["Location"] == f"/staff/tips/{tip.id}"
    # What the browser shows after the redirect is a GET: reloading it sends nothing.
    for _ in range(2):
        assert browser.get(sent.headers["Location"]).status_code == 200
    assert events("message.to_reporter") == 1


def hotline_form(browser) -> tuple[str, str]:
    page = browser.get("/staff/hotline?lang=en").get_data(as_text=True)
    return SUBMISSION.search(page).group(1), page


def test_hotline_language_errors_and_refresh(app, staff) -> None:
    browser, _ = officer(app, staff, "operator", "zhou")
    token, page = hotline_form(browser)
    assert "12369 hotline" in page and ">hotline<" not in page  # channels in words
    assert '<option selected value="en">' in page or 'value="en" selected' in page
    typed = {"channel": "fax", "language": "ko", "category": "Z02", "county": "antu",
             "narrative": "STRAW BURNING AT NIGHT", "place": "Village 3", "submission": token}
    # Every select out of range: a form error that keeps the input, never a 500.
    for field, value, message in (
            ("channel", "fax", "Please choose the channel the tip came through."),
            ("channel", "online", "Please choose the channel the tip came through."),
            ("language", "fr", "Please choose one of the listed languages."),
            ("category", "X99", "Please choose one of the listed categories."),
            ("county", "atlantis", "Please choose one of the listed counties or cities.")):
        data = {**typed, "channel": "hotline", field: value}
        response = browser.post("/staff/hotline?lang=en", data=data)
        assert response.status_code == 400, field
        text = response.get_data(as_text=True)
        assert message in text, field
        assert "STRAW BURNING AT NIGHT" in text and 'value="Village 3"' in text
        assert f'href="#{field}"' in text
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0
    # A form without its one-time token (or a forged one) is sent again, never filed blind.
    expired = browser.post("/staff/hotline?lang=en", data={**typed, "channel": "hotline",
                                                           "submission": "forged"})
    assert expired.status_code == 400 and "This form has expired" in expired.get_data(
        as_text=True)
    # Filed once, whatever the number of times the form is sent (a refresh of the receipt).
    good = {**typed, "channel": "petition"}
    first = browser.post("/staff/hotline?lang=en", data=good)
    assert first.status_code == 201
    receipt = RECEIPT.search(first.get_data(as_text=True)).group(1)
    # Shown once: no language link leads away from it to an empty form.
    assert "/staff/hotline?lang=" not in first.get_data(as_text=True)
    again = browser.post("/staff/hotline?lang=en", data=good)
    assert again.status_code == 200
    text = again.get_data(as_text=True)
    assert "no second tip was filed" in text and receipt in text
    # The same used form changed (restored from the history): a form error, nothing filed.
    changed = browser.post("/staff/hotline?lang=en", data={**good, "narrative": "ANOTHER CALL"})
    assert changed.status_code == 400
    text = changed.get_data(as_text=True)
    assert "already used to file a tip" in text and "ANOTHER CALL" in text
    assert SUBMISSION.search(text).group(1) != token  # a new token: sending it files anew
    tips = list(db.session.scalars(select(Tip)))
    assert len(tips) == 1
    assert (tips[0].channel, tips[0].language, tips[0].unit.code) == ("petition", "ko", "antu")
    received = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "tip.received")).one()
    assert json.loads(received.details)["channel"] == "petition"


def test_the_tip_links_to_its_case_and_referrals(app, client, staff) -> None:
    from models import User
    from portal.cases import referrals
    from portal.security.access import principal_for
    from portal.security.custody import unit_identities, unlock_personal
    from portal.triage import tip_actions

    tip_ids = []
    for narrative in ("quarry oil", "the quarry again"):
        client.post("/api/v1/tips", json={"narrative": narrative, "county": "yanji",
                                          "category": "P04"})
        tip_ids.append(newest_tip().id)
    browser, uid = officer(app, staff, "lead", extra=(("yanji", "case_officer"),))
    second = staff.create("second", "yanji", "case_officer")
    user = db.session.get(User, uid)
    lead = principal_for(db.session, user, unit_identities(
        db.session, user, unlock_personal(user, staff.PASSWORD)))
    for tip_id in tip_ids:
        tip_actions.accept(db.session, lead, tip_id)
    case = referrals.form_case(db.session, lead, tip_ids=tip_ids, member_ids=[uid, second],
                               offence_code="pollution", title="quarry", summary="oil")
    referral = referrals.create_referral(db.session, lead, case.id, "psb_zhou", "proc_zhou")
    db.session.commit()
    page = browser.get(f"/staff/tips/{tip_ids[0]}?lang=en").get_data(as_text=True)
    assert f'href="/staff/cases/{case.id}"' in page and case.number in page
    assert f'href="/staff/referrals/{referral.id}"' in page
    meta = page[page.index('<dl class="meta">'):page.index("</dl>")]
    assert "psb_zhou" not in meta and f"· {referral.state}<" not in meta  # in words
