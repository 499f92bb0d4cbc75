"""Every `# type: ignore` the type checker is told to skip says which error and why.

mypy itself refuses an ignore without its error code (`ignore-without-code`) and one that no
longer silences anything (`warn_unused_ignores`, pyproject.toml); the reason is ours to keep."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("portal", "models", "referral", "auditlog", "config.py")
# `# type: ignore[code]` and, after it, a comment saying why.
EXPLAINED = re.compile(r"# type: ignore\[[a-z-]+(, *[a-z-]+)*\]  # \S")


def unexplained(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), 1)
            if "# type: ignore" in line and not EXPLAINED.search(line)]


def _sources() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


@pytest.mark.parametrize(("line", "bad"), [
    ("x = f()  # type: ignore[arg-type]  # the stubs lag the library", False),
    ("x = f()  # type: ignore[arg-type]", True),
    ("x = f()  # type: ignore", True),
    ("x = f()  # type: ignore  # why", True),
    ("x = f()  # type: ignore[arg-type, union-attr]  # why", False),
    ("x = f()", False),
])
def test_the_rule(line: str, bad: bool) -> None:
    assert bool(unexplained(line)) is bad


def test_every_ignore_is_explained() -> None:
    sources = _sources()
    assert len(sources) > 50  # the packages were found
    problems = [f"{path.relative_to(ROOT)}:{number}" for path in sources
                for number in unexplained(path.read_text(encoding="utf-8"))]
    assert problems == []
