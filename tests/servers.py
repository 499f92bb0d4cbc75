"""The shipped server for tests and benchmarks: gunicorn started as `make run` starts it (the
repository's gunicorn.conf.py, `app:app`) on a database and instance folder of the caller's, and
a citizen who talks to it over raw sockets, so that a test can stop in the middle of a body.

No pytest here: bench/ uses it too.

    server = start_gunicorn({"SUBMIT_RATE_LIMIT": "1000 per hour"}, database_url,
                            workers=1, threads=4, folder=tmp_path)
    server.wait_ready()          # polls GET / until an answer comes
    ...
    server.kill9()               # the workers; kill9(master=True): the master too
    server = server.restart()    # the same settings, port and SECRET_KEY
    server.stop()                # SIGTERM to the master, waits for it to exit
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the portal reads from its environment (config.py): the caller's own settings never leak
# into a server started here unless it passes them in app_env.
PORTAL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "RATELIMIT_STORAGE_URI", "SECRET_KEY",
                    "AUDIT_SIGNING_KEY_FILE", "PROXY_COUNT", "QINGLIU_RATE_LIMIT_SECRET")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (not necessarily our child) has exited; True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


@dataclass
class Gunicorn:
    """One gunicorn master with its workers; `log` holds what it wrote (stdout and stderr)."""

    process: subprocess.Popen
    port: int
    log: Path
    env: dict[str, str]
    args: list[str]
    folder: Path
    started: int = 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60, path: str = "/") -> int:
        """Poll GET `path` until the server answers; return the status (whatever it is). Fails
        with the log's end if the master exits or nothing answers in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n"
                                   + self.log_text()[-3000:])
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                # Not listening yet: wait for the master to exit or a moment to pass.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.05)
            finally:
                conn.close()
        raise RuntimeError("gunicorn did not answer:\n" + self.log_text()[-3000:])

    def kill9(self, *, master: bool = False) -> list[int]:
        """SIGKILL every worker (and the master with `master`); return when they are gone. The
        master, if left alive, starts new workers. Returns the killed pids."""
        pids = self.worker_pids()
        if master:
            os.kill(self.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if master:
            self.process.wait(timeout=30)
        for pid in pids:
            if not process_gone(pid, 30):
                raise RuntimeError(f"worker {pid} outlived SIGKILL")
        return [*pids, *([self.pid] if master else [])]

    def terminate(self) -> None:
        """SIGTERM to the master: it stops accepting and lets the workers finish (graceful)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait for the master to exit (SIGKILL, master and workers, after
        `timeout`). Returns its exit status."""
        if self.process.poll() is None:
            workers = self.worker_pids()
            self.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in [*workers, *self.worker_pids()]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode

    def restart(self) -> Gunicorn:
        """A new gunicorn with the same settings (port, SECRET_KEY, database); the old one must
        be gone (stop() or kill9(master=True))."""
        if self.process.poll() is None:
            raise RuntimeError("stop the running server first")
        return _spawn(self.env, self.args, self.port, self.folder, self.started + 1)


def start_gunicorn(app_env: Mapping[str, str], database_url: str, *, workers: int | None = 1,
                   threads: int | None = 4, extra_args: Sequence[str] = (),
                   folder: Path | None = None, port: int | None = None) -> Gunicorn:
    """Start `gunicorn -c gunicorn.conf.py app:app` (as `make run` does) on `database_url`, with
    the portal settings in `app_env` on top of the defaults below, and return at once (call
    wait_ready). The instance files (audit-log signing key, rate-limit counts file) go to
    `folder` (a new temporary folder if None), never to the repository's instance/. Workers
    or threads None: as gunicorn.conf.py says."""
    folder = Path(folder or tempfile.mkdtemp(prefix="qingliu-gunicorn-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in PORTAL_VARIABLES}
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "AUDIT_SIGNING_KEY_FILE": str(folder / "audit-log.key"),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(app_env)
    if not env.get("REDIS_URL"):
        env.pop("REDIS_URL", None)
        env.setdefault("RATELIMIT_STORAGE_URI",
                       f"qingliu-sqlite://{folder / 'ratelimits.sqlite3'}")
    args = [*(["--workers", str(workers)] if workers is not None else []),
            *(["--threads", str(threads)] if threads is not None else []), *extra_args]
    return _spawn(env, args, port or free_port(), folder, 1)


def _spawn(env: dict[str, str], args: list[str], port: int, folder: Path,
           started: int) -> Gunicorn:
    log = folder / f"gunicorn-{started}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{port}", *args, "app:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Gunicorn(process, port, log, env, args, folder, started)


def accept_queue(port: int) -> int | None:
    """How many connections wait in the kernel for the server on `port` to accept them (the
    listening socket's backlog, /proc/net/tcp), or None if nothing listens there."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return int(queues.split(":")[1], 16)
    return None


# ---------------------------------------------------------------------------------------------
# A citizen over raw sockets

RECEIPT = re.compile(rb"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")
_HIDDEN = '<input[^>]*name="{name}"[^>]*value="([^"]*)"'


def hidden_field(name: str, page: bytes | str) -> str | None:
    text = page.decode(errors="replace") if isinstance(page, bytes) else page
    match = re.search(_HIDDEN.format(name=re.escape(name)), text)
    return match.group(1) if match else None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def receipt(self) -> str | None:
        match = RECEIPT.search(self.body)
        return match.group(1).decode() if match else None


def read_answer(sock: socket.socket) -> Answer:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


@dataclass
class Visit:
    """One browser's visit: its session cookie, kept across requests."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 60

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep_cookies(self, headers: Iterable[tuple[str, str]]) -> None:
        for name, value in headers:
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body,
                         headers={**self._cookie_header(), **(headers or {})})
            response = conn.getresponse()
            data = response.read()
            self._keep_cookies(response.getheaders())
            return Answer(response.status,
                          {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post_form(self, path: str, fields: Mapping[str, str]) -> Answer:
        from urllib.parse import urlencode

        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def report_form(self) -> dict[str, str]:
        """Draw the report form: its CSRF token and one-time submission token."""
        page = self.get("/report?lang=en")
        if page.status != 200:
            raise RuntimeError(f"GET /report answered {page.status}")
        return {name: hidden_field(name, page.body) or ""
                for name in ("csrf_token", "submission")}

    def followup(self, receipt: str) -> Answer:
        """The follow-up page of a receipt, through the form as a browser posts it."""
        form = self.get("/followup?lang=en")
        return self.post_form("/followup?lang=en", {
            "csrf_token": hidden_field("csrf_token", form.body) or "", "receipt": receipt})

    def upload(self, path: str, fields: Mapping[str, str],
               files: Sequence[tuple[str, bytes]] = (), chunk: int = 64 * 1024) -> Upload:
        body, content_type = multipart(fields, files)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n")
        for name, value in self._cookie_header().items():
            head += f"{name}: {value}\r\n"
        return Upload(self.port, head.encode() + b"\r\n", body, chunk, self.timeout)


def multipart(fields: Mapping[str, str], files: Sequence[tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends the report form (files as `attachments`)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Upload:
    """One POST sent piece by piece over its own socket: `send(upto=…)` sends the headers and the
    body up to a byte count (or all), `answer()` reads the response."""

    def __init__(self, port: int, head: bytes, body: bytes, chunk: int, timeout: float) -> None:
        self.port = port
        self.head = head
        self.body = body
        self.chunk = chunk
        self.timeout = timeout
        self.sent = 0
        self.sock: socket.socket | None = None

    def connect(self) -> Upload:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.sendall(self.head)
        return self

    def send(self, upto: int | None = None, pause: float = 0.0) -> Upload:
        """Send the body up to byte `upto` (all if None), in chunks, `pause` seconds apart."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        end = len(self.body) if upto is None else min(upto, len(self.body))
        while self.sent < end:
            piece = self.body[self.sent:min(end, self.sent + self.chunk)]
            self.sock.sendall(piece)
            self.sent += len(piece)
            if pause and self.sent < end:
                time.sleep(pause)  # pacing a slow client, not waiting for anything
        return self

    @property
    def complete(self) -> bool:
        return self.sent == len(self.body)

    def answer(self) -> Answer:
        assert self.sock is not None
        try:
            return read_answer(self.sock)
        finally:
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
