"""What blacking out a photo costs (portal/cases/redaction.py): burning boxes into a phone photo and
writing the PNG that goes into a referral package, and the preview the officer's page shows.

Run:  .venv/bin/python bench/redaction.py                 (a 12-megapixel JPEG, 5 runs)
      .venv/bin/python bench/redaction.py --width 4000 --height 3000 --runs 10
Prints the median, min and max in milliseconds of each step, and the sizes in bytes.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.cases.redaction import burn_boxes, preview_uri

BOXES = [(100, 100, 200, 150), (600, 500, 250, 300), (0, 900, 1000, 100)]


def photo(width: int, height: int) -> bytes:
    """A JPEG with detail everywhere (noise over a gradient), like a photo, not a flat colour."""
    noise = Image.effect_noise((width, height), 64).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(out, "JPEG", quality=90)
    return out.getvalue()


def timed(runs: int, step) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def line(name: str, times: list[float], size: int) -> str:
    return (f"{name:<28} median {statistics.median(times):8.1f} ms   min {min(times):8.1f}   "
            f"max {max(times):8.1f}   {size:>10,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    source = photo(args.width, args.height)
    print(f"photo {args.width}x{args.height} JPEG, {len(source):,} bytes, {len(BOXES)} boxes, "
          f"{args.runs} runs")
    burn_times, png = timed(args.runs, lambda: burn_boxes(source, BOXES))
    print(line("burn boxes → PNG", burn_times, len(png)))  # type: ignore[arg-type]
    preview_times, uri = timed(args.runs, lambda: preview_uri(png))  # type: ignore[arg-type]
    print(line("preview (page, with grid)", preview_times, len(uri)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
