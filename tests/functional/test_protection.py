"""Reporter protection, each promise with its test: nothing readable at rest, nothing
identifying in the database, the logs or the rate-limit store; strict headers; the reference
`age` tool opens what a unit's recovery key should open."""

from __future__ import annotations

import base64
import io
import logging
import re
import subprocess
import uuid
from pathlib import Path

import pikepdf
import pytest
from sqlalchemy import select, text

from models import Attachment, Tip
from portal.intake.filing import _ID_CHECK, _ID_WEIGHTS
from portal.web.extensions import db
from tests.helpers import attachment_ciphertext, jpeg_with_metadata
from tests.unit.test_crypto import require_age

CLIENT_IP = "203.0.113.77"
USER_AGENT = "CanaryAgent/9.9 (QingliuTest)"
RECEIPT = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")


def id_number(seed: str) -> str:
    body = "22240119" + seed[:9].rjust(9, "0")
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def forms_of(canary: str) -> list[bytes]:
    """The canary as it could leak: raw, UTF-16, base64 at every alignment, hex."""
    raw = canary.encode()
    forms = [raw, canary.encode("utf-16-le"), canary.encode("utf-16-be"), raw.hex().encode()]
    for pad in range(3):
        encoded = base64.b64encode(b"\x00" * pad + raw)
        forms.append(encoded[(pad * 4 + 2) // 3 + 1 : -2])
    return forms


def database_bytes(app) -> bytes:
    """Every value of every table, plus the SQLite file itself (free pages included)."""
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            for value in row:
                parts.append(value if isinstance(value, bytes) else str(value).encode())
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-journal"):
            path = Path(url[len("sqlite:///"):] + suffix)
            if path.exists():
                parts.append(path.read_bytes())
    return b"\n".join(parts)


def folder_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def pdf_with_text(words: str) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    page = pdf.pages[0]
    page.obj["/Resources"] = pikepdf.Dictionary(Font=pikepdf.Dictionary(
        F1=pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                              BaseFont=pikepdf.Name.Helvetica)))
    page.obj["/Contents"] = pdf.make_stream(f"BT /F1 12 Tf 72 720 Td ({words}) Tj ET".encode())
    pdf.docinfo["/Author"] = words
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def file_everything(client, canary: str) -> str:
    """A real-name tip with the canary in every field and file, then a reply; returns the
    receipt."""
    digits = str(uuid.uuid4().int)[:9]
    form = client.get("/report?lang=en", environ_base={"REMOTE_ADDR": CLIENT_IP},
                      headers={"User-Agent": USER_AGENT}).get_data(as_text=True)
    submission = re.search(r'name="submission" type="hidden" value="([^"]+)"', form).group(1)
    response = client.post("/report?lang=en", content_type="multipart/form-data", data={
        "submission": submission, "category": "P01", "county": "yanji",
        "place": f"place {canary}", "occurred": f"when {canary}",
        "responsible": f"responsible {canary}", "narrative": f"narrative {canary}",
        "officials": f"officials {canary}", "real_name": "y", "name": f"name {canary}",
        "phone": "139" + digits[:8], "id_number": id_number(digits),
        "address": f"address {canary}", "contact_ok": "y", "reward": "y",
        "attachments": [
            (io.BytesIO(f"notes {canary}".encode()), f"{canary}.txt"),
            (io.BytesIO(jpeg_with_metadata(make=canary, comment=canary.encode())),
             "photo.jpg"),
            (io.BytesIO(pdf_with_text(canary)), "report.pdf"),
        ]}, environ_base={"REMOTE_ADDR": CLIENT_IP}, headers={"User-Agent": USER_AGENT})
    assert response.status_code == 201, response.get_data(as_text=True)[:3000]
    receipt = RECEIPT.search(response.get_data(as_text=True)).group(1)
    page = client.post("/followup", data={"receipt": receipt},
                       environ_base={"REMOTE_ADDR": CLIENT_IP},
                       headers={"User-Agent": USER_AGENT}).get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([0-9a-f]+)"', page).group(1)
    once = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
    reply = client.post("/followup/reply", content_type="multipart/form-data", data={
        "token": token, "submission": once, "body": f"reply {canary}",
        "attachments": [(io.BytesIO(f"more {canary}".encode()), "more.txt")]},
        environ_base={"REMOTE_ADDR": CLIENT_IP}, headers={"User-Agent": USER_AGENT})
    assert reply.status_code == 200
    return receipt


def test_canary_is_nowhere_at_rest(app, client, portal_keys) -> None:
    canary = "QLCANARY" + uuid.uuid4().hex[:12].upper()
    digits_marker = "139"  # phones and ID numbers are checked through the identity decrypt below
    receipt = file_everything(client, canary)
    haystacks = {
        "database": database_bytes(app),
        "instance folder": folder_bytes(Path(app.instance_path)),
        "configuration": repr(sorted(app.config.items(), key=str)).encode(),
    }
    for where, haystack in haystacks.items():
        for form in forms_of(canary):
            assert form not in haystack, f"canary found in the {where} as {form!r}"
        for secret in (receipt, receipt.replace("-", ""), CLIENT_IP, USER_AGENT):
            assert secret.encode() not in haystack, f"{secret} found in the {where}"
    assert digits_marker  # the identity is encrypted: it decrypts only with a unit key
    tip = db.session.scalars(select(Tip)).one()
    from portal.security import crypto

    assert canary.encode() in crypto.open_sealed(tip.content, [portal_keys["yanji"]])


def test_recovery_key_opens_tip_and_file_with_the_age_tool(app, client, portal_keys,
                                                          tmp_path: Path) -> None:
    age = require_age()
    canary = "AGECLI" + uuid.uuid4().hex[:8]
    file_everything(client, canary)
    identity_file = tmp_path / "yanji.txt"
    identity_file.write_text(portal_keys["yanji"] + "\n")
    tip = db.session.scalars(select(Tip)).one()
    (tmp_path / "tip.age").write_bytes(tip.content)
    out = subprocess.run([age, "-d", "-i", str(identity_file), str(tmp_path / "tip.age")],
                         capture_output=True, check=True)
    assert f"narrative {canary}".encode() in out.stdout
    text_file = db.session.scalars(select(Attachment).order_by(Attachment.id)).first()
    (tmp_path / "file.age").write_bytes(attachment_ciphertext(db.session, text_file.id))
    out = subprocess.run([age, "-d", "-i", str(identity_file), str(tmp_path / "file.age")],
                         capture_output=True, check=True)
    assert out.stdout == f"notes {canary}".encode()
    wrong = tmp_path / "tumen.txt"
    wrong.write_text(portal_keys["tumen"] + "\n")
    refused = subprocess.run([age, "-d", "-i", str(wrong), str(tmp_path / "tip.age")],
                             capture_output=True)
    assert refused.returncode != 0


def test_no_address_agent_or_receipt_in_any_log(app, client, portal_keys, caplog,
                                                monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    receipt = file_everything(client, "LOGCANARY")
    # An unexpected failure is logged, still without the visitor's details.
    from portal.intake import followup

    def explode(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(followup, "reporter_view", explode)
    failed = client.post("/followup", data={"receipt": receipt},
                         environ_base={"REMOTE_ADDR": CLIENT_IP},
                         headers={"User-Agent": USER_AGENT})
    assert failed.status_code == 500
    assert "simulated failure" in caplog.text
    for secret in (CLIENT_IP, USER_AGENT, receipt, receipt.replace("-", ""), "LOGCANARY"):
        assert secret not in caplog.text


def test_rate_limit_store_holds_no_address(app, client, portal_keys) -> None:
    for _ in range(2):
        client.post("/followup", data={"receipt": "nothing"},
                    environ_base={"REMOTE_ADDR": CLIENT_IP})
    storage = app.extensions["rate_limiter"].storage
    if app.config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        keys = [k.decode() for k in storage.storage.scan_iter("*")]
    elif hasattr(storage, "keys"):  # the counts file (tests/functional/test_rate_limits.py)
        keys = storage.keys()
    else:
        keys = list(storage.storage.keys())
    mine = [k for k in keys if app.config["RATELIMIT_KEY_PREFIX"] in k]
    assert mine, keys
    assert not any(CLIENT_IP in k for k in keys)


def test_rate_limit_blocks_receipt_guessing(app_factory) -> None:
    app = app_factory(FOLLOWUP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [client.post("/followup", data={"receipt": f"AAAA-AAAA-AAAA-AAAA-AAA{i}"}).status_code
             for i in range(4)]
    assert codes == [404, 404, 404, 429]
    # A different address has its own allowance.
    other = client.post("/followup", data={"receipt": "x"}, environ_base={"REMOTE_ADDR": "1.2.3.4"})
    assert other.status_code == 404


def test_security_headers_on_citizen_pages(client, portal_keys) -> None:
    response = client.get("/report")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert b"<script" not in response.data


def test_pages_have_no_inline_script_or_style(client, portal_keys) -> None:
    for path in ("/", "/report", "/followup"):
        body = client.get(path).get_data(as_text=True)
        assert "<script" not in body and "<style" not in body and " style=" not in body
        assert " onclick=" not in body


def test_session_cookie_is_httponly_samesite_and_ends_with_the_visit(client, portal_keys
                                                                     ) -> None:
    response = client.get("/report?lang=ko")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie


def test_home_page_sets_no_cookie(client, portal_keys) -> None:
    assert "Set-Cookie" not in client.get("/").headers


def test_no_database_table_has_a_column_for_addresses_or_agents() -> None:
    columns = {c.name.lower() for t in db.metadata.sorted_tables for c in t.columns}
    for forbidden in ("ip", "ip_address", "remote_addr", "user_agent", "receipt", "useragent"):
        assert forbidden not in columns


@pytest.mark.parametrize("path", ["/", "/report", "/followup"])
def test_citizen_pages_work_without_javascript(client, portal_keys, path) -> None:
    body = client.get(path).get_data(as_text=True)
    assert "<script" not in body and "<noscript" not in body
    for form_action in re.findall(r'<form[^>]*action="([^"]+)"', body):
        assert form_action.startswith("/")


def test_postgres_and_redis_are_really_used_when_configured(app) -> None:
    import os

    if os.environ.get("TEST_DATABASE_URL"):
        assert db.engine.dialect.name == "postgresql"
        assert db.session.execute(text("select 1")).scalar() == 1
        assert app.config["RATELIMIT_STORAGE_URI"].startswith("redis://")
    else:
        assert db.engine.dialect.name == "sqlite"
