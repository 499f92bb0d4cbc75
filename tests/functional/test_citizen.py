"""The citizen pages through the test client: languages, the report form's errors, the receipt,
follow-up and replies."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from models import Message, Tip
from portal.security import crypto
from portal.web.extensions import db
from tests.helpers import jpeg_with_metadata

RECEIPT = re.compile(rb"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")
SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
HANDLE = re.compile(r'name="token" type="hidden" value="([0-9a-f]+)"')


def hidden(pattern: re.Pattern, page) -> str:
    text = page if isinstance(page, str) else page.get_data(as_text=True)
    match = pattern.search(text)
    assert match, text[:2000]
    return match.group(1)


def form_token(client) -> str:
    """The one-time submission token of a freshly drawn report form, as a browser gets it."""
    return hidden(SUBMISSION, client.get("/report"))


def submit(client, path="/report", **fields):
    data = {"narrative": "waste oil poured into the Buerhatong river",
            "submission": form_token(client), **fields}
    return client.post(path, data=data, content_type="multipart/form-data")


def receipt_of(response) -> str:
    match = RECEIPT.search(response.data)
    assert match, response.data[:2000]
    return match.group(1).decode()


@pytest.mark.parametrize(("lang", "html_lang", "phrase", "followup"), [
    ("zh", "zh-Hans", "匿名", "查询举报"), ("ko", "ko", "익명", "제보 조회"),
    ("en", "en", "anonymous", "Follow up a report"),
])
def test_every_citizen_page_speaks_three_languages(client, portal_keys, lang, html_lang,
                                                   phrase, followup) -> None:
    for path, words in (("/", phrase), ("/report", phrase), ("/followup", f"<h1>{followup}</h1>")):
        page = client.get(f"{path}?lang={lang}")
        assert page.status_code == 200
        assert f'<html lang="{html_lang}">'.encode() in page.data
        assert words in page.get_data(as_text=True)
    # The choice is remembered for the visit, and every page links all three languages.
    page = client.get("/report").get_data(as_text=True)
    assert f'<html lang="{html_lang}">' in page
    for label in ("中文", "조선어", "English"):
        assert label in page


def test_default_language_is_chinese_and_follows_the_browser(client, portal_keys) -> None:
    assert b'<html lang="zh-Hans">' in client.get("/").data
    korean = client.get("/", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    assert b'<html lang="ko">' in korean.data


def test_report_form_lists_17_categories_grouped_and_not_sure(client, portal_keys) -> None:
    page = client.get("/report?lang=en").get_data(as_text=True)
    codes = re.findall(r'name="category" id="category-([PZ]\d\d)"', page)
    assert codes == [f"P{i:02d}" for i in range(1, 11)] + [f"Z{i:02d}" for i in range(1, 8)]
    assert 'id="category-none" value="" checked' in page
    assert "Set by the provincial department (10)" in page
    assert "Set by the prefecture bureau (7)" in page
    for county in ("yanji", "tumen", "dunhua", "hunchun", "longjing", "helong", "wangqing",
                   "antu", "unknown"):
        assert f'value="{county}"' in page
    assert "from photos, videos, audio recordings" in page
    assert "cannot remove hidden data from old-format .doc/.xls/.ppt files" in page
    assert "cannot remove hidden data from videos" not in page


@pytest.mark.parametrize(("lang", "message"), [
    ("zh", "此项为必填项"), ("ko", "필수"), ("en", "This field is required."),
])
def test_missing_narrative_keeps_every_field_and_says_why(client, portal_keys, lang,
                                                          message) -> None:
    client.get(f"/?lang={lang}")
    response = submit(client, narrative="", place="Bridge No. 3 at Chaoyang",
                      occurred="every night", responsible="Tianyuan Chemical",
                      officials="the township head", county="tumen", category="P04")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    for kept in ("Bridge No. 3 at Chaoyang", "every night", "Tianyuan Chemical",
                 "the township head"):
        assert kept in page
    assert 'selected value="tumen"' in page
    assert 'id="category-P04" value="P04" aria-describedby="category-P04-desc" checked' in page
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_identity_typed_without_consent_is_asked_about_not_stored(client, portal_keys) -> None:
    response = submit(client, name="Kim Chol", phone="13912345678")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Kim Chol" in page and "13912345678" in page
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_real_name_report(client, portal_keys) -> None:
    response = submit(client, real_name="y", name="김철", phone="13912345678",
                      id_number="11010519491231002X", contact_ok="y")
    assert response.status_code == 201
    tip = db.session.scalars(select(Tip)).one()
    assert tip.real_name is True
    assert "김철".encode() not in tip.content


def test_invalid_identity_fields_are_explained(client, portal_keys) -> None:
    response = submit(client, real_name="y", name="", id_number="123")
    assert response.status_code == 400
    assert "这不是有效的18位身份证号码。" in response.get_data(as_text=True)
    response = submit(client, "/report?lang=en", real_name="y", name="", id_number="123")
    assert response.status_code == 400
    assert "This is not a valid 18-character ID number." in response.get_data(as_text=True)


def test_success_shows_the_receipt_once_with_a_warning(client, portal_keys) -> None:
    response = submit(client, "/report?lang=en", county="hunchun")
    assert response.status_code == 201
    receipt = receipt_of(response)
    page = response.get_data(as_text=True)
    assert "cannot be shown again or recovered" in page
    assert response.headers["Cache-Control"] == "no-store"
    download = client.post("/receipt.txt", data={"receipt": receipt})
    assert download.mimetype == "text/plain"
    assert "attachment" in download.headers["Content-Disposition"]
    assert receipt in download.get_data(as_text=True)


def test_honeypot_refuses_without_storing(client, portal_keys) -> None:
    response = submit(client, website="http://spam.example")
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_attachment_errors_name_the_file_and_keep_the_text(client, portal_keys) -> None:
    response = submit(client, "/report?lang=en", narrative="see the attached script",
                      attachments=[(io.BytesIO(b"<html><script>alert(1)</script></html>"),
                                    "page.html")])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "page.html" in page and "cannot be accepted" in page
    assert "see the attached script" in page


def test_a_file_over_the_per_file_limit_is_named(app_factory) -> None:
    app = app_factory(MAX_FILE_BYTES=1000, MAX_CONTENT_LENGTH=10_000_000)
    with app.app_context():
        from portal.operations.setup import complete_setup
        from tests.conftest import COSTS

        complete_setup(db.session, "admin", "correct horse battery", **COSTS)
        response = submit(app.test_client(), "/report?lang=en", narrative="keep me",
                          attachments=[(io.BytesIO(b"x" * 5000), "big.txt")])
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "big.txt" in page and "larger than the limit" in page and "keep me" in page


def test_oversize_request_gets_a_friendly_413(app_factory) -> None:
    app = app_factory(MAX_CONTENT_LENGTH=20_000)
    response = app.test_client().post("/report?lang=ko", data={
        "narrative": "x", "attachments": [(io.BytesIO(b"x" * 50_000), "big.txt")]},
        content_type="multipart/form-data")
    assert response.status_code == 413
    assert "<html" in response.get_data(as_text=True)
    assert "MB" in response.get_data(as_text=True)


def test_follow_up_shows_status_and_messages_and_takes_replies(client, portal_keys) -> None:
    receipt = receipt_of(submit(client, county="longjing", place="Longjing quarry"))
    page = client.post("/followup?lang=en", data={"receipt": receipt.lower().replace("-", "")})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Received" in text and "Longjing quarry" in text
    token = hidden(HANDLE, text)
    assert receipt not in text  # the page carries a sealed token, not the receipt
    photo = jpeg_with_metadata()
    reply = client.post("/followup/reply?lang=en", content_type="multipart/form-data", data={
        "token": token, "submission": hidden(SUBMISSION, text),
        "body": "The trucks come at 2 a.m.",
        "attachments": [(io.BytesIO(photo), "trucks.jpg")]})
    assert reply.status_code == 200
    text = reply.get_data(as_text=True)
    assert "Your message has been sent" in text and "The trucks come at 2 a.m." in text
    message = db.session.scalars(select(Message)).one()
    assert message.author == "reporter"
    opened = crypto.open_sealed(message.body, [portal_keys["longjing"]])
    assert opened == b"The trucks come at 2 a.m."
    assert db.session.scalars(select(Tip)).one().attachment_count == 1


def test_empty_reply_is_refused_with_the_page_kept(client, portal_keys) -> None:
    receipt = receipt_of(submit(client))
    text = client.post("/followup", data={"receipt": receipt}).get_data(as_text=True)
    token = hidden(HANDLE, text)
    response = client.post("/followup/reply", data={"token": token, "body": "  ",
                                                    "submission": hidden(SUBMISSION, text)},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_forged_or_expired_token_is_refused(client, portal_keys) -> None:
    response = client.post("/followup/reply", data={"token": "00" * 60, "body": "hello"},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_unknown_and_malformed_receipts_get_the_same_answer(client, portal_keys, monkeypatch
                                                           ) -> None:
    real_receipt = receipt_of(submit(client))
    calls = []
    real = crypto.derive_key
    monkeypatch.setattr(crypto, "derive_key", lambda *a: calls.append(1) or real(*a))
    near = real_receipt[:-1] + ("0" if real_receipt[-1] != "0" else "1")
    answers = [client.post("/followup", data={"receipt": r}) for r in (near, "nonsense", "")]
    assert {a.status_code for a in answers} == {404}
    bodies = {re.sub(r'name="csrf_token"[^>]*', "", a.get_data(as_text=True)) for a in answers}
    assert len(bodies) == 1
    assert len(calls) == 3  # one Argon2id each, whatever was typed


def test_csrf_is_enforced_with_a_clear_page(app_factory) -> None:
    app = app_factory(WTF_CSRF_ENABLED=True)
    browser = app.test_client()
    # The report view checks CSRF itself, to give the form back with what was typed in it.
    response = browser.post("/report", data={"narrative": "x"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "此表单已过期。您填写的内容都已保留，请核对后重新提交。" in page
    response = browser.post("/report?lang=en", data={"narrative": "x"})
    assert response.status_code == 400
    assert ("This form had expired. Everything you typed is kept: please check it and send it "
            "again.") in response.get_data(as_text=True)


def test_not_set_up_portal_says_so(client) -> None:
    response = submit(client)
    assert response.status_code == 503
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_unknown_page_is_a_friendly_404(client) -> None:
    response = client.get("/nowhere?lang=en")
    assert response.status_code == 404 and "does not exist" in response.get_data(as_text=True)


def test_the_home_page_is_kept_until_the_categories_change(app_factory) -> None:
    """The home page is the same for everyone: kept per language (portal/web/pagecache.py), it
    needs no database until the recheck time has passed, and then shows an edited category."""
    from sqlalchemy import event

    from auditlog.events import SYSTEM
    from portal.triage.categories import CategoryEdit, edit_category
    from portal.web.pagecache import page_cache

    app = app_factory(PUBLIC_PAGE_RECHECK_SECONDS=3600.0)
    client = app.test_client()
    first = client.get("/?lang=en").get_data(as_text=True)
    assert client.get("/?lang=ko").get_data(as_text=True) != first  # one page per language
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert client.get("/?lang=en").get_data(as_text=True) == first
    assert statements == []  # kept: not even the categories' version was asked
    with app.app_context():
        edit_category(db.session(), "P01", CategoryEdit(
            names={"zh": "新名称", "ko": "새 이름", "en": "A renamed category"},
            descriptions={}, usual_receiver=None), actor=SYSTEM)
        db.session.commit()
        page_cache().recheck = 0.0  # as when the recheck time has passed
    again = client.get("/?lang=en").get_data(as_text=True)
    assert "A renamed category" in again and "A renamed category" not in first
