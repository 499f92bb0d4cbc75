"""The 案件移送书 PDF: its text, its embedded fonts, byte-for-byte reproducibility, its layout.

The fonts come from Debian (fonts-arphic-uming, fonts-wqy-zenhei): without them rendering fails
with FontNotFound, naming the package, rather than these tests being skipped.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from referral import letter
from referral.letter import (
    FontNotFound,
    LetterData,
    LetterIncomplete,
    Material,
    chinese_date,
    render_transfer_letter,
)

ROOT = Path(__file__).resolve().parents[2]
LEGAL_BASIS = "《中华人民共和国刑法》第三百三十八条"
CHECKPOINT = (
    "qingliu-audit/v1 size=18234 root=7f3a9c0e5b1d2a4f6e8c0b9d7a5f3e1c2b4d6f8a0c9e7b5d3f1a2c4e6b8d"
    "0f9a sig=ed25519:Zm9vYmFyYmF6cXV4cXV1eHh5enp5eHd2dXRzcnFwb25tbGtqaWhnZmVkY2JhMDEyMzQ1Njc4OQ=="
)
CLOSING_PUNCTUATION = tuple("，。、；：？！）》」』〕】”’")


def sample() -> LetterData:
    """A referral with the materials of 17号 第6条 (also loaded by the subprocess test)."""
    return LetterData(
        case_number="延州环移〔2026〕第17号",
        agency="延边朝鲜族自治州生态环境局",
        receiving_body="延边朝鲜族自治州公安局",
        copy_to="延边朝鲜族自治州人民检察院",
        case_title="某化工有限公司涉嫌污染环境案",
        offence="污染环境罪",
        legal_basis=LEGAL_BASIS,
        facts=(
            "该公司于2026年8月至10月间，通过暗管向布尔哈通河排放含重金属的生产废水，"
            "经监测，外排废水中总铬浓度超过国家污染物排放标准十倍以上"
        ),
        officer_names=("金明哲", "李雪梅"),
        contact_phone="0433-2512345",
        materials=(
            Material("案件调查报告", 1),
            Material("现场检查（勘察）笔录", 3),
            Material("询问笔录", 5, "当事人及证人"),
            Material("采样记录", 2),
            Material("涉案物品清单", 1),
            Material("照片、音像资料及清单", 24, "照片22张、视频2段"),
            Material("监测/检验报告", 2, "延州环监字〔2026〕第88号"),
            Material("认定意见", 1),
            Material("行政处罚决定书", 1),
        ),
        issued_on=date(2026, 11, 27),
        checkpoint=CHECKPOINT,
    )


def sha256(data: LetterData) -> str:
    return hashlib.sha256(render_transfer_letter(data)).hexdigest()


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_transfer_letter(sample())


def test_renders_an_a4_pdf(rendered: bytes) -> None:
    assert rendered.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(rendered))
    assert len(reader.pages) == 2  # the letter, then its 附件 (the list of materials)
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (
            595, 842,
        )
    assert reader.metadata is not None
    assert reader.metadata.title == "案件移送书 延州环移〔2026〕第17号"


def test_text_can_be_extracted(rendered: bytes) -> None:
    first, attachment = pages_text(rendered)
    # As extracted, line by line:
    for needle in ("案件移送书", "延州环移〔2026〕第17号", "延边朝鲜族自治州公安局：", "污染环境罪",
                   "延边朝鲜族自治州生态环境局", "二〇二六年十一月二十七日", "（印章）"):
        assert needle in first, needle
    for needle in ("移送材料清单", "序号", "材料名称", "数量", "备注", "案件调查报告",
                   "现场检查（勘察）笔录", "照片、音像资料及清单", "行政处罚决定书",
                   "抄送：延边朝鲜族自治州人民检察院"):
        assert needle in attachment, needle
    # Phrases that may wrap, with the line breaks taken out:
    body = first.replace("\n", "")
    for needle in (LEGAL_BASIS, f"涉嫌构成{LEGAL_BASIS}规定的污染环境罪",
                   "《行政执法机关移送涉嫌犯罪案件的规定》第三条", "现将该案移送你单位",
                   "本案专案组成员：金明哲、李雪梅；联系电话：0433-2512345。",
                   "附件：移送材料清单（共9项）"):
        assert needle in body, needle
    assert CHECKPOINT.replace(" ", "") in attachment.replace("\n", "").replace(" ", "")


def test_no_line_starts_with_closing_punctuation(rendered: bytes) -> None:
    lines = [line.strip() for text in pages_text(rendered) for line in text.splitlines()]
    assert not [line for line in lines if line.startswith(CLOSING_PUNCTUATION)]


def test_the_same_data_gives_the_same_bytes() -> None:
    assert render_transfer_letter(sample()) == render_transfer_letter(sample())


def test_the_same_bytes_in_other_processes(rendered: bytes) -> None:
    script = (
        "import hashlib, importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('letter_sample', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(module.sha256(module.sample()))\n"
    )
    digests = set()
    for seed in ("1", "2"):  # different hash seeds: no set or dict order leaks into the bytes
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", script, __file__],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        digests.add(result.stdout.strip())
    assert digests == {hashlib.sha256(rendered).hexdigest()}


def test_different_data_gives_different_bytes(rendered: bytes) -> None:
    base = sample()
    others = [
        replace(base, contact_phone="0433-2512346"),
        replace(base, issued_on=date(2026, 11, 28)),
        replace(base, copy_to=None),
        replace(base, checkpoint=None),
        replace(base, materials=(*base.materials, Material("其他材料", 1))),
    ]
    digests = {hashlib.sha256(rendered).hexdigest(), *(sha256(other) for other in others)}
    assert len(digests) == len(others) + 1


def test_the_fonts_are_embedded_subsets_with_unicode_maps(rendered: bytes) -> None:
    reader = PdfReader(io.BytesIO(rendered))
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            fonts[font["/BaseFont"]] = font
    assert fonts
    for name, font in fonts.items():
        assert name.startswith("/MPDFAA+"), name  # a subset, under a fixed tag
        assert "/ToUnicode" in font, name
        for descendant in font["/DescendantFonts"]:
            descriptor = descendant.get_object()["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, name


def test_fixed_creation_date_and_document_id(rendered: bytes) -> None:
    reader = PdfReader(io.BytesIO(rendered))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20261127000000+08'00'"
    first, second = reader.trailer["/ID"]
    assert first == second
    assert b"ModDate" not in rendered


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 11, 27), "二〇二六年十一月二十七日"),
    (date(2026, 10, 1), "二〇二六年十月一日"),
    (date(2026, 12, 31), "二〇二六年十二月三十一日"),
    (date(2026, 1, 10), "二〇二六年一月十日"),
    (date(2030, 2, 20), "二〇三〇年二月二十日"),
    (date(2009, 9, 9), "二〇〇九年九月九日"),
])
def test_chinese_date(day: date, expected: str) -> None:
    assert chinese_date(day) == expected


def test_long_facts_run_onto_another_page() -> None:
    facts = "经查，该公司长期通过暗管、渗井、渗坑向外环境排放含重金属的生产废水，" * 40
    pages = pages_text(render_transfer_letter(replace(sample(), facts=facts)))
    assert len(pages) >= 3  # the letter over two pages at least, then the 附件
    assert "延州环移〔2026〕第17号" in pages[0]
    signed = next(number for number, text in enumerate(pages) if "（印章）" in text)
    assert signed >= 1
    assert "二〇二六年十一月二十七日" in pages[signed]
    assert "案件调查报告" in pages[-1]


@pytest.fixture(scope="module")
def fits() -> list[tuple[float, int | None]]:
    """What letter._fit decided for each render in the test below."""
    return []


# Body lengths (in repeats of one sentence) where, with these fonts, the signature fits as set,
# fits once the leading is tightened (8.0 mm, 7.4 mm), fits only with the last lines carried over,
# and fits on the second page under text that spilled over anyway.
@pytest.mark.parametrize("repeat", [10, 19, 22, 24, 28])
def test_the_seal_never_stands_on_a_page_alone(
    repeat: int, fits: list[tuple[float, int | None]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    fit = letter._fit

    def recording(*args: object) -> tuple[float, int | None]:
        fits.append(fit(*args))  # type: ignore[arg-type]
        return fits[-1]

    monkeypatch.setattr(letter, "_fit", recording)
    facts = "该公司通过暗管排放含重金属的生产废水。" * repeat
    pages = pages_text(render_transfer_letter(replace(sample(), facts=facts)))
    signed = next(text for text in pages if "（印章）" in text)
    # GB/T 9704: the page with the seal carries text of the letter.
    assert "附件：移送材料清单" in signed
    assert "二〇二六年十一月二十七日" in signed


def test_the_cases_above_cover_each_way_of_fitting(fits: list[tuple[float, int | None]]) -> None:
    assert len(fits) == 5
    leadings = {leading for leading, _ in fits}
    assert len(leadings) == 3  # the usual leading and both tighter ones
    assert any(carry is not None for _, carry in fits)


@pytest.mark.parametrize("officers", [(), ("金明哲",), ("金明哲", "  ")])
def test_a_case_team_has_at_least_two_officers(officers: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="two"):
        render_transfer_letter(replace(sample(), officer_names=officers))


def test_materials_are_required() -> None:
    with pytest.raises(ValueError, match="materials"):
        render_transfer_letter(replace(sample(), materials=()))
    with pytest.raises(ValueError, match="count"):
        render_transfer_letter(replace(sample(), materials=(Material("询问笔录", 0),)))


def test_what_is_missing_is_named_for_the_page_to_say() -> None:
    with pytest.raises(LetterIncomplete) as missing:
        render_transfer_letter(replace(sample(), facts="  "))
    assert missing.value.field == "facts"
    with pytest.raises(LetterIncomplete) as missing:
        render_transfer_letter(replace(sample(), materials=()))
    assert missing.value.field == "materials"


def test_a_draft_is_marked_on_every_page_and_shows_what_is_missing(rendered: bytes) -> None:
    data = replace(sample(), materials=(), facts="", contact_phone="", officer_names=("金明哲",))
    texts = pages_text(render_transfer_letter(data, draft=True))
    assert len(texts) >= 2 and all("样稿" in text for text in texts)
    whole = "".join(texts)
    assert "（待补）" in whole and "审计日志检查点" not in whole  # a draft is issued under nothing
    assert "样稿" not in "".join(pages_text(rendered))


def test_a_hangul_name_falls_back_to_the_other_font() -> None:
    pdf = render_transfer_letter(replace(sample(), officer_names=("金明哲", "김철수")))
    assert "金明哲、김철수" in pages_text(pdf)[0]


def test_a_missing_font_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = replace(letter.BODY_FONT, files=("/nonexistent/uming.ttc",))
    monkeypatch.setattr(letter, "BODY_FONT", missing)
    with pytest.raises(FontNotFound, match="fonts-arphic-uming"):
        render_transfer_letter(sample())


def test_the_referral_domain_does_not_import_flask() -> None:
    script = "import sys, referral.letter; print('flask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


HIDDEN = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
          "\u2069", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\ufeff", "\x00", "\x1b",
          "\x7f", "\x85")


def test_bidi_and_zero_width_characters_never_reach_the_letter() -> None:
    """Officers and reporters type them (pasted from a chat, or on purpose: U+202E shows
    "0433-2512345" as "5432152-3340"); the letter draws what the text says, without them."""
    def spiked(text: str) -> str:
        return "\u202e\u200b" + "\u2066".join(text) + "\ufeff\x00\u202c\x1b"

    data = sample()
    hostile = replace(
        data, receiving_body=spiked(data.receiving_body), case_title=spiked(data.case_title),
        facts=spiked(data.facts), contact_phone=spiked(data.contact_phone),
        officer_names=tuple(spiked(n) for n in data.officer_names),
        copy_to=spiked(data.copy_to or ""),
        materials=tuple(replace(m, name=spiked(m.name), note=spiked(m.note))
                        for m in data.materials))
    pdf = render_transfer_letter(hostile)
    text = "".join(pages_text(pdf))
    found = [hex(ord(c)) for c in HIDDEN if c in text]
    assert not found
    body = text.replace("\n", "")
    assert "本案专案组成员：金明哲、李雪梅；联系电话：0433-2512345" in body
    assert "某化工有限公司涉嫌污染环境案" in body
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None and reader.metadata.subject == data.case_title
    # A field of nothing but controls is an empty one: named, as any missing field.
    with pytest.raises(LetterIncomplete) as missing:
        render_transfer_letter(replace(data, contact_phone="\u202e\u200b\u2069"))
    assert missing.value.field == "contact_phone"
