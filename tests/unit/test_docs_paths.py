"""Every file the README and docs/ name exists, so that moving a module cannot leave the
documentation pointing at nothing (issue 12: the packages by domain moved most of them).

Two kinds of names are checked:
* a path from the top of the checkout, `portal/intake/receipts.py` or `auditlog/` (with or without
  backquotes): it must exist; `static/errors/*.html` must match a file; a placeholder such as
  `checkpoints/<size>.note` or `{zh,ko,en}` only needs the folder before it;
* a short name in backquotes that follows such a path on the same line, as in
  "`portal/web/http.py`, `ratelimit.py`": it names a file next to that path, or in it when the
  path is a folder ("| `portal/intake/` | … `schema.py` |"), and must exist there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FOLDERS = ("portal", "auditlog", "referral", "models", "tests", "bench", "deploy", "docs",
           "templates", "static", "migrations", r"\.ci")
# A path from the top: not inside a longer name or a URL (…/docs/… of a web page).
FULL_PATH = re.compile(r"(?<![\w/.<>-])(?:" + "|".join(FOLDERS) + r")/[\w./<>*{},-]*")
SHORT_NAME = re.compile(r"`([\w-]+(?:\.\w+)+|[\w.-]+/)`")  # a file name or a folder/


def named_paths(text: str) -> list[tuple[int, str, list[Path]]]:
    """(line number, the name as written, where it may point) for every path `text` names."""
    found: list[tuple[int, str, list[Path]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        events = sorted([(m.start(), "full", m.group(0)) for m in FULL_PATH.finditer(line)]
                        + [(m.start(1), "short", m.group(1)) for m in SHORT_NAME.finditer(line)])
        near: list[Path] = []  # where a short name after a full path may be
        for _, kind, name in events:
            if kind == "full":
                name = name.rstrip(".,:;)")
                found.append((number, name, [ROOT / name]))
                path = ROOT / name.rstrip("/")
                near = [path.parent, path] if name.endswith("/") else [path.parent]
            elif near and not FULL_PATH.fullmatch(name):
                found.append((number, name, [folder / name for folder in near]))
    return found


def exists(path: Path) -> bool:
    text = str(path)
    cut = min((text.index(c) for c in "<{" if c in text), default=None)
    if cut is not None:  # a placeholder: the folder before it
        return Path(text[:cut]).parent.is_dir()
    if "*" in text:
        return any(ROOT.glob(str(path.relative_to(ROOT))))
    return path.exists()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_named_path_exists(document: Path) -> None:
    missing = [f"{document.name}:{number}: {name}"
               for number, name, paths in named_paths(document.read_text(encoding="utf-8"))
               if not any(exists(path) for path in paths)]
    assert not missing, "\n".join(missing)


def test_the_check_sees_both_kinds_of_name() -> None:
    text = ("| `portal/web/http.py`, `nothere.py` | see portal/nothere/x.py and `auditlog/` |\n"
            "| `portal/intake/` | `schema.py`, `web/`, `sanitize.py`, `MAX_SIZE` |\n"
            "`tests/unit/`, `functional/`; checkpoints `auditlog/<size>.note`\n")
    names = {name: any(exists(path) for path in paths) for _, name, paths in named_paths(text)}
    assert names == {"portal/web/http.py": True, "nothere.py": False,
                     "portal/nothere/x.py": False, "auditlog/": True, "portal/intake/": True,
                     "schema.py": True, "web/": True, "sanitize.py": False, "tests/unit/": True,
                     "functional/": True, "auditlog/<size>.note": True}
