"""The benchmarks run (`make bench`, bench/all.py): at toy sizes, every one gives its figures
against their goals, one line each. The figures themselves are not judged here: speed is
measured in bench/, not in timed tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bench


def test_every_benchmark_runs_and_gives_its_figures_against_their_goals(tmp_path) -> None:
    assert shutil.which("wrk"), "wrk is missing (Debian package wrk; .ci/run installs it)"
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "bench/all.py", "--tiny", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    figures = json.loads(out.read_text(encoding="utf-8"))
    measured = {f["name"]: f for f in figures if f["verdict"] != "not measured"}
    for expected in ("GET / ÷ hello world", "tips/s", "audit append", "verify_database",
                     "offline verify", "photo tip", "worker RSS during", "worker RSS after",
                     "queue page over HTTP, county", "queue page over HTTP, 州本级"):
        assert any(expected in name for name in measured), (expected, figures)
    for figure in measured.values():  # a number with its unit, and a verdict from it
        assert re.search(r"[0-9]", figure["measured"]), figure
        assert figure["verdict"] in ("ok", "short") and figure["goal"], figure
    # the table printed at the end has a line for every figure
    table = done.stdout.split("== issue 13's table", 1)[1]
    assert all(f["name"] in table for f in figures), table
