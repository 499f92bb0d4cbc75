"""The 案件移送书: the letter with which the bureau refers a suspected crime to public security.

《环境保护行政执法与刑事司法衔接工作办法》(环环监〔2017〕17号) 第6条 lists what a referral sends:
the 案件移送书 names the receiving body, the suspected offence and its legal basis, the case
officers and how to reach them, and the materials that go with it, under the agency's seal. This
module lays that letter out as an A4 PDF in the manner of a Chinese official document (GB/T 9704:
title, 文号, 主送机关, body, 署名, 成文日期, 印章, 版记).

The CJK fonts (AR PL UMing from fonts-arphic-uming for the text, WenQuanYi Zen Hei from
fonts-wqy-zenhei for the headings) are embedded as subsets, with a ToUnicode map so that the text
can be searched and copied; a character the one lacks (a Hangul name, say) is taken from the
other. The output is reproducible byte for byte: the same LetterData gives the same bytes in
every process (the creation date is taken from the date of issue, the document ID is a hash of
the content, the subset tag is fixed, no font timestamp is rewritten).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTCollection
from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from referral.calendar import PREFECTURE_ZONE
from referral.filenames import plain_text


@dataclass(frozen=True)
class FontChoice:
    package: str  # the Debian package that ships the file
    files: tuple[str, ...]  # where Debian (and, as a courtesy, Fedora/Arch) put it
    face: str  # the face to use inside a .ttc collection


# TrueType-outline fonts: fpdf2 embeds them as CIDFontType2 with Identity-H and a ToUnicode map,
# which every reader (pypdf included) extracts text from. (Noto CJK is CFF-flavoured: fpdf2
# embeds it as CIDFontType0 behind an embedded encoding CMap, from which pypdf extracts spaced-out
# or wrong text, so it is not used here.)
BODY_FONT = FontChoice(
    package="fonts-arphic-uming",  # 明体/宋体 for the text, as official documents are set
    files=(
        "/usr/share/fonts/truetype/arphic/uming.ttc",
        "/usr/share/fonts/truetype/arphic-uming/uming.ttc",
        "/usr/share/fonts/cjkuni-uming/uming.ttc",
        "/usr/share/fonts/TTF/uming.ttc",
    ),
    face="AR PL UMing CN",
)
HEADING_FONT = FontChoice(
    package="fonts-wqy-zenhei",  # 黑体 for the title and the 附件 label
    files=(
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
        "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
        "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    ),
    face="WenQuanYi Zen Hei",
)

_DIGITS = "〇一二三四五六七八九"
_SEAL_TEXT = "（印章）"
# Characters that must not begin a line (避头) and that must not end one (避尾).
_NO_LINE_START = frozenset("，。、；：？！）》」』〕】〉”’…—·%,.;:?!)]}")
_NO_LINE_END = frozenset("（《「『〔【〈“‘([{")

# Layout, in millimetres and points (GB/T 9704 side margins; 四号 body, 二号 title).
_MARGIN_TOP, _MARGIN_BOTTOM, _MARGIN_LEFT, _MARGIN_RIGHT = 30.0, 25.0, 28.0, 26.0
_TITLE_PT, _SUBTITLE_PT, _BODY_PT, _TABLE_PT, _SMALL_PT, _FOOTER_PT = 22, 16, 14, 12, 7, 10
_BODY_LEADINGS = (8.6, 8.0, 7.4)  # mm per body line: the usual one first, then tighter ones
_TABLE_LEADING = 6.4
_COPY_LEADING = 8.0
_SMALL_LEADING = 3.2
_SEAL_RADIUS = 21.0
_SIGNATURE_GAP = 6.0  # between the text and the top of the seal
_SIGNATURE_HEIGHT = _SIGNATURE_GAP + 2 * _SEAL_RADIUS
_KEEP_WITH_SIGNATURE = 2  # body lines that go over to a new page with the signature
_BODY, _HEADING = "body", "heading"  # fpdf2 family names


class FontNotFound(RuntimeError):
    """No CJK font file to embed was found on this machine."""


class LetterIncomplete(ValueError):
    """The letter lacks something 17号 第6条 requires; `field` names it (officer_names,
    materials, contact_phone, facts …) so that a page can say which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Material:
    name: str  # e.g. "案件调查报告", "询问笔录", "监测/检验报告"
    count: int  # number of items or pages
    note: str = ""


@dataclass(frozen=True)
class LetterData:
    case_number: str  # e.g. "延州环移〔2026〕第17号"
    agency: str  # 移送机关
    receiving_body: str  # 主送: the public security organ
    copy_to: str | None  # 抄送, e.g. the people's procuratorate
    case_title: str  # e.g. "某化工有限公司涉嫌污染环境案"
    offence: str  # e.g. "污染环境罪"
    legal_basis: str  # e.g. "《中华人民共和国刑法》第三百三十八条"
    facts: str  # a summary paragraph
    officer_names: tuple[str, ...]  # the 专案组, at least two
    contact_phone: str
    materials: tuple[Material, ...]
    issued_on: date
    checkpoint: str | None = None  # an audit-log checkpoint line, printed small at the bottom


def chinese_date(day: date) -> str:
    """A date as an official document writes it: 2026-10-01 → 二〇二六年十月一日."""
    year = "".join(_DIGITS[int(digit)] for digit in f"{day.year:04d}")
    return f"{year}年{_chinese_number(day.month)}月{_chinese_number(day.day)}日"


def _chinese_number(n: int) -> str:
    """1..99 in Chinese numerals: 10 → 十, 11 → 十一, 20 → 二十, 31 → 三十一."""
    if not 1 <= n <= 99:
        raise ValueError(f"expected 1..99, got {n}")
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    head = "" if tens == 1 else _DIGITS[tens]
    return f"{head}十{_DIGITS[ones] if ones else ''}"


def find_font(choice: FontChoice) -> Path:
    """The font file of a choice, from the known locations; FontNotFound names the package."""
    for name in choice.files:
        path = Path(name)
        if path.is_file():
            return path
    raise FontNotFound(
        f"no {choice.face} font in {', '.join(choice.files)}: install the Debian package "
        f"{choice.package} (apt-get install {choice.package})"
    )


@lru_cache(maxsize=8)
def _face_index(path: Path, face: str) -> int:
    """Which face of a .ttc collection is the named one (0 for a single font)."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    collection = TTCollection(str(path), lazy=True)
    try:
        for index, font in enumerate(collection.fonts):
            if font["name"].getDebugName(1) == face:
                return index
    finally:
        collection.close()
    return 0


def render_transfer_letter(data: LetterData, *, draft: bool = False) -> bytes:
    """The 案件移送书 as PDF bytes; the same data gives the same bytes.

    Page 1 on is the letter, ending with the 署名, 成文日期 and the seal's place; the list of
    materials follows as its 附件 on a page of its own (GB/T 9704: 附件另面编排), and the 版记
    (抄送) and the audit checkpoint sit at the foot of the last page.

    A draft (the preview a head reads before approving) is marked 样稿 on every page, carries no
    checkpoint, and shows what is still missing as （待补） instead of refusing.
    """
    data = _plain(data)  # before the checks: a field of bidi controls alone is an empty one
    if draft:
        data = _draft_of(data)
    else:
        _validate(data)
    pdf = _LetterPDF(draft=draft)
    for family, choice in ((_BODY, BODY_FONT), (_HEADING, HEADING_FONT)):
        path = find_font(choice)
        pdf.add_font(family, "", path, collection_font_number=_face_index(path, choice.face))
    pdf.set_fallback_fonts([_HEADING, _BODY])
    _set_metadata(pdf, data)
    pdf.add_page()
    _write_heading(pdf, data)
    _write_letter(pdf, data)
    _write_attachment(pdf, data)
    _write_foot(pdf, data)
    subset_log = logging.getLogger("fontTools.subset")
    subset_log.addFilter(_quiet_bitmap_tables)
    try:
        return bytes(pdf.output())
    finally:
        subset_log.removeFilter(_quiet_bitmap_tables)


def _quiet_bitmap_tables(record: logging.LogRecord) -> bool:
    """Drop fontTools' notice that the fonts' BDF bitmap table is left out of the subset."""
    return "NOT subset" not in record.getMessage()


_TEXT_FIELDS = ("case_number", "agency", "receiving_body", "case_title", "offence",
                "legal_basis", "facts", "contact_phone")
_MISSING = "（待补）"
DRAFT_MARK = "样稿（预览）· 非正式文书"


def _plain(data: LetterData) -> LetterData:
    """Every text the letter draws, typed by officers or taken from a reporter, as plain text
    (filenames.plain_text): no bidi override turns a name or a number around on the printed
    page, no zero-width character hides in what a receiving body copies out of it."""
    # Any: the fields are named at run time, so no one field type describes the mapping.
    texts: dict[str, Any] = {field: plain_text(getattr(data, field)) for field in _TEXT_FIELDS}
    return replace(
        data, **texts,
        copy_to=plain_text(data.copy_to) if data.copy_to is not None else None,
        checkpoint=plain_text(data.checkpoint) if data.checkpoint is not None else None,
        officer_names=tuple(plain_text(name) for name in data.officer_names),
        materials=tuple(replace(m, name=plain_text(m.name), note=plain_text(m.note))
                        for m in data.materials))


def _validate(data: LetterData) -> None:
    officers = [name for name in data.officer_names if name.strip()]
    if len(officers) < 2:
        raise LetterIncomplete("officer_names", "a 专案组 has at least two officers: "
                               "officer_names needs two names")
    if not data.materials:
        raise LetterIncomplete("materials", "a referral lists its materials: materials is empty")
    for material in data.materials:
        if not material.name.strip() or material.count < 1:
            raise LetterIncomplete("materials", "a material needs a name and a count of at "
                                   f"least 1: {material!r}")
    for field in _TEXT_FIELDS:
        if not getattr(data, field).strip():
            raise LetterIncomplete(field, f"{field} is empty")


def _draft_of(data: LetterData) -> LetterData:
    """The data with （待补） wherever the final letter would refuse, and no checkpoint."""
    filled: dict[str, Any] = {  # Any: as in _plain, the fields are named at run time
        field: getattr(data, field) if getattr(data, field).strip() else _MISSING
        for field in _TEXT_FIELDS}
    officers = tuple(name for name in data.officer_names if name.strip())
    materials = tuple(m for m in data.materials if m.name.strip() and m.count >= 1)
    return replace(data, **filled, checkpoint=None,
                   officer_names=officers + (_MISSING,) * max(0, 2 - len(officers)),
                   materials=materials or (Material(_MISSING, 1),))


class _LetterPDF(FPDF):
    def __init__(self, *, draft: bool = False) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.draft = draft
        self.set_margins(_MARGIN_LEFT, _MARGIN_TOP, _MARGIN_RIGHT)
        self.set_auto_page_break(auto=True, margin=_MARGIN_BOTTOM)
        self.c_margin = 0

    def header(self) -> None:
        # A preview can never pass for the letter: 样稿 in red in the top margin of every page.
        if not self.draft:
            return
        self.set_y(_MARGIN_TOP - 16)
        self.set_font(_HEADING, "", _SUBTITLE_PT)
        self.set_text_color(200, 30, 30)
        self.cell(0, 8, DRAFT_MARK, align=Align.C)
        self.set_text_color(0)
        self.set_xy(self.l_margin, _MARGIN_TOP)

    def footer(self) -> None:
        # GB/T 9704 page number: "— 1 —", in the bottom margin.
        self.set_y(-_MARGIN_BOTTOM + 8)
        self.set_font(_BODY, "", _FOOTER_PT)
        self.cell(0, 5, f"— {self.page_no()} —", align=Align.C)

    @property
    def text_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    @property
    def bottom(self) -> float:
        return self.h - _MARGIN_BOTTOM


def _set_metadata(pdf: _LetterPDF, data: LetterData) -> None:
    # A fixed creation date (midnight of the day of issue, Beijing time) keeps the bytes, and the
    # document ID that fpdf2 hashes from them, the same on every run.
    pdf.set_creation_date(datetime.combine(data.issued_on, time(0, 0), tzinfo=PREFECTURE_ZONE))
    pdf.set_title(f"案件移送书 {data.case_number}{'（样稿）' if pdf.draft else ''}")
    pdf.set_subject(data.case_title)
    pdf.set_author(data.agency)
    pdf.set_creator("qingliu referral.letter")
    pdf.set_lang("zh-CN")


def _write_heading(pdf: _LetterPDF, data: LetterData) -> None:
    pdf.set_font(_HEADING, "", _TITLE_PT)
    pdf.set_char_spacing(4)
    pdf.cell(0, 14, "案件移送书", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_char_spacing(0)
    pdf.ln(3)
    pdf.set_font(_BODY, "", _BODY_PT)
    pdf.cell(0, _BODY_LEADINGS[0], data.case_number.strip(), align=Align.C,
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)


def _sentence(text: str) -> str:
    """Text as one or more sentences: trimmed, ending with a full stop."""
    text = " ".join(text.split())
    return text if text.endswith(("。", "！", "？", "…")) else f"{text.rstrip('，；、,.;')}。"


def _letter_paragraphs(data: LetterData) -> list[tuple[str, int]]:
    """The letter's paragraphs, each with its first-line indent in characters."""
    officers = "、".join(name.strip() for name in data.officer_names if name.strip())
    return [
        (f"{data.receiving_body.strip()}：", 0),
        (
            f"我局在查处{data.case_title.strip()}过程中，发现{_sentence(data.facts)}"
            f"经审查，上述行为涉嫌构成{data.legal_basis.strip()}规定的{data.offence.strip()}。"
            "根据《中华人民共和国行政处罚法》第二十七条、《行政执法机关移送涉嫌犯罪案件的规定》"
            "第三条之规定，现将该案移送你单位，请依法审查，并将审查结果书面告知我局。",
            2,
        ),
        (f"本案专案组成员：{officers}；联系电话：{data.contact_phone.strip()}。", 2),
        (f"附件：移送材料清单（共{len(data.materials)}项）", 2),
    ]


def _write_letter(pdf: _LetterPDF, data: LetterData) -> None:
    """Salutation, body and signature, set so that the seal never stands on a page alone.

    GB/T 9704 wants the seal on a page that carries text: when the signature block does not fit
    under the text, the leading is tightened; failing that, the last lines go over with it.
    """
    pdf.set_font(_BODY, "", _BODY_PT)
    em = pdf.get_string_width("中")
    lines: list[tuple[str, float, float, bool]] = []  # text, indent, width, last of paragraph
    for text, indent in _letter_paragraphs(data):
        first_width = pdf.text_width - indent * em
        wrapped = _wrap(pdf, text, pdf.text_width, first_width=first_width)
        for number, line in enumerate(wrapped):
            lines.append((
                line,
                indent * em if number == 0 else 0.0,
                first_width if number == 0 else pdf.text_width,
                number == len(wrapped) - 1,
            ))
    leading, break_at = _fit(pdf, len(lines))
    for index, (line, offset, width, last) in enumerate(lines):
        if index == break_at or pdf.y + leading > pdf.bottom:
            pdf.add_page()
        spacing = 0.0
        if not last and len(line) > 1:
            slack = width - pdf.get_string_width(line)
            if 0 < slack < 2 * em:
                spacing = slack / (len(line) - 1) * pdf.k  # Tc is in points
        pdf.set_x(pdf.l_margin + offset)
        pdf.set_char_spacing(spacing)
        pdf.cell(width, leading, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_char_spacing(0)
    _write_signature(pdf, data, leading)


def _fit(pdf: _LetterPDF, count: int) -> tuple[float, int | None]:
    """The leading for count body lines, and the line to start a new page at, if any."""
    top, bottom = pdf.t_margin, pdf.bottom
    for leading in _BODY_LEADINGS:
        y = pdf.y
        for _ in range(count):
            if y + leading > bottom:
                y = top
            y += leading
        if y + _SIGNATURE_HEIGHT <= bottom:
            return leading, None
    return _BODY_LEADINGS[0], max(count - _KEEP_WITH_SIGNATURE, 1)


def _write_signature(pdf: _LetterPDF, data: LetterData, leading: float) -> None:
    """The 署名 over the 成文日期 (右空四字), the seal's place centred on them."""
    pdf.set_font(_BODY, "", _BODY_PT)
    issued = chinese_date(data.issued_on)
    agency = data.agency.strip()
    em = pdf.get_string_width("中")
    date_width = pdf.get_string_width(issued)
    date_right = pdf.w - pdf.r_margin - 4 * em
    centre_x = date_right - date_width / 2
    agency_width = min(pdf.get_string_width(agency), pdf.text_width)
    agency_x = min(max(centre_x - agency_width / 2, pdf.l_margin),
                   pdf.w - pdf.r_margin - agency_width)
    if pdf.y + _SIGNATURE_HEIGHT > pdf.bottom:  # only when no body line fits with it
        pdf.add_page()
    centre_y = pdf.y + _SIGNATURE_GAP + _SEAL_RADIUS
    pdf.set_xy(agency_x, centre_y - leading)
    pdf.cell(agency_width, leading, agency, align=Align.C)
    pdf.set_xy(date_right - date_width, centre_y)
    pdf.cell(date_width, leading, issued, align=Align.C)
    _seal_placeholder(pdf, centre_x, centre_y)
    pdf.set_xy(pdf.l_margin, centre_y + _SEAL_RADIUS)


def _seal_placeholder(pdf: _LetterPDF, x: float, y: float) -> None:
    """A dashed circle where the agency's seal goes (上不压正文, 下压成文日期)."""
    pdf.set_draw_color(200, 30, 30)
    pdf.set_line_width(0.4)
    pdf.set_dash_pattern(dash=1.6, gap=1.2)
    pdf.circle(x, y, _SEAL_RADIUS)
    pdf.set_dash_pattern()
    pdf.set_draw_color(0)
    pdf.set_text_color(200, 30, 30)
    pdf.set_font(_BODY, "", 10)
    width = pdf.get_string_width(_SEAL_TEXT)
    pdf.set_xy(x - width / 2, y - _SEAL_RADIUS + 4)
    pdf.cell(width, 5, _SEAL_TEXT, align=Align.C)
    pdf.set_text_color(0)


def _write_attachment(pdf: _LetterPDF, data: LetterData) -> None:
    """附件: the numbered list of materials, on a page of its own."""
    pdf.add_page()
    pdf.set_font(_HEADING, "", _BODY_PT)
    pdf.cell(0, _BODY_LEADINGS[0], "附件", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font(_HEADING, "", _SUBTITLE_PT)
    pdf.cell(0, 10, "移送材料清单", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_BODY, "", _TABLE_PT)
    pdf.cell(0, 7, f"（{data.case_number.strip()}）", align=Align.C,
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_draw_color(0)
    pdf.set_line_width(0.3)
    with pdf.table(
        col_widths=(14, 72, 18, 52),
        width=pdf.text_width,
        line_height=_TABLE_LEADING,
        text_align=(Align.C, Align.L, Align.C, Align.L),
        wrapmode=WrapMode.CHAR,
        padding=(1.6, 2),
        headings_style=FontFace(family=_HEADING, emphasis=""),
        cell_fill_mode=TableCellFillMode.NONE,
        first_row_as_headings=True,
        repeat_headings=1,
    ) as table:
        heading = table.row()
        for label in ("序号", "材料名称", "数量", "备注"):
            heading.cell(label, align=Align.C)
        for number, material in enumerate(data.materials, start=1):
            row = table.row()
            row.cell(str(number))
            row.cell(material.name.strip())
            row.cell(str(material.count))
            row.cell(material.note.strip())


def _write_foot(pdf: _LetterPDF, data: LetterData) -> None:
    """At the foot of the last page: the 版记 (抄送 between two rules), then the checkpoint."""
    copy_lines: list[str] = []
    if data.copy_to and data.copy_to.strip():
        pdf.set_font(_BODY, "", _BODY_PT)
        copy_lines = _wrap(pdf, f"抄送：{data.copy_to.strip()}。", pdf.text_width)
    check_lines: list[str] = []
    if data.checkpoint and data.checkpoint.strip():
        pdf.set_font(_BODY, "", _SMALL_PT)
        check_lines = _wrap(pdf, f"审计日志检查点：{' '.join(data.checkpoint.split())}",
                            pdf.text_width)
    copy_height = len(copy_lines) * _COPY_LEADING + 2 if copy_lines else 0.0
    check_height = len(check_lines) * _SMALL_LEADING + 2 if check_lines else 0.0
    if not copy_height + check_height:
        return
    if pdf.y + 6 + copy_height + check_height > pdf.bottom:
        pdf.add_page()
    y = pdf.bottom - check_height - copy_height
    if copy_lines:
        pdf.set_font(_BODY, "", _BODY_PT)
        pdf.set_line_width(0.35)
        pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
        pdf.set_y(y + 1)
        for line in copy_lines:
            pdf.cell(0, _COPY_LEADING, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.line(pdf.l_margin, pdf.y + 1, pdf.w - pdf.r_margin, pdf.y + 1)
    if check_lines:
        pdf.set_font(_BODY, "", _SMALL_PT)
        pdf.set_text_color(90)
        pdf.set_y(pdf.bottom - check_height + 2)
        for line in check_lines:
            pdf.cell(0, _SMALL_LEADING, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0)


def _wrap(pdf: FPDF, text: str, width: float, *, first_width: float | None = None) -> list[str]:
    """Break text into lines no wider than width, character by character as Chinese is set.

    Runs of Latin letters and digits (a phone number, a hash) stay whole where they fit on a
    line; closing punctuation never starts a line and opening punctuation never ends one.
    """
    lines: list[str] = []
    limit = first_width if first_width is not None else width
    line = ""
    for token in _tokens(text):
        candidate = line + token
        if pdf.get_string_width(candidate) <= limit + 1e-6:
            line = candidate
            continue
        if not line:  # a token wider than a line: split it by characters
            for char in token:
                if line and pdf.get_string_width(line + char) > limit + 1e-6:
                    lines.append(line)
                    limit, line = width, ""
                line += char
            continue
        line, carried = _kinsoku(line, token)
        lines.append(line)
        limit, line = width, ""
        for char in carried:  # a carried run longer than a line is split by characters
            if line and pdf.get_string_width(line + char) > limit + 1e-6:
                lines.append(line)
                line = ""
            line += char
    if line or not lines:
        lines.append(line)
    return [entry.rstrip() for entry in lines]


def _kinsoku(line: str, token: str) -> tuple[str, str]:
    """Where to break before token: pull characters down so no line starts or ends badly."""
    carried = token.lstrip() if token.isspace() else token
    while line and len(line) > 1 and (
        (carried and carried[0] in _NO_LINE_START) or line[-1] in _NO_LINE_END
    ):
        line, carried = line[:-1], line[-1] + carried
    return line, carried.lstrip(" ")


def _tokens(text: str) -> list[str]:
    """Text as breakable units: each CJK character alone, each Latin word or space run whole."""
    tokens: list[str] = []
    run: list[str] = []  # the token being built, in linear time (100k typed characters)
    kind = ""  # of the run: "space", "latin", or "" for a character that stands alone
    for char in text:
        this = "space" if char.isspace() else ("latin" if char.isascii() else "")
        if run and this and this == kind:
            run.append(char)
            continue
        if run:
            tokens.append("".join(run))
        run, kind = [char], this
    if run:
        tokens.append("".join(run))
    return tokens
