"""When the receipt hash is busy (portal/intake/hashgate.py), a submission is answered 503 with
Retry-After before anything is stored, and the citizen keeps everything typed: the report form
comes back whole, the follow-up page keeps an unsent message, the API says so in JSON, the hotline
form stays filled in. Once the gate frees, the same form files exactly one tip.

The test holds the process's only hash slot itself; with no room to wait in line the request is
refused at once (one test waits its short turn, to pass through the line too)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from models import Attachment, AuditEvent, Message, Tip, TipIdentity, TipUpdate
from portal.intake import hashgate
from portal.web.extensions import db
from tests.functional.test_citizen import SUBMISSION, hidden, receipt_of
from tests.helpers import jpeg_with_metadata

RETRY = 45
STORY = {"narrative": "black water from the paper mill pipe at night",
         "place": "Gaya bridge, east bank", "occurred": "every night after 11",
         "responsible": "Shitou Paper Co.", "officials": "the township head",
         "county": "tumen", "category": "P04"}
BUSY = {
    "en": "The portal is very busy right now. Nothing was stored. Everything you typed is kept",
    "zh": "平台此刻非常繁忙，本次没有保存任何内容。您填写的内容都已保留",
    "ko": "플랫폼이 지금 매우 바쁩니다. 아무것도 저장되지 않았습니다.",
}


@pytest.fixture
def app(app_factory) -> Iterator[Flask]:
    application = app_factory(RECEIPT_HASH_SLOTS=1, RECEIPT_HASH_QUEUE=0,
                              RECEIPT_HASH_WAIT=0.05, RETRY_AFTER_SECONDS=RETRY)
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def held(app: Flask) -> Iterator[hashgate.Gate]:
    """The process's one hash slot, taken by the test (as a long hash would); given back after."""
    gate = hashgate.process_gate()
    gate.acquire()
    try:
        yield gate
    finally:
        if gate.running:
            gate.release()


def counts() -> dict[str, int]:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Tip, Attachment, TipIdentity, TipUpdate, Message, AuditEvent)}


def report_data(client, lang: str) -> dict:
    token = hidden(SUBMISSION, client.get(f"/report?lang={lang}"))
    return {**STORY, "real_name": "y", "name": "Kim Chol", "phone": "13912345678",
            "submission": token}


def with_photo(data: dict) -> dict:
    return {**data, "attachments": [(io.BytesIO(jpeg_with_metadata()), "pipe at night.jpg")]}


@pytest.mark.parametrize("lang", ["zh", "ko", "en"])
def test_a_busy_report_is_refused_whole_and_the_form_comes_back_filled(client, portal_keys,
                                                                     held, lang) -> None:
    data = report_data(client, lang)
    before = counts()
    response = client.post(f"/report?lang={lang}", data=with_photo(data),
                           content_type="multipart/form-data")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY)
    page = response.get_data(as_text=True)
    assert BUSY[lang] in page
    for kept in ("black water from the paper mill pipe at night", "Gaya bridge, east bank",
                 "every night after 11", "Shitou Paper Co.", "the township head", "Kim Chol",
                 "13912345678"):
        assert kept in page
    assert 'value="tumen" selected' in page or 'selected value="tumen"' in page
    assert 'value="P04" aria-describedby="category-P04-desc" checked' in page
    assert "pipe at night.jpg" in page  # named, to be chosen again
    assert hidden(SUBMISSION, page) == data["submission"]  # the same one-time form
    assert counts() == before


def test_once_the_gate_frees_the_same_form_files_exactly_one_tip(client, portal_keys,
                                                                held) -> None:
    data = report_data(client, "en")
    before = counts()
    assert client.post("/report?lang=en", data=with_photo(data),
                       content_type="multipart/form-data").status_code == 503
    held.release()
    filed = client.post("/report?lang=en", data=with_photo(data),
                        content_type="multipart/form-data")
    assert filed.status_code == 201
    receipt_of(filed)
    again = client.post("/report?lang=en", data=with_photo(data),
                        content_type="multipart/form-data")
    assert again.status_code == 200  # a repeat of the form: nothing new
    after = counts()
    assert after["Tip"] == before["Tip"] + 1
    assert after["Attachment"] == before["Attachment"] + 1
    assert after["TipIdentity"] == before["TipIdentity"] + 1


def test_a_request_that_waits_its_turn_in_vain_stores_nothing(app_factory) -> None:
    """Room in the line this time: the request waits (giving back its idle database
    connection), runs out of time, and leaves nothing behind."""
    application = app_factory(RECEIPT_HASH_SLOTS=1, RECEIPT_HASH_QUEUE=4,
                              RECEIPT_HASH_WAIT=0.05, RETRY_AFTER_SECONDS=RETRY)
    gate = hashgate.process_gate()  # the new app sized a new gate: hold it too
    gate.acquire()
    try:
        with application.app_context():
            from portal.operations.setup import complete_setup
            from tests.conftest import ADMIN_PASSWORD, COSTS

            complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
            client = application.test_client()
            before = counts()
            response = client.post("/report?lang=en", data=with_photo(report_data(client, "en")),
                                   content_type="multipart/form-data")
            assert response.status_code == 503
            assert BUSY["en"] in response.get_data(as_text=True)
            assert counts() == before
            assert (gate.running, gate.waiting) == (1, 0)
            db.session.remove()
    finally:
        gate.release()


def filed_receipt(client) -> str:
    response = client.post("/report?lang=en", data=report_data(client, "en"),
                           content_type="multipart/form-data")
    assert response.status_code == 201
    return receipt_of(response)


@pytest.mark.parametrize("lang", ["zh", "ko", "en"])
def test_a_busy_follow_up_keeps_the_unsent_message(client, portal_keys, lang) -> None:
    receipt = filed_receipt(client)
    gate = hashgate.process_gate()
    gate.acquire()
    try:
        response = client.post(f"/followup?lang={lang}", data={
            "receipt": receipt, "draft": "The pipe ran again last night."})
    finally:
        gate.release()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY)
    page = response.get_data(as_text=True)
    assert "The pipe ran again last night." in page
    assert receipt not in page  # the receipt is never written back into a page
    words = {"en": "very busy", "zh": "非常繁忙", "ko": "매우 바빠서"}[lang]
    assert words in page


@pytest.mark.parametrize("lang", ["zh", "ko", "en"])
def test_the_api_answers_503_json_with_retry_after(client, portal_keys, held, lang) -> None:
    before = counts()
    response = client.post(f"/api/v1/tips?lang={lang}",
                           data=json.dumps({"narrative": "smoke", "county": "yanji"}),
                           content_type="application/json", headers={"Accept-Language": lang})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY)
    body = response.get_json()
    assert body["status"] == 503
    words = {"en": "very busy", "zh": "非常繁忙", "ko": "매우 바빠서"}[lang]
    assert words in body["error"]
    for path, payload in (("/api/v1/followup", {"receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"}),
                          ("/api/v1/followup/messages",
                           {"receipt": "ABCD-EFGH-JKMN-PQRS-TVWX", "body": "more"})):
        answer = client.post(f"{path}?lang={lang}", data=json.dumps(payload),
                             content_type="application/json")
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == str(RETRY)
        assert answer.get_json()["status"] == 503
    assert counts() == before


def test_the_hotline_form_stays_filled_in(app, staff, held) -> None:
    uid = staff.create("operator", "zhou")
    browser = app.test_client()
    staff.login(browser, "operator", uid)  # the sign-in hash is not the receipt hash
    page = browser.get("/staff/hotline?lang=en").get_data(as_text=True)
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
    before = counts()
    response = browser.post("/staff/hotline?lang=en", data={
        "channel": "hotline", "category": "Z02", "county": "antu",
        "narrative": "straw burning by the Antu road", "name": "Pak", "phone": "13800001111",
        "language": "ko", "submission": token})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY)
    page = response.get_data(as_text=True)
    assert BUSY["en"] in page
    for kept in ("straw burning by the Antu road", "Pak", "13800001111", token):
        assert kept in page
    assert counts() == before


def test_the_api_document_lists_the_busy_answer(client) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/tips", "/followup", "/followup/messages"):
        busy = paths[path]["post"]["responses"]["503"]
        assert "Retry-After" in busy["headers"], path


def test_busy_refusals_do_not_spend_the_citizens_budget(app_factory) -> None:
    """The page asks the citizen to send the same form again: the refusals before must not use
    up the tips they may file (nor the follow-ups), or doing as told would end in 429."""
    application = app_factory(RECEIPT_HASH_SLOTS=1, RECEIPT_HASH_QUEUE=0, RECEIPT_HASH_WAIT=0.05,
                              RATELIMIT_ENABLED=True, SUBMIT_RATE_LIMIT="2 per hour",
                              FOLLOWUP_RATE_LIMIT="2 per hour")
    with application.app_context():
        from portal.operations.setup import complete_setup
        from tests.conftest import ADMIN_PASSWORD, COSTS

        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
        client = application.test_client()
        data = report_data(client, "en")
        gate = hashgate.process_gate()
        gate.acquire()
        try:
            for _ in range(4):
                assert client.post("/report?lang=en", data=data).status_code == 503
                assert client.post("/followup?lang=en", data={
                    "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX"}).status_code == 503
        finally:
            gate.release()
        filed = client.post("/report?lang=en", data=data)
        assert filed.status_code == 201
        assert client.post("/followup?lang=en",
                           data={"receipt": receipt_of(filed)}).status_code == 200
        # The budget itself still holds: a second and a third report.
        assert client.post("/report?lang=en", data=report_data(client, "en")).status_code == 201
        assert client.post("/report?lang=en", data=report_data(client, "en")).status_code == 429
        db.session.remove()
