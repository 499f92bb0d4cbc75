"""Debian's nginx in front of gunicorn, configured by the very file the repository ships
(deploy/nginx/qingliu.conf: placeholders filled, ports and paths moved into a temporary folder),
over TLS with a certificate made for the test: slow uploads wait in nginx, not in gunicorn's
threads; nginx's own refusals and gunicorn's absence answer in the three languages; X-Forwarded-For
reaches the portal (PROXY_COUNT=1) as the connection's address and nothing else; a reload of
gunicorn and nginx (HUP) loses no upload in flight; nginx's logs hold no address, user agent or
receipt.

The tests of this module share one nginx and one gunicorn (module fixture) and run in order."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx" / "qingliu.conf"
SERVER_NAME = "qingliu.test"
USER_AGENT = "CanaryAgent/7.7 (nginx test)"
MiB = 1024 * 1024
# Loopback addresses the test's clients connect from (nginx listens on 127.0.0.1): each test has
# its own, so that the rate limit (SUBMIT_RATE_LIMIT below) counts each one apart.
BROWSER = "127.0.0.9"
SLOW = "127.0.0.10"
COUNTED = "127.0.0.11"
SPOOFER = "127.0.0.12"
RELOADER = "127.0.0.13"
INSIDE = "127.0.0.14"  # straight to gunicorn, not through nginx
CROWDED = "127.0.0.15"
CLIENTS = (BROWSER, SLOW, COUNTED, SPOOFER, RELOADER, INSIDE, CROWDED)
SUBMIT_LIMIT = 2
ADMIN_PASSWORD = "correct horse battery"
# The portal's own headers (portal/web/http.py add_security_headers).
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy")
SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
RECEIPT = re.compile(r'<p class="receipt" lang="en"><code>([^<]+)</code>')
# One sentence of each language from each of nginx's pages (static/errors/).
PAGE_WORDS = {
    413: ("没有保存任何内容", "아무것도 저장되지 않았습니다", "nothing was stored"),
    503: ("平台暂时无法响应", "플랫폼이 지금 응답할수 없습니다",
          "The portal cannot answer right now"),
}

pytestmark = pytest.mark.skipif(not NGINX.exists(),
                                reason="/usr/sbin/nginx is absent (Debian package nginx; "
                                       ".ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}: {log.read_text(errors='replace')}")


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def wait_until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def site_config(folder: Path, *, https: int, http: int, upstream: int, cert: Path, key: Path,
                level: str | None = None) -> str:
    """deploy/nginx/qingliu.conf with what an operator fills in (README), and with its ports,
    temporary folder and log moved into `folder`. Each replacement must match as often as the
    file is known to hold it: a changed file fails here rather than being tested half."""
    text = SITE.read_text()
    log = str(folder / "logs" / "qingliu-error.log")
    replacements = [
        ("{{SERVER_NAME}}", SERVER_NAME, 4),
        ("{{TLS_CERTIFICATE}}", str(cert), 2),
        ("{{TLS_CERTIFICATE_KEY}}", str(key), 2),
        ("{{PORTAL_ROOT}}", str(ROOT), 2),
        ("listen 443 ssl http2 default_server;",
         f"listen 127.0.0.1:{https} ssl http2 default_server;", 1),
        ("    listen [::]:443 ssl http2 default_server;\n", "", 1),
        ("listen 80 default_server;", f"listen 127.0.0.1:{http} default_server;", 1),
        ("    listen [::]:80 default_server;\n", "", 1),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};", 1),
        ("/var/lib/nginx/qingliu-body", str(folder / "qingliu-body"), 1),
        ("/var/log/nginx/qingliu-error.log", log, 2),
    ]
    if level is not None:  # the control: a lower level shows what the shipped one leaves out
        replacements.append((f"{log} alert;", f"{log} {level};", 2))
    for old, new, count in replacements:
        assert text.count(old) == count, f"{old!r} is in {SITE.name} {text.count(old)} times"
        text = text.replace(old, new)
    assert not re.search(r"\{\{[A-Z_]+\}\}", text)
    return text


def main_config(folder: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf sets around the sites (its access log included, which
    the site must switch off), with the temporary folders in `folder`."""
    user = "user root root;" if os.geteuid() == 0 else ""  # workers reach the test's tmp folder
    temp = "\n".join(f"    {kind}_temp_path {folder / 'temp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {folder / 'logs' / 'access.log'};
    gzip on;
{temp}
    include {folder / 'sites-enabled'}/*;
}}
"""


class Nginx:
    def __init__(self, folder: Path, site: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for sub in ("logs", "temp", "sites-enabled"):
            (folder / sub).mkdir(exist_ok=True)
        (folder / "sites-enabled" / "qingliu").write_text(site)
        self.conf = folder / "nginx.conf"
        self.conf.write_text(main_config(folder))
        self.logs = folder / "logs"
        output = self.logs / "nginx.out"
        directives = f"daemon off; pid {folder / 'nginx.pid'}; error_log {self.logs / 'error.log'};"
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(folder), "-c", str(self.conf), "-g", directives],
            stdout=output.open("wb"), stderr=subprocess.STDOUT)
        self.output = output

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the logs are complete
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Gunicorn:
    def __init__(self, folder: Path, port: int) -> None:
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}",
                    "SECRET_KEY": "nginx test " + uuid.uuid4().hex, "PROXY_COUNT": "1",
                    "PORTAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "AUDIT_SIGNING_KEY_FILE": str(folder / "audit-log.key"),
                    "RATELIMIT_STORAGE_URI": f"qingliu-sqlite://{folder / 'ratelimits.sqlite3'}",
                    "SUBMIT_RATE_LIMIT": f"{SUBMIT_LIMIT} per hour"}
        self.env.pop("REDIS_URL", None)
        flask = [sys.executable, "-m", "flask", "--app", "app"]
        for args in (["db", "upgrade"],
                     ["setup", "--admin", "ops", "--recovery-out", str(folder / "recovery")]):
            subprocess.run([*flask, *args], cwd=ROOT, env=self.env, check=True,
                           capture_output=True)
        self.port = port
        self.log = folder / "gunicorn.log"
        # One worker with two threads: two uploads read by gunicorn itself would hold it all.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1",
             "--threads", "2", "-b", f"127.0.0.1:{port}", "app:app"],
            cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_for_port(port, self.process, self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Front:
    nginx: Nginx
    gunicorn: Gunicorn
    https: int
    http: int
    receipts: list[str] = field(default_factory=list)

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def connection(self, client: str = BROWSER, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.https, timeout=timeout,
                                           context=self.tls(), source_address=(client, 0))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, client: str = BROWSER,
                timeout: float = 30) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = self.connection(client, timeout)
        try:
            conn.request(method, path, body=body, headers={
                "Host": SERVER_NAME, "User-Agent": USER_AGENT, "Accept-Language": "en",
                **(headers or {})})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def raw(self, client: str) -> ssl.SSLSocket:
        """A TLS connection to nginx, handshake done (nginx has accepted it)."""
        sock = socket.create_connection(("127.0.0.1", self.https), timeout=30,
                                        source_address=(client, 0))
        return self.tls().wrap_socket(sock, server_hostname=SERVER_NAME)

    def api_tip(self, client: str, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, object]]:
        status, _, body = self.request(
            "POST", "/api/v1/tips", json.dumps({"narrative": "oil in the Buerhatong"}).encode(),
            {"Content-Type": "application/json", **(headers or {})}, client=client)
        answer = json.loads(body)
        if status == 201:
            self.receipts.append(answer["receipt"])
        return status, answer


def multipart(boundary: str, text_size: int) -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="narrative"\r\n\r\n'
            f"slag dumped at night\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="attachments"; filename="readings.txt"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode() + b"pH 11.2 at the outflow\n" * (text_size // 23) + (
            f"\r\n--{boundary}--\r\n").encode()


def upload_head(path: str, boundary: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept-Language: en\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the answer to a request sent with Connection: close."""
    status, _, body = read_answer(sock)
    return status, body


def read_answer(sock: socket.socket) -> tuple[int, str, bytes]:
    """Status line and headers, and the body by its Content-Length: after a refusal nginx keeps
    the connection a while to read the body it refused (lingering close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head, re.IGNORECASE).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(head.split()[1]), head.decode("latin-1"), body


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    folder = tmp_path_factory.mktemp("nginx")
    folder.chmod(0o755)
    cert, key = self_signed(folder)
    (folder / "portal").mkdir()
    gunicorn = Gunicorn(folder / "portal", free_port())
    nginx = None
    try:
        https, http = free_port(), free_port()
        nginx = Nginx(folder / "nginx", site_config(folder / "nginx", https=https, http=http,
                                                    upstream=gunicorn.port, cert=cert, key=key))
        wait_for_port(https, nginx.process, nginx.output)
        yield Front(nginx, gunicorn, https, http)
    finally:
        if nginx is not None:
            nginx.stop()
        gunicorn.stop()


def test_pages_pass_through_with_the_portal_headers(front: Front) -> None:
    status, headers, body = front.request("GET", "/")
    assert status == 200 and b"<html" in body
    direct = http.client.HTTPConnection("127.0.0.1", front.gunicorn.port, timeout=30)
    direct.request("GET", "/", headers={"Accept-Language": "en"})
    portal = direct.getresponse()
    portal.read()
    direct.close()
    for name in (*SECURITY_HEADERS, "Cache-Control"):
        assert headers[name] == portal.headers[name], name
    assert headers["Server"] == "nginx"  # server_tokens off: no version
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    # The stylesheet comes from nginx itself, with the headers the portal would give it.
    status, static, css = front.request("GET", "/static/portal.css")
    assert status == 200 and css == (ROOT / "static" / "portal.css").read_bytes()
    for name in SECURITY_HEADERS:
        assert static[name] == portal.headers[name], name
    # Plain HTTP only points to HTTPS.
    conn = http.client.HTTPConnection("127.0.0.1", front.http, timeout=30,
                                      source_address=(BROWSER, 0))
    conn.request("GET", "/report?lang=ko", headers={"Host": SERVER_NAME})
    redirect = conn.getresponse()
    redirect.read()
    conn.close()
    assert redirect.status == 301
    assert redirect.headers["Location"] == f"https://{SERVER_NAME}/report?lang=ko"


def test_a_tip_is_filed_through_nginx(front: Front) -> None:
    """The report form as a browser sends it: over HTTPS (the portal sees X-Forwarded-Proto
    https) and without Referer (the portal's Referrer-Policy is no-referrer)."""
    status, headers, form = front.request("GET", "/report")
    assert status == 200
    cookie = SimpleCookie(headers["Set-Cookie"])
    page = form.decode()
    body = urllib.parse.urlencode({"csrf_token": CSRF.search(page).group(1),
                                   "submission": SUBMISSION.search(page).group(1),
                                   "narrative": "slag in the Hunchun river at night"}).encode()
    status, _, answer = front.request("POST", "/report", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v.value}" for k, v in cookie.items())})
    assert status == 201, answer.decode()
    front.receipts.append(RECEIPT.search(answer.decode()).group(1))


def test_staff_sign_in_through_nginx(front: Front) -> None:
    """A staff form as a browser sends it over HTTPS, without Referer: the portal, told by
    X-Forwarded-Proto that the request is secure, must not ask for a referrer its own
    Referrer-Policy (no-referrer) keeps browsers from sending."""
    status, headers, form = front.request("GET", "/staff/login")
    assert status == 200
    cookie = SimpleCookie(headers["Set-Cookie"])
    body = urllib.parse.urlencode({"csrf_token": CSRF.search(form.decode()).group(1),
                                   "username": "ops", "password": ADMIN_PASSWORD}).encode()
    status, headers, answer = front.request("POST", "/staff/login", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v.value}" for k, v in cookie.items())})
    assert status == 302, answer.decode()
    assert headers["Location"].startswith("/staff/login/")


def test_the_portal_counts_the_connections_address_not_a_claimed_one(front: Front) -> None:
    """X-Forwarded-For reaches the portal (PROXY_COUNT=1) as the address nginx saw: one address
    runs out of its budget, another is not charged for it even when it claims to be the first."""
    for _ in range(SUBMIT_LIMIT):
        assert front.api_tip(COUNTED)[0] == 201
    assert front.api_tip(COUNTED)[0] == 429
    assert front.api_tip(SPOOFER, {"X-Forwarded-For": COUNTED})[0] == 201


def test_slow_uploads_wait_in_nginx_not_in_gunicorn(front: Front) -> None:
    """Ten phones trickling an upload (gunicorn has one worker with two threads): a page is still
    answered at once, and nginx has answered none of the ten (it still reads their bodies)."""
    boundary = uuid.uuid4().hex
    body = multipart(boundary, 20_000)
    slow = [front.raw(SLOW) for _ in range(10)]
    stop = threading.Event()

    def trickle() -> None:
        sent = 100
        while not stop.is_set() and sent < len(body) - 100:
            for sock in slow:
                sock.sendall(body[sent:sent + 100])
            sent += 100
            stop.wait(0.1)  # about 1 KB/s per connection

    for sock in slow:
        sock.sendall(upload_head("/api/v1/tips", boundary, len(body)) + body[:100])
    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        times = []
        for _ in range(5):
            started = time.monotonic()
            status, _, _ = front.request("GET", "/", timeout=10)
            times.append(time.monotonic() - started)
            assert status == 200
        assert trickler.is_alive(), "the uploads ended before the pages were asked for"
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                sock.recv(1)  # nothing answered yet
    finally:
        stop.set()
        trickler.join()
        for sock in slow:
            sock.close()
    print("GET / while ten uploads trickle: " + ", ".join(f"{t * 1000:.0f} ms" for t in times))
    assert max(times) < 2, times


def test_one_address_holds_at_most_16_uploads(front: Front) -> None:
    """limit_conn: sixteen bodies under way from one address (each asked for: 100 Continue), the
    seventeenth is refused 429 with the three languages' page; pages still load from it."""
    boundary = uuid.uuid4().hex
    head = upload_head("/report", boundary, 10_000, "Expect: 100-continue\r\n")
    held = []
    try:
        for _ in range(16):
            sock = front.raw(CROWDED)
            held.append(sock)
            sock.sendall(head)
            assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        with front.raw(CROWDED) as sock:
            sock.sendall(upload_head("/report", boundary, 10_000))
            status, body = read_response(sock)
        assert status == 429
        for words in ("同时发送过多内容", "동시에 보내는 내용이 너무 많아",
                      "too much at the same time"):
            assert words.encode() in body
        with front.raw(CROWDED) as sock:
            sock.sendall(upload_head("/api/v1/tips", boundary, 10_000))
            status, head, body = read_answer(sock)
        assert status == 429 and "\r\nRetry-After: 30\r\n" in head + "\r\n"
        assert json.loads(body) == json.loads((ROOT / "static/errors/429.en.json").read_text())
        assert front.request("GET", "/", client=CROWDED)[0] == 200
    finally:
        for sock in held:
            sock.close()


def test_too_large_a_body_is_refused_in_three_languages(front: Front) -> None:
    limit = config.Settings.MAX_CONTENT_LENGTH
    assert f"client_max_body_size {limit // MiB}m;" in SITE.read_text()
    page = (ROOT / "static" / "errors" / "413.html").read_text()
    file_mb, total_mb = config.Settings.MAX_FILE_BYTES // MiB, limit // MiB
    assert page.count(f"{file_mb} MB") == 3 and page.count(f"{total_mb} MB") == 3
    boundary = uuid.uuid4().hex
    # The portal's limit itself: nginx asks for the body.
    with front.raw(BROWSER) as sock:
        sock.sendall(upload_head("/report", boundary, limit, "Expect: 100-continue\r\n"))
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
    # One byte more: refused before a byte of it is read, with the three languages' page.
    with front.raw(BROWSER) as sock:
        sock.sendall(upload_head("/report", boundary, limit + 1))
        status, body = read_response(sock)
    assert status == 413
    for words in PAGE_WORDS[413]:
        assert words.encode() in body
    # The API answers in JSON, in the language asked for.
    with front.raw(BROWSER) as sock:
        sock.sendall(upload_head("/api/v1/tips", boundary, limit + 1).replace(
            b"Accept-Language: en", b"Accept-Language: ko-KR,ko;q=0.9"))
        status, body = read_response(sock)
    assert status == 413
    assert json.loads(body) == {"status": 413,
                                "error": json.loads((ROOT / "static/errors/413.ko.json")
                                                    .read_text())["error"]}
    assert "아무것도 저장되지 않았습니다" in json.loads(body)["error"]


def test_reload_of_gunicorn_and_nginx_loses_no_upload(front: Front) -> None:
    """HUP to both while two uploads are on their way, one through nginx (still in nginx's
    buffer) and one straight into gunicorn's worker (held by one of its threads): gunicorn
    starts a new worker on the code on disk while the old one finishes what it holds, nginx's
    old worker keeps its connection, pages are answered throughout, and both uploads file their
    tips. The rate-limit key drawn by gunicorn's master outlives the reload: the counts go on."""
    assert front.api_tip(RELOADER)[0] == 201  # the first of the address's two
    master = front.gunicorn.process.pid
    old_workers, old_nginx = children(master), children(front.nginx.process.pid)
    assert len(old_workers) == 1 and old_nginx
    boundary = uuid.uuid4().hex
    body = multipart(boundary, 200_000)
    half = len(body) // 2
    head = upload_head("/api/v1/tips", boundary, len(body))
    with front.raw(RELOADER) as proxied, socket.create_connection(
            ("127.0.0.1", front.gunicorn.port), timeout=30,
            source_address=(INSIDE, 0)) as inside:
        proxied.sendall(head + body[:half])
        inside.sendall(head + body[:half])
        os.kill(master, signal.SIGHUP)
        front.nginx.process.send_signal(signal.SIGHUP)
        assert front.request("GET", "/")[0] == 200
        wait_until(lambda: children(master) - old_workers, "gunicorn's new worker")
        wait_until(lambda: children(front.nginx.process.pid) - old_nginx, "nginx's new worker")
        assert front.request("GET", "/")[0] == 200
        proxied.sendall(body[half:])
        inside.sendall(body[half:])
        answers = [read_response(proxied), read_response(inside)]
    for status, answer in answers:
        assert status == 201, answer
        front.receipts.append(json.loads(answer)["receipt"])
    wait_until(lambda: not children(master) & old_workers, "the old worker to finish and exit")
    status, refused = front.api_tip(RELOADER)
    assert status == 429, refused  # the third of two: counted under the same key as before


def test_gunicorn_down_answers_in_three_languages(front: Front) -> None:
    front.gunicorn.stop()
    status, headers, body = front.request("GET", "/report")
    assert status == 503 and headers["Retry-After"] == "30"
    assert headers["Cache-Control"] == "no-store"
    for words in PAGE_WORDS[503]:
        assert words.encode() in body
    for name in SECURITY_HEADERS:
        assert name in headers
    status, headers, body = front.request(
        "POST", "/api/v1/tips", b'{"narrative": "x"}',
        {"Content-Type": "application/json", "Accept-Language": "zh-CN,zh;q=0.9"})
    assert status == 503 and headers["Retry-After"] == "30"
    assert headers["Content-Type"].startswith("application/json")
    assert "平台暂时无法响应" in json.loads(body)["error"]


def test_nginx_logs_hold_no_address_user_agent_or_receipt(front: Front) -> None:
    """After everything above (uploads, refusals, a reload, gunicorn gone): nginx's log files
    and its output hold none of the clients' addresses, their user agent or a receipt."""
    if len(front.receipts) < 5:
        pytest.skip("reads the logs the tests above leave: run the whole module")
    for receipt in front.receipts:  # a receipt in a URL would be written with the request line
        front.request("GET", "/followup?" + urllib.parse.urlencode({"receipt": receipt}))
    front.nginx.stop()
    written = b"".join(path.read_bytes() for path in front.nginx.logs.iterdir())
    for secret in (*CLIENTS, USER_AGENT, "client:", *front.receipts):
        assert secret.encode() not in written, f"{secret!r} in nginx's logs"


def test_control_a_lower_error_log_level_would_be_caught(tmp_path: Path) -> None:
    """The same site with error_log at "error": gunicorn being unreachable is written with the
    client's address, so the check above can fail."""
    cert, key = self_signed(tmp_path)
    https = free_port()
    nginx = Nginx(tmp_path / "nginx", site_config(tmp_path / "nginx", https=https,
                                                  http=free_port(), upstream=free_port(),
                                                  cert=cert, key=key, level="error"))
    try:
        wait_for_port(https, nginx.process, nginx.output)
        probe = Front(nginx, None, https, 0)  # type: ignore[arg-type]
        assert probe.request("GET", "/")[0] == 503
    finally:
        nginx.stop()
    written = b"".join(path.read_bytes() for path in nginx.logs.iterdir())
    assert BROWSER.encode() in written and b"client:" in written
