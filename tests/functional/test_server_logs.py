"""The production server (gunicorn with gunicorn.conf.py) writes no client address, user agent
or receipt for citizen routes. A control run with an access log switched on shows the check
would catch one."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ADDRESS = "127.0.0.9"  # any loopback address; the server listens on 127.0.0.1
USER_AGENT = "CanaryAgent/7.7 (server-log test)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(tmp_path: Path, extra_args: list[str]) -> tuple[subprocess.Popen, int, Path]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
           "SECRET_KEY": "server log test", "PORTAL_ADMIN_PASSWORD": "correct horse battery"}
    env.pop("REDIS_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "setup", "--admin", "ops", "--recovery-out",
                    str(tmp_path / "recovery")], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    port = free_port()
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
         *extra_args, "app:app"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("gunicorn did not start: " + log.read_text())
    return process, port, log


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(CLIENT_ADDRESS, 0))
    headers = {"User-Agent": USER_AGENT}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def exercise(port: int) -> str:
    status, data = request(port, "POST", "/api/v1/tips", {"narrative": "logged?"})
    assert status == 201, data
    receipt = json.loads(data)["receipt"]
    assert request(port, "POST", "/api/v1/followup", {"receipt": receipt})[0] == 200
    assert request(port, "GET", "/report")[0] == 200
    assert request(port, "GET", "/no-such-page")[0] == 404
    with socket.create_connection(("127.0.0.1", port), source_address=(CLIENT_ADDRESS, 0)) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        raw.recv(1024)
    return receipt


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_production_server_logs_nothing_identifying(tmp_path: Path) -> None:
    process, port, log = serve(tmp_path, [])
    try:
        receipt = exercise(port)
    finally:
        stop(process)
    output = log.read_text(errors="replace")
    for secret in (CLIENT_ADDRESS, USER_AGENT, receipt, receipt.replace("-", "")):
        assert secret not in output, f"{secret!r} in the server log:\n{output}"
    database = (tmp_path / "portal.sqlite3").read_bytes()
    for secret in (CLIENT_ADDRESS, USER_AGENT, receipt, receipt.replace("-", "")):
        assert secret.encode() not in database


def test_control_an_access_log_would_be_caught(tmp_path: Path) -> None:
    process, port, log = serve(tmp_path, ["--access-logfile", "-"])
    try:
        exercise(port)
    finally:
        stop(process)
    output = log.read_text(errors="replace")
    assert CLIENT_ADDRESS in output and USER_AGENT in output
