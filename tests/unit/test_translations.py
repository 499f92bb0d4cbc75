"""The Chinese (zh_Hans) and Korean (ko, 조선어) catalogs are complete and in sync with the source.

A new or changed English string fails these tests until the catalogs are refreshed and the new
entries translated. From the project root:

    .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext \\
        -o portal/translations/messages.pot --no-location --sort-output .
    .venv/bin/pybabel update -i portal/translations/messages.pot -d portal/translations \\
        --ignore-obsolete --no-fuzzy-matching

then fill in every empty msgstr in portal/translations/*/LC_MESSAGES/messages.po and run
`.venv/bin/pybabel compile -f -d portal/translations` (or `make translations`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES = ("zh_Hans", "ko")

# The options of the extract command above (the output file and the directory are added).
EXTRACT_OPTIONS = ("-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "--no-location",
                   "--sort-output")

HOW_TO_FIX = (
    "Run from the project root:\n"
    "  .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext "
    "-o portal/translations/messages.pot --no-location --sort-output .\n"
    "  .venv/bin/pybabel update -i portal/translations/messages.pot -d portal/translations "
    "--ignore-obsolete --no-fuzzy-matching\n"
    "then translate every empty msgstr in portal/translations/*/LC_MESSAGES/messages.po "
    "(zh_Hans and ko) and compile with `make translations`."
)

# A %-style placeholder with its conversion, e.g. %(name)s or %(max)d.
PLACEHOLDER = re.compile(r"%\(\w+\)[#0 +-]*\d*(?:\.\d+)?[a-zA-Z]")

Key = tuple[str | None, str | tuple[str, ...]]


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def _key(message) -> Key:
    return (message.context, message.id)


def _keys(catalog) -> set[Key]:
    return {_key(m) for m in catalog if m.id}


def _describe(keys: set[Key]) -> str:
    return "\n".join(f"  {key[1]!r}" + (f" (context {key[0]!r})" if key[0] else "")
                     for key in sorted(keys, key=repr))


def _forms(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def template():
    return _read(POT)


def test_template_matches_the_source(tmp_path: Path, template) -> None:
    extracted = tmp_path / "messages.pot"
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", *EXTRACT_OPTIONS,
         "-o", str(extracted), "."],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"pybabel extract failed:\n{result.stderr}"
    source = _keys(_read(extracted))
    committed = _keys(template)
    new = source - committed
    gone = committed - source
    assert not new and not gone, (
        "portal/translations/messages.pot is out of date with the source.\n"
        + (f"New strings without a translation:\n{_describe(new)}\n" if new else "")
        + (f"Strings no longer in the source:\n{_describe(gone)}\n" if gone else "")
        + HOW_TO_FIX
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_in_sync_with_the_template(locale: str, template) -> None:
    catalog = _read(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")
    missing = _keys(template) - _keys(catalog)
    extra = _keys(catalog) - _keys(template)
    obsolete = set(catalog.obsolete)
    assert not missing and not extra and not obsolete, (
        f"The {locale} catalog is out of sync with messages.pot.\n"
        + (f"Missing:\n{_describe(missing)}\n" if missing else "")
        + (f"Not in messages.pot:\n{_describe(extra)}\n" if extra else "")
        + (f"Obsolete (#~) entries:\n{_describe(obsolete)}\n" if obsolete else "")
        + HOW_TO_FIX
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_header(locale: str) -> None:
    catalog = _read(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")
    headers = dict(catalog.mime_headers)
    assert str(catalog.locale) == locale
    assert headers["Language"] == locale
    assert headers["Plural-Forms"] == "nplurals=1; plural=0;"
    assert "charset=utf-8" in headers["Content-Type"].lower()
    assert not catalog.fuzzy, f"the {locale} catalog header is marked fuzzy"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_string_is_translated(locale: str, template) -> None:
    catalog = _read(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")
    untranslated, fuzzy = set(), set()
    for original in template:
        if not original.id:
            continue
        message = catalog.get(original.id, context=original.context)
        if message is None:
            continue  # reported by test_catalog_is_in_sync_with_the_template
        if not all(form.strip() for form in _forms(message.string)):
            untranslated.add(_key(message))
        if message.fuzzy:
            fuzzy.add(_key(message))
    assert not untranslated and not fuzzy, (
        f"The {locale} catalog is incomplete.\n"
        + (f"Empty msgstr:\n{_describe(untranslated)}\n" if untranslated else "")
        + (f"Marked fuzzy (check the translation, then remove the flag):\n"
           f"{_describe(fuzzy)}\n" if fuzzy else "")
        + HOW_TO_FIX
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders(locale: str) -> None:
    catalog = _read(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")
    problems = []
    for message in catalog:
        if not message.id:
            continue
        expected = Counter()
        for form in _forms(message.id):
            expected |= _placeholders(form)
        for form in _forms(message.string):
            if form and _placeholders(form) != expected:
                problems.append(f"  {message.id!r}\n    -> {form!r}\n"
                                f"    expected {sorted(expected.elements())}, "
                                f"found {sorted(_placeholders(form).elements())}")
            last_id = _forms(message.id)[-1]
            if form and form.endswith("\n") != last_id.endswith("\n"):
                problems.append(f"  {message.id!r}\n    -> {form!r}\n"
                                "    the msgid and msgstr must both end, or both not end, "
                                "with a newline")
    assert not problems, f"Placeholders differ in the {locale} catalog:\n" + "\n".join(problems)


# The bureau's terms (issue 8's bilingual review): a translation that breaks one fails here.
# (pattern in the translation, why), per locale; `when` narrows to msgids matching a pattern.
GLOSSARY: dict[str, list[tuple[str, str, str]]] = {
    "ko": [
        (r"접수", r"(?i)^(?!.*receiv).*\baccept", "受理 (accept) is 수리, never 접수"),
        (r"(?<![가-힣])키(?![가-힣]*열쇠)(?=[는가를마도의로와\s.,:)]|$)", r".",
         "a key is 열쇠, never 키"),
        (r"감사원", r".", "auditor is 감사 담당 사업일군 (감사원 is a South Korean agency)"),
        (r"철회", r".", "撤案 is 사건취소 (the police cancel the case), not 철회"),
        (r"문의기록", r".", "询问笔录 is 조사질문기록"),
        (r"제시함", r".", "公安提示函 is not 제시함"),
        (r"본급", r"(?i)prefecture office|report", "州本级 reads 주 생태환경국 for citizens"),
        (r"폐기물|폐유", r".", "废物 is 페기물 (Yanbian norm)"),
        (r"(?<![가-힣])(?:이유|입안|연락|녹음|규율|열람)", r".",
         "Yanbian norms: 리유, 립안, 련락, 록음, 규률, 렬람"),
        (r"통상적인 이송 기관", r".", "the usual receiving body is 통상 이송받는 기관"),
        (r"[가-힣] 수 (?:있|없)", r".", "Yanbian spelling joins 수: 할수 있다, 볼수 없다"),
        (r"되었|하었", r".", "Yanbian spelling: 되였다"),
        (r"페이지", r".", "a page is 페지"),
        (r"재심의", r".", "复议 is 복의, as everywhere else in the catalog"),
        (r"당신", r".", "the portal addresses people as 귀하 (or leaves the pronoun out)"),
    ],
    "zh_Hans": [
        (r"已超期|超期", r".", "overdue is 逾期"),
        (r"^审计$", r"^Auditor$", "an auditor is 审计员 (审计 is the menu's name)"),
        (r"撤回", r".", "撤案 is the police cancelling a case, not 撤回"),
        (r"由州本级", r".", "citizens read 州生态环境局, not 州本级"),
    ],
}


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_use_the_bureau_terms(locale: str) -> None:
    catalog = _read(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")
    problems = []
    for message in catalog:
        if not message.id:
            continue
        for form in _forms(message.string):
            for pattern, when, why in GLOSSARY[locale]:
                if form and re.search(when, _forms(message.id)[0]) and re.search(pattern, form):
                    problems.append(f"  {message.id!r}\n    -> {form!r}\n    {why}")
    assert not problems, f"The {locale} catalog breaks the glossary:\n" + "\n".join(problems)


def test_withdrawn_is_not_the_word_for_a_cancelled_case() -> None:
    """撤案 is the police cancelling the case they opened: "case cancelled" in English too."""
    template = _read(POT)
    for message in template:
        if message.id and "撤案" in _forms(message.id)[0]:
            assert "withdr" not in _forms(message.id)[0].lower(), message.id
