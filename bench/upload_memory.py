"""The memory of a server worker during the largest upload the portal takes, and after photos
(issue 13, row 8).

The portal is served as `make run` serves it (a fresh instance, gunicorn -c gunicorn.conf.py).
Every worker's resident memory (VmRSS) is read every 20 ms while one tip is posted with
`--files` (10) text files of `--file-mb` (50) MB each, streamed by the client (the largest upload
allowed by default); the figure is the highest reading of any worker. The same is read while a
tip without a file is filed, for comparison: every tip costs one receipt hash, Argon2id with
64 MiB (portal/intake/receipts.py), which a worker holds for the hash's quarter of a second.
Then `--photos` (5) tips with a `--photo-mb` (20) MB photo each are filed (cleaned in memory,
then sealed), and the workers' memory is read once they are idle: a worker should give back
what a photo took (gunicorn.conf.py gives it back IDLE_TRIM_SECONDS after the last large body).

Run:  .venv/bin/python bench/upload_memory.py
      .venv/bin/python bench/upload_memory.py --files 2 --file-mb 5 --photos 1 --photo-mb 2
"""

from __future__ import annotations

import argparse
import http.client
import os
import runpy
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from figures import Figure, show
from serve import ROOT, free_port, start_server, stop_server
from submit import MB, multipart, photo_of_about, post

GOAL_MB = 150


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def post_text(port: int, body: bytes, content_type: str) -> None:
    """A tip with a text file (submit.post sends every file as image/jpeg)."""
    body = body.replace(b"Content-Type: image/jpeg", b"Content-Type: text/plain")
    post(port, body, content_type)


def workers(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def settings() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def every_worker(master: int) -> list[int]:
    """The workers once all that gunicorn.conf.py asks for are running: the port answers as soon
    as the master listens, before it has started them (a worker missed was never read)."""
    wanted = settings().get("workers", 1)
    for _ in range(300):
        found = workers(master)
        if len(found) >= wanted:
            return found
        time.sleep(0.1)
    raise SystemExit(f"gunicorn started {len(found)} of {wanted} workers")


class Sampler(threading.Thread):
    """The highest VmRSS of the given processes, read every 20 ms until stopped."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self._stop_event = pids, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max([self.peak, *(rss_mb(p) for p in self.pids)])
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak


def big_upload(port: int, files: int, file_bytes: int) -> int:
    """POST one tip with `files` text files of `file_bytes` each, generated as it is sent."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="narrative"\r\n\r\n'
            f"bench: the largest upload\r\n").encode()
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
            f'filename="notes-{{}}.txt"\r\nContent-Type: text/plain\r\n\r\n')
    line = b"water sample, night, outlet 3: black, smell of solvent\n" * 1000  # ~55 KB

    def body() -> Iterator[bytes]:
        yield head
        for k in range(files):
            yield part.format(k).encode()
            left = file_bytes
            while left > 0:
                chunk = line[:left]
                left -= len(chunk)
                yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    length = sum(len(chunk) for chunk in body())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", "/api/v1/tips")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    for chunk in body():
        conn.send(chunk)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def figures(files: int = 10, file_mb: float = 50, photos: int = 5,
            photo_mb: float = 20) -> list[Figure]:
    port = free_port()
    photo = photo_of_about(int(photo_mb * MB))
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder), port, os.environ.get("DATABASE_URL"))
        try:
            pids = every_worker(server.pid)
            body, content_type = multipart({"narrative": "warm-up"}, [])
            for _ in range(4):  # every worker has served a tip before it is measured
                post(port, body, content_type)
            bare = max(rss_mb(p) for p in pids)
            # and one with a small file: what cleaning imports is in memory from then on
            small = multipart({"narrative": "warm-up"}, [("note.txt", b"a small note\n")])
            for _ in range(4):
                post_text(port, *small)
            before = max(rss_mb(p) for p in pids)
            sampler = Sampler(pids)
            sampler.start()
            post(port, body, content_type)
            plain_peak = sampler.stop()
            sampler = Sampler(pids)
            sampler.start()
            status = big_upload(port, files, int(file_mb * MB))
            peak = sampler.stop()
            photo_body, photo_type = multipart({"narrative": "photo"}, [("photo.jpg", photo)])
            for _ in range(photos):
                post(port, photo_body, photo_type)
            time.sleep(settings().get("IDLE_TRIM_SECONDS", 1) + 1)  # idle, as the config means
            after = max(rss_mb(p) for p in pids)
        finally:
            stop_server(server)
    upload = f"{files} × {file_mb:g} MB"
    return [
        Figure(f"worker RSS during a {upload} upload (answer {status})",
               f"{bare:.0f} → {before:.0f} (a small file) → {peak:.0f} MB "
               f"(a tip without file: {plain_peak:.0f} MB)", f"< {GOAL_MB} MB",
               status == 201 and peak < GOAL_MB),
        Figure(f"worker RSS after {photos} tips with a {photo_mb:g} MB photo",
               f"{after:.0f} MB", f"< {GOAL_MB} MB", after < GOAL_MB),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-mb", type=float, default=50)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--photo-mb", type=float, default=20)
    args = parser.parse_args()
    show(figures(args.files, args.file_mb, args.photos, args.photo_mb))


if __name__ == "__main__":
    main()
