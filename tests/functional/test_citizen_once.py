"""Refresh never repeats an action on the citizen side, and the pages after a POST behave:
one-time report and reply tokens, the receipt page and the status page in another language, the
reporter's status from the latest event, "what I sent" in words, error summaries that link."""

from __future__ import annotations

import base64
import io
import logging
import re
from datetime import timedelta

from sqlalchemy import func, select

from models import Message, Tip, TipUpdate
from portal.intake import filing, followup, receipts
from portal.web.extensions import db
from tests.functional.test_citizen import HANDLE, SUBMISSION, form_token, hidden, receipt_of, submit
from tests.helpers import jpeg_with_metadata

STORY = {"narrative": "oil in the Gaya river at night", "place": "Gaya bridge",
         "county": "tumen", "category": "P04"}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def status_page(client, receipt: str, lang: str = "en"):
    page = client.post(f"/followup?lang={lang}", data={"receipt": receipt})
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    return page.get_data(as_text=True)


def test_the_same_report_posted_twice_files_one_tip_and_shows_the_same_receipt(client,
                                                                              portal_keys):
    data = {**STORY, "submission": form_token(client)}
    first = client.post("/report?lang=en", data=data, content_type="multipart/form-data")
    assert first.status_code == 201
    again = client.post("/report?lang=en", data=data, content_type="multipart/form-data")
    assert again.status_code == 200
    assert receipt_of(again) == receipt_of(first)
    assert "already been sent" in again.get_data(as_text=True)
    assert count(Tip) == 1
    # The same receipt opens the one tip.
    assert "Gaya bridge" in status_page(client, receipt_of(first))


def test_a_double_click_racing_past_the_first_check_still_files_once(client, portal_keys,
                                                                    monkeypatch):
    data = {**STORY, "submission": form_token(client)}
    first = client.post("/report", data=data, content_type="multipart/form-data")
    real = filing.filed_before
    calls = []

    def late(session, once, now=None):  # the second POST looked before the first committed
        calls.append(1)
        return None if len(calls) == 1 else real(session, once, now)

    monkeypatch.setattr(filing, "filed_before", late)
    again = client.post("/report", data=data, content_type="multipart/form-data")
    assert again.status_code == 200 and receipt_of(again) == receipt_of(first)
    assert len(calls) == 2 and count(Tip) == 1


def test_a_repeat_after_the_visit_files_nothing_and_no_longer_shows_the_receipt(client,
                                                                               portal_keys):
    data = {**STORY, "submission": form_token(client)}
    receipt = receipt_of(client.post("/report", data=data, content_type="multipart/form-data"))
    tip = db.session.scalars(select(Tip)).one()
    tip.received_at -= timedelta(seconds=receipts.RECEIPT_REPLAY_SECONDS + 60)
    db.session.commit()
    late = client.post("/report?lang=en", data=data, content_type="multipart/form-data")
    page = late.get_data(as_text=True)
    assert late.status_code == 200 and "already been sent" in page
    assert receipt not in page and receipt.replace("-", "") not in page
    assert count(Tip) == 1


def test_a_form_without_a_valid_token_is_kept_and_asked_again(client, portal_keys):
    token = form_token(client)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[0] ^= 1  # a token the server did not make
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for sent in ({}, {"submission": forged}, {"submission": "short"}):
        response = client.post("/report?lang=en", data={**STORY, **sent},
                               content_type="multipart/form-data")
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "send it again" in page and "Gaya bridge" in page and "oil in the Gaya" in page
        fresh = hidden(SUBMISSION, page)
        assert fresh not in (token, forged)
    assert count(Tip) == 0
    resent = client.post("/report", data={**STORY, "submission": fresh},
                         content_type="multipart/form-data")
    assert resent.status_code == 201 and count(Tip) == 1


def test_the_token_survives_an_error_and_then_files_once(client, portal_keys):
    token = form_token(client)
    wrong = client.post("/report", data={**STORY, "narrative": "", "submission": token},
                        content_type="multipart/form-data")
    assert wrong.status_code == 400 and hidden(SUBMISSION, wrong) == token
    data = {**STORY, "submission": token}
    first = client.post("/report", data=data, content_type="multipart/form-data")
    again = client.post("/report", data=data, content_type="multipart/form-data")
    assert (first.status_code, again.status_code) == (201, 200)
    assert receipt_of(first) == receipt_of(again) and count(Tip) == 1


def test_receipt_is_derived_from_the_token_and_neither_is_stored(app, client, portal_keys):
    token = form_token(client)
    receipt = receipt_of(client.post("/report", data={**STORY, "submission": token},
                                     content_type="multipart/form-data"))
    secrets_ = receipts.SubmissionSecrets.from_secret_key(app.config["SECRET_KEY"])
    submission = receipts.form_submission(secrets_, "report", token)
    assert submission is not None and submission.receipt(secrets_) == receipt
    tip = db.session.scalars(select(Tip)).one()
    assert tip.submission_hash == submission.index(secrets_)
    # The lookup value is still the slow hash, the only stored form of the receipt.
    from portal.security.keys import install_secret

    keys = receipts.derive_keys(receipt, install_secret(db.session, "receipt_salt"),
                                app.config["RECEIPT_ARGON2"])
    assert tip.receipt_lookup == keys.lookup
    from tests.functional.test_protection import database_bytes

    haystack = database_bytes(app)
    for secret in (receipt.encode(), receipt.replace("-", "").encode(), token.encode(),
                   submission.value):
        assert secret not in haystack
    # Another secret key derives another receipt from the same token.
    other = receipts.SubmissionSecrets.from_secret_key("another key")
    assert receipts.form_submission(other, "report", token) is None
    assert receipts.Submission("report", submission.value).receipt(other) != receipt


def test_receipt_page_changes_language_and_keeps_the_receipt(client, portal_keys, caplog):
    caplog.set_level(logging.DEBUG)
    first = client.post("/report?lang=en", data={**STORY, "submission": form_token(client)},
                        content_type="multipart/form-data")
    receipt = receipt_of(first)
    page = first.get_data(as_text=True)
    assert 'href="/report?lang=' not in page  # no link that would leave the receipt behind
    buttons = re.findall(r'<form method="post" action="/report/receipt">', page)
    assert len(buttons) == 3
    submission = hidden(re.compile(r'name="submission" value="([^"]+)"'), page)
    korean = client.post("/report/receipt", data={"submission": submission, "lang": "ko"})
    assert korean.status_code == 200
    assert '<html lang="ko">' in korean.get_data(as_text=True)
    assert receipt_of(korean) == receipt
    assert receipt not in korean.headers.get("Set-Cookie", "")
    assert receipt not in caplog.text and receipt.replace("-", "") not in caplog.text
    assert count(Tip) == 1
    # A token that filed nothing leads back to an empty form.
    assert client.post("/report/receipt", data={"submission": form_token(client),
                                                "lang": "en"}).status_code == 302


def test_a_reply_posted_twice_is_added_once(client, portal_keys):
    receipt = receipt_of(submit(client))
    page = status_page(client, receipt)
    data = {"token": hidden(HANDLE, page), "submission": hidden(SUBMISSION, page),
            "body": "They dump again on Sundays."}
    first = client.post("/followup/reply?lang=en", data=data,
                        content_type="multipart/form-data")
    again = client.post("/followup/reply?lang=en", data=data,
                        content_type="multipart/form-data")
    assert first.status_code == again.status_code == 200
    for response in (first, again):
        text = response.get_data(as_text=True)
        assert "Your message has been sent" in text
        assert text.count("They dump again on Sundays.") == 1
        assert hidden(SUBMISSION, text) != data["submission"]  # the next message is new
    assert count(Message) == 1
    # The officers' side reads the same single message.
    assert db.session.scalars(select(Message)).one().author == "reporter"
    # A second, new message from the next form is added.
    text = again.get_data(as_text=True)
    client.post("/followup/reply", data={"token": hidden(HANDLE, text),
                                         "submission": hidden(SUBMISSION, text),
                                         "body": "And on Mondays."},
                content_type="multipart/form-data")
    assert count(Message) == 2


def test_a_reply_after_the_visit_expired_keeps_the_message(client, portal_keys):
    receipt = receipt_of(submit(client))
    expired = client.post("/followup/reply?lang=en", content_type="multipart/form-data", data={
        "token": "00" * 60, "submission": "x", "body": "Trucks at 3 a.m. <b>again</b>",
        "attachments": [(io.BytesIO(jpeg_with_metadata()), "truck.jpg")]})
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400 and count(Message) == 0
    assert "has not been sent yet" in page and "truck.jpg" in page
    draft = hidden(re.compile(r'name="draft" type="hidden" value="([^"]*)"'), page)
    assert "<b>" not in draft  # escaped in the page
    back = client.post("/followup?lang=en", data={"receipt": receipt,
                                                  "draft": "Trucks at 3 a.m. <b>again</b>"})
    text = back.get_data(as_text=True)
    assert re.search(r"<textarea[^>]*>\s*Trucks at 3 a\.m\. &lt;b&gt;again&lt;/b&gt;</textarea>",
                     text)
    assert count(Message) == 0


def test_status_page_changes_language_and_stays(client, portal_keys, caplog):
    caplog.set_level(logging.DEBUG)
    receipt = receipt_of(submit(client, county="hunchun"))
    page = status_page(client, receipt)
    assert 'href="/followup?lang=' not in page
    assert len(re.findall(r'form="reply-form" formaction="/followup/status"', page)) == 3
    handle, once = hidden(HANDLE, page), hidden(SUBMISSION, page)
    # The buttons post the reply form: the handle, and a message being written.
    korean = client.post("/followup/status", data={
        "token": handle, "submission": once, "body": "half a message", "lang": "ko",
        "attachments": "pond.jpg"})
    text = korean.get_data(as_text=True)
    assert korean.status_code == 200 and '<html lang="ko">' in text
    assert 'action="/followup/reply"' in text  # still the status page
    assert re.search(r"<textarea[^>]*>\s*half a message</textarea>", text)
    assert hidden(SUBMISSION, text) == once and "pond.jpg" in text
    assert count(Message) == 0
    assert "Location" not in korean.headers
    for response in (korean,):
        cookie = response.headers.get("Set-Cookie", "")
        assert receipt not in cookie and receipt.replace("-", "") not in cookie
        assert handle not in cookie
    assert receipt not in caplog.text and handle not in caplog.text
    # The language is remembered for the visit.
    assert '<html lang="ko">' in client.get("/").get_data(as_text=True)
    # A stale handle asks for the receipt again.
    stale = client.post("/followup/status", data={"token": "00" * 60, "lang": "en"})
    assert stale.status_code == 400 and 'name="receipt"' in stale.get_data(as_text=True)


def test_status_agrees_with_the_latest_event(client, portal_keys):
    receipt = receipt_of(submit(client))
    tip = db.session.scalars(select(Tip)).one()
    later = tip.received_at + timedelta(days=2)
    # The officers' working state and the reporter's progress can differ; the reporter's page
    # shows one thing: the latest progress entry.
    db.session.add(TipUpdate(tip_id=tip.id, status="accepted", at=later))
    db.session.add(TipUpdate(tip_id=tip.id, status="extended", at=later + timedelta(days=3)))
    tip.status = "verifying"
    db.session.commit()
    page = status_page(client, receipt)
    now = re.search(r'<dd class="status-now">([^<]*)</dd>', page).group(1)
    entries = re.findall(r"</time> — ([^<]*)", page)
    assert now == entries[-1] == "The handling period was extended"
    view_status = client.post("/api/v1/followup", json={"receipt": receipt}).get_json()["status"]
    assert view_status == "extended"


def test_current_status_is_the_latest_by_time_then_order():
    from datetime import datetime

    at = datetime(2026, 11, 1)
    updates = [followup.Update("received", at, None),
               followup.Update("closed", at + timedelta(days=9), None),
               followup.Update("accepted", at + timedelta(days=1), None),
               followup.Update("verifying", at + timedelta(days=9), None)]
    assert followup.current_status(updates, "received") == "verifying"
    assert followup.current_status([], "accepted") == "accepted"


def test_what_i_sent_names_category_and_county(client, portal_keys):
    page = status_page(client, receipt_of(submit(client, category="P04", county="tumen")))
    sent = page.split("What you reported", 1)[1]
    assert "Concealed discharge" in sent or "concealed discharge" in sent.lower()
    assert re.search(r"<dt>County or city</dt><dd>Tumen</dd>", sent)
    assert "P04" not in sent and ">tumen<" not in sent
    unsure = status_page(client, receipt_of(submit(client, county="unknown")))
    sent = unsure.split("What you reported", 1)[1]
    assert re.search(r"<dt>Kind of problem</dt><dd>Not sure</dd>", sent)
    assert re.search(r"<dt>County or city</dt><dd>I don&#39;t know</dd>", sent) or \
        re.search(r"<dt>County or city</dt><dd>I don't know</dd>", sent)
    assert "Handled by</dt><dd>Prefecture Ecological Environment Bureau</dd>" in unsure
    for code_word in ("州本级", "Prefecture level", ">zhou<"):
        assert code_word not in unsure


def test_error_summary_links_each_field_in_the_page_language(client, portal_keys):
    response = submit(client, "/report?lang=en", narrative="", real_name="y", name="Kim",
                      phone="call me", category="P04",
                      attachments=[(io.BytesIO(jpeg_with_metadata()), "river.jpg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    summary = page.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#narrative">What happened?: This field is required.</a>' in summary
    assert '<a href="#phone">Phone: Please enter a phone number using digits only.</a>' in summary
    for anchor in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{anchor}"' in page
    assert "attach these files again" in summary and "river.jpg" in summary
    korean = submit(client, "/report?lang=ko", narrative="")
    summary = korean.get_data(as_text=True).split('class="error-summary"', 1)[1]
    assert '<a href="#narrative">' in summary and "What happened?" not in summary


def test_reply_errors_are_summarised_with_links(client, portal_keys):
    page = status_page(client, receipt_of(submit(client)))
    response = client.post("/followup/reply?lang=en", content_type="multipart/form-data", data={
        "token": hidden(HANDLE, page), "submission": hidden(SUBMISSION, page), "body": " "})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<a href="#body">Your message to the officers: This field is required.</a>' in text
    assert hidden(SUBMISSION, text) == hidden(SUBMISSION, page)


def test_an_expired_csrf_token_keeps_what_was_typed(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from portal.operations.setup import complete_setup
        from tests.conftest import COSTS

        complete_setup(db.session, "admin", "correct horse battery", **COSTS)
        client = app.test_client()
        token = form_token(client)
        response = client.post("/report?lang=en", content_type="multipart/form-data", data={
            **STORY, "submission": token, "csrf_token": "expired"})
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and "had expired" in page
        assert "Gaya bridge" in page and hidden(SUBMISSION, page) == token
        assert count(Tip) == 0
        csrf = hidden(re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"'), page)
        filed = client.post("/report", content_type="multipart/form-data", data={
            **STORY, "submission": token, "csrf_token": csrf})
        assert filed.status_code == 201 and count(Tip) == 1


def test_api_idempotency_key(client, portal_keys):
    key = "5f0c3a1e-9b7d-4c2a-8e61-0d4b2f7a9c13"
    body = {"narrative": "smoke from the boiler house"}
    first = client.post("/api/v1/tips", json=body, headers={"Idempotency-Key": key})
    again = client.post("/api/v1/tips", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["receipt"] == again.get_json()["receipt"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(Tip) == 1
    other = client.post("/api/v1/tips", json=body,
                        headers={"Idempotency-Key": key.replace("5f", "6f")})
    assert other.status_code == 201 and other.get_json()["receipt"] != first.get_json()["receipt"]
    weak = client.post("/api/v1/tips", json=body, headers={"Idempotency-Key": "1"})
    assert weak.status_code == 400 and "Idempotency-Key" in weak.get_json()["errors"]
    assert client.post("/api/v1/tips", json=body).status_code == 201
    assert count(Tip) == 3
    tip = db.session.scalars(select(Tip).order_by(Tip.id)).first()
    tip.received_at -= timedelta(seconds=receipts.RECEIPT_REPLAY_SECONDS + 60)
    db.session.commit()
    late = client.post("/api/v1/tips", json=body, headers={"Idempotency-Key": key})
    assert late.status_code == 409 and "receipt" not in late.get_json()
    # A web form's token is no Idempotency-Key for the same receipt (separate namespaces).
    token = form_token(client)
    web = client.post("/report", data={**STORY, "submission": token},
                      content_type="multipart/form-data")
    api = client.post("/api/v1/tips", json=body, headers={"Idempotency-Key": token})
    assert api.status_code == 201 and api.get_json()["receipt"] != receipt_of(web)


def test_a_used_form_sent_with_other_content_is_kept_and_not_lost(client, portal_keys):
    """A form restored from the browser's history after filing, then edited: not silently
    swallowed as a repeat, nor filed twice under one token."""
    token = form_token(client)
    first = client.post("/report", data={**STORY, "submission": token},
                        content_type="multipart/form-data")
    assert first.status_code == 201
    other = client.post("/report?lang=en", content_type="multipart/form-data", data={
        **STORY, "narrative": "a second, different problem", "submission": token,
        "attachments": [(io.BytesIO(jpeg_with_metadata()), "second.jpg")]})
    page = other.get_data(as_text=True)
    assert other.status_code == 400 and "already been used" in page
    assert "a second, different problem" in page and "second.jpg" in page
    assert receipt_of(first) not in page
    fresh = hidden(SUBMISSION, page)
    assert fresh != token and count(Tip) == 1
    second = client.post("/report", content_type="multipart/form-data", data={
        **STORY, "narrative": "a second, different problem", "submission": fresh})
    assert second.status_code == 201 and receipt_of(second) != receipt_of(first)
    assert count(Tip) == 2


def test_api_key_reused_with_other_content_is_refused(client, portal_keys):
    key = "0123456789abcdef0123456789abcdef"
    assert client.post("/api/v1/tips", json={"narrative": "one"},
                       headers={"Idempotency-Key": key}).status_code == 201
    reused = client.post("/api/v1/tips", json={"narrative": "two"},
                         headers={"Idempotency-Key": key})
    assert reused.status_code == 422 and "receipt" not in reused.get_json()
    assert count(Tip) == 1


def test_an_unknown_receipt_is_summarised_with_a_link_to_the_field(client, portal_keys):
    page = client.post("/followup?lang=en", data={"receipt": "nonsense"}).get_data(as_text=True)
    assert '<a href="#receipt">Your receipt: No report matches this receipt.' in page
    assert 'id="receipt"' in page


def test_report_form_changes_language_keeping_what_was_typed(client, portal_keys):
    page = client.get("/report?lang=en").get_data(as_text=True)
    token = hidden(SUBMISSION, page)
    assert 'form="report-form" formaction="/report/language"' in page
    assert 'href="/report?lang=' not in page
    switched = client.post("/report/language", data={
        **STORY, "real_name": "y", "name": "Kim", "submission": token, "lang": "ko",
        "attachments": "river.jpg"})
    text = switched.get_data(as_text=True)
    assert switched.status_code == 200 and '<html lang="ko">' in text
    for kept in ("Gaya bridge", "oil in the Gaya river at night", 'value="Kim"'):
        assert kept in text
    assert hidden(SUBMISSION, text) == token and "river.jpg" in text
    # Switched again, from the form as drawn now (its file input empty, as a browser leaves it
    # after a form comes back): it still names the file to attach again.
    again = client.post("/report/language", data={
        **STORY, "submission": token, "lang": "ko", "attachments": "",
        "files_again": hidden_values("files_again", text)})
    assert "river.jpg" in again.get_data(as_text=True)
    assert count(Tip) == 0
    filed = client.post("/report", data={**STORY, "submission": token},
                        content_type="multipart/form-data")
    assert filed.status_code == 201 and '<html lang="ko">' in filed.get_data(as_text=True)


def test_api_message_with_an_idempotency_key_is_added_once(client, portal_keys):
    receipt = client.post("/api/v1/tips", json={"narrative": "slag"}).get_json()["receipt"]
    key = "fedcba9876543210fedcba9876543210"
    body = {"receipt": receipt, "body": "more trucks tonight"}
    first = client.post("/api/v1/followup/messages", json=body, headers={"Idempotency-Key": key})
    again = client.post("/api/v1/followup/messages", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["sent_at"] == again.get_json()["sent_at"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(Message) == 1
    # The same key as a tip's Idempotency-Key files its own tip: the namespaces are separate.
    assert client.post("/api/v1/tips", json={"narrative": "x"},
                       headers={"Idempotency-Key": key}).status_code == 201


def test_an_unsent_message_survives_the_follow_up_pages_language_buttons(client) -> None:
    """The follow-up form holding an unsent message (the visit expired, or the portal was busy):
    its language buttons post the message along instead of following a link that would drop it;
    the receipt typed meanwhile is not written back."""
    expired = client.post("/followup/status", data={"token": "00" * 60, "lang": "en",
                                                    "body": "The pipe ran again last night."})
    page = expired.get_data(as_text=True)
    assert 'form="followup-form" formaction="/followup/language"' in page
    switched = client.post("/followup/language", data={
        "lang": "ko", "draft": "The pipe ran again last night.",
        "receipt": "7Q3K-9MZP-2XW4-HJ8R-T5VN"})
    text = switched.get_data(as_text=True)
    assert switched.status_code == 200 and 'lang="ko"' in text
    assert "The pipe ran again last night." in text
    assert "7Q3K-9MZP-2XW4-HJ8R-T5VN" not in text
    # Without a message the buttons stay plain links.
    assert 'formaction="/followup/language"' not in client.get("/followup").get_data(as_text=True)


def hidden_values(name: str, page: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)


def test_api_message_key_of_another_tip_is_refused_and_sends_nothing(client, portal_keys):
    """One Idempotency-Key stands for one message: sent with a message to a second tip it is a
    422 and nothing is stored (it was a 500 on PostgreSQL: the key is unique across tips)."""
    key = "7a1c3a1e-9b7d-4c2a-8e61-0d4b2f7a9c13"
    first, second = (client.post("/api/v1/tips", json={"narrative": text}).get_json()["receipt"]
                     for text in ("tyres burnt by the river", "slag dumped at night"))
    sent = client.post("/api/v1/followup/messages", json={"receipt": first, "body": "more"},
                       headers={"Idempotency-Key": key})
    assert sent.status_code == 201
    reused = client.post("/api/v1/followup/messages", json={"receipt": second, "body": "other"},
                         headers={"Idempotency-Key": key})
    assert reused.status_code == 422
    assert reused.get_json() == {"error": "idempotency_key_reused", "status": 422}
    assert count(Message) == 1
    again = client.post("/api/v1/followup/messages", json={"receipt": first, "body": "more"},
                        headers={"Idempotency-Key": key})
    assert again.status_code == 200 and count(Message) == 1
