"""What a submission costs: median wall time of POST /api/v1/tips against a real gunicorn
server (production settings, production Argon2id cost), with no file and with a 20 MB photo.

Run:  .venv/bin/python bench/submit.py            (SQLite in a temporary folder)
      .venv/bin/python bench/submit.py --runs 30 --photo-runs 8
      DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python bench/submit.py
Prints one line per case: median, min and max in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from figures import Figure
from PIL import Image
from serve import free_port, start_server, stop_server

MB = 1_000_000


def photo_of_about(size: int) -> bytes:
    """A camera-like JPEG of about `size` bytes (noise does not compress)."""
    side = 1000
    while True:
        noise = Image.frombytes("RGB", (side * 4 // 3, side), os.urandom(side * 4 // 3 * side * 3))
        out = io.BytesIO()
        noise.save(out, "JPEG", quality=95)
        if out.tell() >= size:
            return out.getvalue()
        side = int(side * (size / out.tell()) ** 0.5) + 50


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
                     f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/tips", body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 201:
        raise SystemExit(f"unexpected status {response.status}")
    return elapsed


def report(name: str, times: list[float]) -> None:
    ms = [t * 1000 for t in times]
    print(f"{name:<32} n={len(ms):<3} median {statistics.median(ms):8.1f} ms   "
          f"min {min(ms):8.1f} ms   max {max(ms):8.1f} ms")


PHOTO_GOAL = 1.2  # a photo submission ÷ (a submission without file + cleaning + sealing)


def in_process(photo: bytes, runs: int) -> tuple[float, float]:
    """Median seconds to clean the photo's metadata and to seal it with age, in this process,
    as a submission does both (portal/intake/sanitize, portal/security/crypto)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from portal.intake.sanitize import clean
    from portal.intake.sanitize.kinds import JPEG
    from portal.security import crypto

    recipient = crypto.generate_keypair().recipient
    cleaning, sealing = [], []
    for _ in range(runs):
        started = time.perf_counter()
        clean(io.BytesIO(photo), JPEG, keep_location=False, max_in_memory=len(photo) * 2,
              sink=io.BytesIO())
        cleaning.append(time.perf_counter() - started)
        started = time.perf_counter()
        crypto.seal(photo, [recipient])
        sealing.append(time.perf_counter() - started)
    return statistics.median(cleaning), statistics.median(sealing)


def timed_tips(runs: int, photo_runs: int, photo: bytes) -> tuple[list[float], list[float]]:
    """Seconds of each POST /api/v1/tips without a file and with `photo`, after a warm-up,
    against a fresh server."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), port, os.environ.get("DATABASE_URL"))
        try:
            text_body = json.dumps({"narrative": "bench tip", "county": "yanji",
                                    "category": "P01"}).encode()
            post(port, text_body, "application/json")  # warm-up
            plain = [post(port, text_body, "application/json") for _ in range(runs)]
            body, content_type = multipart({"narrative": "bench tip with photo"},
                                           [("photo.jpg", photo)])
            with_photo = [post(port, body, content_type) for _ in range(photo_runs)]
        finally:
            stop_server(server)
    return plain, with_photo


def figures(runs: int = 10, photo_runs: int = 5, photo_mb: float = 20) -> list[Figure]:
    photo = photo_of_about(int(photo_mb * MB))
    plain_times, photo_times = timed_tips(runs, photo_runs, photo)
    plain, with_photo = statistics.median(plain_times), statistics.median(photo_times)
    cleaning, sealing = in_process(photo, photo_runs)
    ratio = with_photo / (plain + cleaning + sealing)
    return [Figure(f"{len(photo) / MB:.0f} MB photo tip ÷ (tip + clean + seal, medians)",
                   f"{with_photo * 1000:.0f} ÷ ({plain * 1000:.0f} + {cleaning * 1000:.0f} + "
                   f"{sealing * 1000:.0f}) ms = {ratio:.2f}", f"<= {PHOTO_GOAL}",
                   ratio <= PHOTO_GOAL)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--photo-runs", type=int, default=5)
    parser.add_argument("--photo-mb", type=float, default=20)
    args = parser.parse_args()
    photo = photo_of_about(int(args.photo_mb * MB))
    plain, with_photo = timed_tips(args.runs, args.photo_runs, photo)
    report("POST /api/v1/tips, no file", plain)
    report(f"POST /api/v1/tips, {len(photo) / MB:.1f} MB photo", with_photo)
    db = os.environ.get("DATABASE_URL", "sqlite")
    print(f"database: {db.split('@')[-1]}; server: gunicorn (gunicorn.conf.py), loopback")


if __name__ == "__main__":
    main()
