"""The documented limits hold: one budget for filing a tip whichever door (report page or API),
one for follow-up lookups, counted together by the workers of one server (the instance folder's
counts file) and by several servers (Redis); the counts never hold an address, nor a hash that a
copy of the disk could trace back to one."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import runpy
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from flask import Flask
from limits.storage import storage_from_string

import config
from portal.operations.setup import complete_setup
from portal.web import limitstore
from portal.web.extensions import db
from portal.web.ratelimit import SERVER_SECRET_ENV, SHARED_LIMITS, address_key
from tests.conftest import ADMIN_PASSWORD, COSTS, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
CLIENT_IP = "198.51.100.23"
TOO_MANY = "Too many attempts from your connection"
SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def counts_app(app_factory, tmp_path: Path, **overrides: object) -> Flask:
    """An app counting in a counts file of its own, as the embedded default does."""
    uri = limitstore.storage_uri(tmp_path / "counts" / "ratelimits.sqlite3")
    return app_factory(RATELIMIT_STORAGE_URI=uri, **overrides)


def page_tip(client, address: str = CLIENT_IP):
    form = client.get("/report").get_data(as_text=True)
    return client.post("/report", data={"narrative": "oil in the Buerhatong river",
                                        "submission": SUBMISSION.search(form).group(1)},
                       environ_base={"REMOTE_ADDR": address},
                       headers={"Accept-Language": "en"})


def api_tip(client, address: str = CLIENT_IP):
    return client.post("/api/v1/tips", json={"narrative": "oil in the Buerhatong river"},
                       environ_base={"REMOTE_ADDR": address}, headers={"Accept-Language": "en"})


# --- one budget whichever door ---------------------------------------------------------------

def test_the_report_page_and_the_api_spend_one_budget_for_filing(app_factory) -> None:
    app = app_factory(SUBMIT_RATE_LIMIT="4 per hour")
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    client = app.test_client()
    filed = [page_tip(client).status_code, api_tip(client).status_code,
             page_tip(client).status_code, api_tip(client).status_code]
    assert filed == [201, 201, 201, 201]
    page, api = page_tip(client), api_tip(client)
    assert page.status_code == 429 and TOO_MANY in page.get_data(as_text=True)
    assert api.status_code == 429 and TOO_MANY in api.get_json()["error"]
    # Another address has its own budget.
    assert api_tip(client, "192.0.2.9").status_code == 201


def test_follow_up_lookups_spend_one_budget_from_page_and_api(app_factory) -> None:
    app = app_factory(FOLLOWUP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    receipt = "AAAA-AAAA-AAAA-AAAA-AAAA"
    assert client.post("/followup", data={"receipt": receipt}).status_code == 404
    assert client.post("/api/v1/followup", json={"receipt": receipt}).status_code == 404
    assert client.post("/api/v1/followup/messages",
                       json={"receipt": receipt, "body": "hello"}).status_code == 404
    blocked = client.post("/followup", data={"receipt": receipt},
                          headers={"Accept-Language": "en"})
    assert blocked.status_code == 429 and TOO_MANY in blocked.get_data(as_text=True)
    assert client.post("/api/v1/followup", json={"receipt": receipt}).status_code == 429


# Anonymous POST routes that spend no budget, and why.
NOT_COUNTED = {
    "citizen.report_language": "shows the form again in another language; files nothing",
    "citizen.receipt_again": "shows a receipt again for a 128-bit form token; files nothing",
    "citizen.receipt_download": "echoes the receipt the visitor holds as a file",
    "citizen.followup_show": "the status page again for a sealed handle; looks nothing up",
    "citizen.followup_language": "the follow-up form again in another language; looks nothing up",
}
STAFF_API = ("/api/v1/staff", "/api/v1/liaison")


def test_every_citizen_door_that_files_or_looks_up_spends_a_budget(app) -> None:
    counted = {endpoint for _, endpoints in SHARED_LIMITS.values() for endpoint in endpoints}
    doors = {rule.endpoint for rule in app.url_map.iter_rules()
             if "POST" in (rule.methods or ()) and rule.endpoint.startswith(("citizen.", "api."))
             and not rule.rule.startswith(STAFF_API)}
    assert doors - counted == set(NOT_COUNTED), "a new citizen POST route: count it or say why"
    assert {"citizen.report_submit", "api.create_tip"} <= set(SHARED_LIMITS["file-tip"][1])


# --- the counts file of the embedded default -------------------------------------------------

def test_default_settings_count_in_a_file_of_the_instance_folder(tmp_path, monkeypatch) -> None:
    for name in ("REDIS_URL", "RATELIMIT_STORAGE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "x")
    settings = config.from_environment(tmp_path / "instance")
    counts_file = tmp_path / "instance" / "ratelimits.sqlite3"
    assert limitstore.storage_uri(counts_file) == settings.RATELIMIT_STORAGE_URI
    storage = storage_from_string(settings.RATELIMIT_STORAGE_URI)
    assert isinstance(storage, limitstore.SQLiteStorage) and storage.check()
    assert counts_file.stat().st_mode & 0o077 == 0
    # Several servers: Redis.
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    assert config.from_environment(tmp_path / "instance").RATELIMIT_STORAGE_URI.startswith(
        "redis://")


def test_two_workers_sharing_the_master_key_count_together(app_factory, tmp_path,
                                                          monkeypatch) -> None:
    """Two apps on one counts file, as two gunicorn workers: with the key gunicorn's master hands
    down, an address's filings add up (the real server: test_gunicorn_workers_… below)."""
    monkeypatch.setenv(SERVER_SECRET_ENV, os.urandom(32).hex())
    first = counts_app(app_factory, tmp_path, SUBMIT_RATE_LIMIT="3 per hour",
                       RATELIMIT_KEY_PREFIX="shared")
    second = counts_app(app_factory, tmp_path, SUBMIT_RATE_LIMIT="3 per hour",
                        RATELIMIT_KEY_PREFIX="shared")
    with first.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    assert api_tip(first.test_client()).status_code == 201
    assert api_tip(second.test_client()).status_code == 201
    assert page_tip(first.test_client()).status_code == 201
    assert api_tip(second.test_client()).status_code == 429
    assert page_tip(first.test_client()).status_code == 429


def test_the_counts_file_holds_no_address_nor_a_hash_a_copy_could_reverse(app_factory,
                                                                          tmp_path) -> None:
    app = counts_app(app_factory, tmp_path)
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    client = app.test_client()
    assert api_tip(client).status_code == 201
    assert page_tip(client).status_code == 201
    client.post("/followup", data={"receipt": "nothing"}, environ_base={"REMOTE_ADDR": CLIENT_IP})
    storage = app.extensions["rate_limiter"].storage
    keys = storage.keys()
    assert len(keys) >= 4  # two windows for each of the two budgets spent
    # Each key carries the address only as HMAC-SHA256 under the running server's key …
    with app.test_request_context(environ_base={"REMOTE_ADDR": CLIENT_IP}):
        hashed = app.extensions["rate_limiter"]._key_func()
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)
    assert all(hashed in key for key in keys), keys
    assert {key.split("/")[3] for key in keys} == {"file-tip", "followup"}
    # … which nothing on disk can recompute: not the SECRET_KEY, not a plain hash.
    stored = b"".join(path.read_bytes() for path in storage.path.parent.iterdir())
    packed = ipaddress.ip_address(CLIENT_IP).packed
    guesses = [CLIENT_IP.encode(), CLIENT_IP.encode("utf-16-le"), packed,
               address_key(app.config["SECRET_KEY"], CLIENT_IP).encode(),
               hashlib.sha256(CLIENT_IP.encode()).hexdigest().encode(),
               hashlib.sha256(CLIENT_IP.encode()).digest()]
    assert hashed.encode() in stored  # the check below can see what is there
    for guess in guesses:
        assert guess not in stored


def test_counts_out_of_reach_fall_back_to_memory_never_to_a_500(app_factory, tmp_path,
                                                                 monkeypatch) -> None:
    app = counts_app(app_factory, tmp_path, SUBMIT_RATE_LIMIT="2 per hour")
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    storage = app.extensions["rate_limiter"].storage

    def locked(*args: object, **kwargs: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(storage, "incr", locked)
    monkeypatch.setattr(storage, "get", locked)
    monkeypatch.setattr(storage, "check", lambda: False)
    client = app.test_client()
    assert [api_tip(client).status_code for _ in range(3)] == [201, 201, 429]


def test_counts_end_with_their_window(tmp_path, monkeypatch) -> None:
    storage = limitstore.SQLiteStorage(limitstore.storage_uri(tmp_path / "counts.sqlite3"))
    now = [1_000_000.0]
    monkeypatch.setattr(limitstore.time, "time", lambda: now[0])
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") == 1_000_060.0
    now[0] += 60
    assert storage.get("k") == 0
    assert storage.incr("other", 60) == 1  # any write removes the rows whose window ended
    assert storage.keys() == ["other"]
    assert sqlite3.connect(storage.path).execute("SELECT count(*) FROM counters").fetchone() == (1,)
    assert storage.incr("k", 60) == 1


def test_counts_from_two_processes_and_many_threads_all_add_up(tmp_path) -> None:
    uri = limitstore.storage_uri(tmp_path / "counts.sqlite3")
    workers = [limitstore.SQLiteStorage(uri), limitstore.SQLiteStorage(uri)]

    def hit(storage: limitstore.SQLiteStorage) -> None:
        for _ in range(25):
            storage.incr("busy", 3600)

    threads = [threading.Thread(target=hit, args=(workers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert workers[0].get("busy") == workers[1].get("busy") == 200


def test_gunicorn_master_hands_its_workers_a_fresh_key(monkeypatch) -> None:
    monkeypatch.delenv(SERVER_SECRET_ENV, raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    settings["on_starting"](None)
    first = os.environ[SERVER_SECRET_ENV]
    settings["on_starting"](None)
    assert re.fullmatch(r"[0-9a-f]{64}", first) and os.environ[SERVER_SECRET_ENV] != first


# --- the real server: two gunicorn workers ---------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Server:
    """gunicorn with the repository's gunicorn.conf.py, on a free port; requests from one
    loopback address other than the listening one."""

    ADDRESS = "127.0.0.23"

    def __init__(self, tmp_path: Path, database: str, secret_key: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.counts = tmp_path / "counts" / "ratelimits.sqlite3"
        env = {**os.environ, "DATABASE_URL": database, "SECRET_KEY": secret_key,
               "RATELIMIT_STORAGE_URI": limitstore.storage_uri(self.counts)}
        for name in ("REDIS_URL", SERVER_SECRET_ENV, "SUBMIT_RATE_LIMIT"):
            env.pop(name, None)
        self.log = tmp_path / "server.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "2",
             "-b", f"127.0.0.1:{self.port}", "app:app"],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.workers: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(self.workers) < 2:
            time.sleep(0.05)
            self.workers = _children(self.process.pid)
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/")
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("gunicorn did not start: " + self.log.read_text())

    def only(self, worker: int) -> None:
        """Let only this worker take connections: the other is paused (SIGSTOP)."""
        for pid in self.workers:
            os.kill(pid, signal.SIGCONT if pid == worker else signal.SIGSTOP)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                          source_address=(self.ADDRESS, 0))
        conn.request(method, path, body=body, headers={"Accept-Language": "en", **(headers or {})})
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        return response.status, dict(response.getheaders()), text

    def page_tip(self) -> tuple[int, str]:
        _, headers, form = self.request("GET", "/report")
        cookie = SimpleCookie(headers["Set-Cookie"])
        body = urllib.parse.urlencode({
            "csrf_token": CSRF.search(form).group(1),
            "submission": SUBMISSION.search(form).group(1),
            "narrative": "oil in the Buerhatong river"}).encode()
        status, _, text = self.request("POST", "/report", body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v.value}" for k, v in cookie.items())})
        return status, text

    def api_tip(self) -> tuple[int, str]:
        status, _, text = self.request("POST", "/api/v1/tips",
                                       json.dumps({"narrative": "oil in the river"}).encode(),
                                       {"Content-Type": "application/json"})
        return status, text

    def stop(self) -> None:
        """Quick shutdown: the test has read all it needs, so the workers need not finish."""
        self.process.send_signal(signal.SIGQUIT)
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_gunicorn_workers_hold_the_documented_limit_together(app_factory, tmp_path) -> None:
    """`make run` as shipped (two workers, SQLite, no Redis): ten tips an hour from one address,
    however they are spread over the report page, the API and the two workers."""
    database = tmp_path / "portal.sqlite3"
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}", REDIS_URL=None,
                      RATELIMIT_STORAGE_URI="memory://")
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
        db.session.remove()
        db.engine.dispose()
    assert config.Settings.SUBMIT_RATE_LIMIT.startswith("10 per hour")
    server = Server(tmp_path, f"sqlite:///{database}", app.config["SECRET_KEY"])
    try:
        first, second = server.workers
        filed = []
        # Five at once on each worker (its threads), page and API mixed.
        with ThreadPoolExecutor(max_workers=5) as pool:
            for worker, doors in ((first, "ppapa"), (second, "apapa")):
                server.only(worker)
                filed += pool.map(lambda door: server.page_tip() if door == "p"
                                  else server.api_tip(), doors)
        assert [status for status, _ in filed] == [201] * 10, filed
        status, page = server.page_tip()  # the 11th, on the second worker
        assert status == 429 and TOO_MANY in page
        server.only(first)
        status, answer = server.api_tip()  # and on the first
        assert status == 429 and TOO_MANY in json.loads(answer)["error"]
        counts = b"".join(path.read_bytes() for path in server.counts.parent.iterdir())
    finally:
        server.stop()
    assert sqlite3.connect(database).execute("SELECT count(*) FROM tips").fetchone() == (10,)
    assert Server.ADDRESS.encode() not in counts and b"file-tip" in counts
    assert Server.ADDRESS not in server.log.read_text(errors="replace")


# --- several servers: Redis ------------------------------------------------------------------

@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set (make test-scaleout)")
def test_servers_sharing_redis_hold_one_budget_across_doors(app_factory) -> None:
    """Two servers (two apps, one SECRET_KEY, one Redis): their counts add up, page and API
    together, and Redis holds no address."""
    shared = {"RATELIMIT_STORAGE_URI": TEST_REDIS_URL, "SUBMIT_RATE_LIMIT": "3 per hour",
              "SECRET_KEY": "several servers " + os.urandom(8).hex(),
              "RATELIMIT_KEY_PREFIX": "test-" + os.urandom(8).hex()}
    first, second = app_factory(**shared), app_factory(**shared)
    with first.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    assert page_tip(first.test_client()).status_code == 201
    assert api_tip(second.test_client()).status_code == 201
    assert api_tip(first.test_client()).status_code == 201
    assert page_tip(second.test_client()).status_code == 429
    redis = first.extensions["rate_limiter"].storage.storage
    keys = [key.decode() for key in redis.scan_iter(f"*{shared['RATELIMIT_KEY_PREFIX']}*")]
    assert keys and all("/file-tip/" in key for key in keys)
    assert not any(CLIENT_IP in key for key in keys)
    assert all(address_key(shared["SECRET_KEY"], CLIENT_IP) in key for key in keys)
