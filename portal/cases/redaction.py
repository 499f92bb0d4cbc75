"""Blacking out, before a referral's package leaves the bureau, what in a tip's statement or in
one of its photos points at the reporter (issue 10: 举报人信息严格保密).

The bureau keeps the original; what it sends is a copy rendered again from the original and the
redactions each time, the same bytes each time, so the package stays reproducible. A phrase is
replaced, wherever it occurs, by as many "■" as it has characters (matched without regard to
width or case: "１３９" is "139", "ＡＢ" is "ab"); a rectangle is burned into the pixels of an
upright RGB copy, written as a PNG without any metadata, not laid over the picture.

The first half is plain Python over text and bytes (Pillow); the second, the officers' steps
(add, remove, read what is blacked out), takes a SQLAlchemy session and a Principal and is
checked and audited here; the package itself is built by portal/cases/referrals.py."""

from __future__ import annotations

import base64
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session

from auditlog.events import Actor as AuditActor
from auditlog.events import record
from models import Attachment, Redaction, Referral, ReferralTipFile, ReferralTipText, Tip
from models.base import utcnow
from portal.cases import referrals
from portal.intake.filing import open_meta
from portal.security import access, crypto
from portal.security.access import Principal
from portal.security.keys import unit_recipients
from referral.filenames import plain_text

BLACK = "■"
SCALE = 1000  # boxes are kept in thousandths of the image's width and height
MAX_PHRASES = 50  # in one redaction
MAX_PHRASE_CHARS = 200
MAX_BOXES = 50  # in one redaction
PREVIEW_PIXELS = 800
# The tip's content fields a statement carries, with the words the package uses for them. The
# identity block (name, phone, ID number, address) is never among them: it travels, if at all,
# sealed apart (portal/intake/identity.py, an approved "package" request).
STATEMENT_FIELDS = (("place", "地点"), ("occurred", "发生时间"),
                    ("responsible", "被举报单位或个人"), ("officials", "涉及的公职人员"),
                    ("narrative", "举报内容"))


class RedactionRefused(ValueError):
    """What cannot be blacked out as asked; `code` names why (the pages put it in words)."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


# ---------------------------------------------------------------------------------------------
# Text


def _fold(text: str) -> tuple[str, list[int]]:
    """`text` folded for matching (NFKC, then case-folded, character by character), and for each
    folded character the index of the character of `text` it comes from."""
    folded: list[str] = []
    owners: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKC", char).casefold():
            folded.append(part)
            owners.append(index)
    return "".join(folded), owners


def clean_phrases(lines: Iterable[str]) -> list[str]:
    """The phrases of a textarea (one a line), stripped, blank lines and repeats left out."""
    return list(dict.fromkeys(p for line in lines if (p := plain_text(line).strip())))


def redact_text(text: str, phrases: Iterable[str]) -> str:
    """`text` with every occurrence of every phrase replaced by "■" × its length; occurrences
    are found without regard to width or case (NFKC, case-folded), overlapping ones included."""
    folded, owners = _fold(text)
    hidden = [False] * len(text)
    for phrase in phrases:
        needle = _fold(phrase.strip())[0]
        if not needle:
            continue
        start = folded.find(needle)
        while start >= 0:
            for position in range(start, start + len(needle)):
                hidden[owners[position]] = True
            start = folded.find(needle, start + 1)
    return "".join(BLACK if hide else char for char, hide in zip(text, hidden, strict=True))


def missing_phrases(text: str, phrases: Iterable[str]) -> list[str]:
    """The phrases that occur nowhere in `text` (a typo would black out nothing)."""
    folded = _fold(text)[0]
    return [p for p in phrases if _fold(p)[0] not in folded]


def statement_text(tip_id: int, content: dict, phrases: Sequence[str] = ()) -> str:
    """A tip's statement as the package's text file carries it: its content fields (never the
    reporter's identity), each value redacted."""
    lines = [f"举报内容（举报 #{tip_id}）", ""]
    for key, label in STATEMENT_FIELDS:
        value = plain_text(str(content.get(key) or "")).strip()
        if not value:
            continue
        value = redact_text(value, phrases)
        lines += [f"{label}：", value, ""] if key == "narrative" else [f"{label}：{value}"]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# Images


def check_box(box: Sequence[object]) -> tuple[int, int, int, int]:
    """A box (x, y, width, height) in thousandths of the image, whole and inside it."""
    numbers = [v for v in box if isinstance(v, int) and not isinstance(v, bool)]
    if len(box) != 4 or len(numbers) != 4:
        raise RedactionRefused("box_not_numbers",
                               "a box is four whole numbers: x, y, width, height")
    x, y, width, height = numbers
    if width <= 0 or height <= 0:
        raise RedactionRefused("box_empty", "a box needs a width and a height above 0")
    if x < 0 or y < 0 or x + width > SCALE or y + height > SCALE:
        raise RedactionRefused("box_outside",
                               f"a box must lie within the image: 0 to {SCALE} thousandths")
    return x, y, width, height


def _decode(image_bytes: bytes) -> Image.Image:
    """The image's first frame, turned upright as its EXIF says, as RGB pixels with nothing of
    the file around them (no EXIF, ICC profile or text chunks come along)."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as source:
            upright = ImageOps.exif_transpose(source)
            rgb = upright.convert("RGB")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise RedactionRefused("image_unreadable", "the image cannot be read") from error
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def _pixels(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixel rectangle (left, top, right, bottom) a box covers: every pixel it touches."""
    x, y, width, height = box
    w, h = size
    return (x * w // SCALE, y * h // SCALE, -(-(x + width) * w // SCALE),
            -(-(y + height) * h // SCALE))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # No pnginfo, exif or icc_profile given. Level 1: a 12-megapixel photo is written in about
    # a quarter of level 6's time and, photos being noisy, no larger (bench/redaction.py).
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def burn_boxes(image_bytes: bytes, boxes: Iterable[Sequence[object]]) -> bytes:
    """The image with each box (x, y, width, height in thousandths) painted solid black into
    its pixels, as a PNG without metadata; the same input gives the same bytes. Raises
    RedactionRefused for a box that is empty or outside the image, or an unreadable image."""
    checked = [check_box(box) for box in boxes]
    image = _decode(image_bytes)
    for box in checked:
        image.paste((0, 0, 0), _pixels(box, image.size))
    return _png(image)


def preview_uri(png: bytes, *, grid: bool = True) -> str:
    """A redacted image scaled down for the page, with a grid every 10 % (the officer reads the
    numbers to type off it), as a PNG data URI: only what goes out reaches the browser."""
    image = _decode(png)
    image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
    if grid:
        draw = ImageDraw.Draw(image)
        w, h = image.size
        for tenth in range(1, 10):
            x, y = w * tenth // 10, h * tenth // 10
            draw.line([(x, 0), (x, h)], fill=(255, 0, 255), width=1)
            draw.line([(0, y), (w, y)], fill=(255, 0, 255), width=1)
            draw.text((x + 2, 2), str(tenth * 10), fill=(255, 0, 255))
            draw.text((2, y + 2), str(tenth * 10), fill=(255, 0, 255))
    return "data:image/png;base64," + base64.b64encode(_png(image)).decode()


_PERCENT = re.compile(r"\s*([0-9]{1,3}(?:[.,][0-9]{1,6})?)\s*%?\s*")


def percent_box(x: str, y: str, width: str, height: str) -> tuple[int, int, int, int]:
    """A box typed in percent of the image (ASCII digits, decimals allowed) in thousandths,
    checked."""
    matches = [_PERCENT.fullmatch(v) for v in (x, y, width, height)]
    numbers = [m.group(1) for m in matches if m is not None]
    if len(numbers) != 4:
        raise RedactionRefused("box_not_numbers", "a box is four numbers")
    return check_box([round(float(n.replace(",", ".")) * SCALE / 100) for n in numbers])


# ---------------------------------------------------------------------------------------------
# The officers' steps: what is blacked out of a referral's materials before hand-over


@dataclass(frozen=True)
class RedactionView:
    id: int
    count: int
    phrases: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    created_at: datetime
    created_by_id: int


@dataclass(frozen=True)
class TargetView:
    """One tip statement or image of a referral, as the redaction page shows it."""

    referral: Referral
    tip_id: int
    attachment: Attachment | None  # None: the tip's statement
    filename: str | None
    chosen: bool  # goes with the package (chosen at "submit")
    editable: bool  # the package is not built yet and this person is on the case team
    redactions: list[RedactionView]
    text: str | None = None  # the statement, as it goes out
    preview: str | None = None  # the image, as it goes out (a data URI)


def open_spec(row: Redaction, identities: Sequence[str]) -> dict:
    spec = json.loads(crypto.open_sealed(row.spec, identities))
    return spec if isinstance(spec, dict) else {}


def phrases_of(specs: Iterable[dict]) -> list[str]:
    return [str(p) for spec in specs for p in spec.get("phrases", ())]


def boxes_of(specs: Iterable[dict]) -> list[tuple[int, int, int, int]]:
    return [check_box(list(b)) for spec in specs for b in spec.get("boxes", ())]


def rows_for(session: Session, referral_id: int, tip_id: int | None = None,
             attachment_id: int | None = None, *, any_item: bool = False) -> list[Redaction]:
    query = select(Redaction).where(Redaction.referral_id == referral_id)
    if not any_item:
        query = query.where(Redaction.tip_id == tip_id, Redaction.attachment_id.is_(None)
                            if attachment_id is None else
                            Redaction.attachment_id == attachment_id)
    return list(session.scalars(query.order_by(Redaction.id)))


def counts_for(session: Session, referral_id: int
               ) -> dict[tuple[int | None, int | None], int]:
    """(tip id, attachment id or None for the statement) → places blacked out: metadata, no
    key needed (the material list and the referral page show it)."""
    counts: dict[tuple[int | None, int | None], int] = {}
    for row in rows_for(session, referral_id, any_item=True):
        key = (row.tip_id, row.attachment_id)
        counts[key] = counts.get(key, 0) + row.count
    return counts


def _referral_of(session: Session, principal: Principal, referral_id: int
                 ) -> tuple[Referral, list[crypto.AgeIdentity]]:
    """The referral, for the bureau's people who hold the case's key (NotFound for anyone who
    does not see the case: a receiving body never sees what was blacked out)."""
    referral = referrals.get_referral(session, principal, referral_id)
    if not access.may(principal, "case.view", referral.case):
        raise referrals.NotFound
    return referral, principal.identities_for(referral.case)


def _editable(principal: Principal, referral: Referral) -> bool:
    return (referral.package_id is None and referral.handed_over_at is None
            and access.may(principal, "referral.redact", referral))


def _target(session: Session, referral: Referral, tip_id: int | None,
            attachment_id: int | None) -> tuple[Tip, Attachment | None]:
    """The tip (of the referral's case) and, for an image, its attachment; NotFound else (an
    archived tip's content and files were destroyed: there is nothing to black out)."""
    tip_ids = {link.tip_id for link in referral.case.tips
               if link.tip is None or link.tip.archived_at is None}
    attachment = None
    if attachment_id is not None:
        attachment = session.get(Attachment, attachment_id)
        if (attachment is None or attachment.tip_id not in tip_ids
                or attachment.family != "image"):
            raise referrals.NotFound
        tip = attachment.tip
    else:
        tip = session.get(Tip, tip_id) if tip_id in tip_ids else None
    if tip is None:
        raise referrals.NotFound
    return tip, attachment


def _views(rows: list[Redaction], identities: Sequence[str]) -> list[RedactionView]:
    views = []
    for row in rows:
        spec = open_spec(row, identities)
        views.append(RedactionView(row.id, row.count, tuple(phrases_of([spec])),
                                   tuple(boxes_of([spec])), row.created_at, row.created_by_id))
    return views


def _tip_content(principal: Principal, tip: Tip) -> dict:
    content = json.loads(crypto.open_sealed(tip.content, principal.identities_for(tip)))
    return content if isinstance(content, dict) else {}


def _image_bytes(session: Session, attachment: Attachment,
                 identities: Sequence[str]) -> bytes:
    from portal.intake import blobs

    return b"".join(crypto.open_stream(blobs.reader(session, attachment.id), identities))


def open_target(session: Session, principal: Principal, referral_id: int, *,
                tip_id: int | None = None, attachment_id: int | None = None) -> TargetView:
    """A tip's statement (tip_id) or image (attachment_id) of a referral, as it would go out
    now, with its redactions. Reading it is a read of the tip: audited."""
    referral, identities = _referral_of(session, principal, referral_id)
    tip, attachment = _target(session, referral, tip_id, attachment_id)
    rows = rows_for(session, referral.id, tip.id, attachment.id if attachment else None)
    views = _views(rows, identities)
    text = preview = filename = None
    if attachment is None:
        chosen = session.get(ReferralTipText, (referral.id, tip.id)) is not None
        text = statement_text(tip.id, _tip_content(principal, tip),
                              [p for v in views for p in v.phrases])
    else:
        tip_keys = principal.identities_for(tip)
        filename = open_meta(attachment.meta, tip_keys)["filename"]
        chosen = session.scalar(select(ReferralTipFile).where(
            ReferralTipFile.referral_id == referral.id,
            ReferralTipFile.attachment_id == attachment.id)) is not None
        try:
            preview = preview_uri(burn_boxes(_image_bytes(session, attachment, tip_keys),
                                             [b for v in views for b in v.boxes]))
        except RedactionRefused:
            preview = None  # the page says it cannot be shown; nothing else breaks
    record(session, AuditActor("staff", principal.user.id, None), "tip.opened",
           object_type="tip", object_id=tip.id, unit_code=tip.unit.code)
    session.commit()
    return TargetView(referral, tip.id, attachment, filename, chosen,
                      _editable(principal, referral), views, text, preview)


def _ready_to_edit(session: Session, principal: Principal, referral_id: int
                   ) -> tuple[Referral, list[crypto.AgeIdentity]]:
    referral, identities = _referral_of(session, principal, referral_id)
    if not access.may(principal, "referral.redact", referral):
        raise referrals.CaseRefused("redaction_not_team")
    if referral.package_id is not None or referral.handed_over_at is not None:
        raise referrals.CaseRefused("redaction_closed")  # what has left cannot be taken back
    return referral, identities


def add_phrases(session: Session, principal: Principal, referral_id: int, tip_id: int,
                lines: Iterable[str], now: datetime | None = None) -> Redaction:
    """Black out phrases of a tip's statement in this referral's package."""
    referral, identities = _ready_to_edit(session, principal, referral_id)
    tip, _ = _target(session, referral, tip_id, None)
    phrases = clean_phrases(lines)
    if not phrases:
        raise RedactionRefused("no_phrases", "no phrase to black out")
    # A phrase blacked out already (in any width or case) is not counted a second time: the
    # material list's "已遮盖 N 处" counts what is hidden, not how often it was typed.
    seen = {_fold(p)[0] for p in phrases_of(open_spec(row, identities)
                                           for row in rows_for(session, referral.id, tip.id))}
    fresh: list[str] = []
    for phrase in phrases:
        if (folded := _fold(phrase)[0]) not in seen:
            seen.add(folded)
            fresh.append(phrase)
    if not fresh:
        raise RedactionRefused("phrases_already_out", "every phrase is blacked out already")
    phrases = fresh
    if len(phrases) > MAX_PHRASES or any(len(p) > MAX_PHRASE_CHARS for p in phrases):
        raise RedactionRefused("too_many_phrases", "too many or too long phrases",
                               num=MAX_PHRASES, chars=MAX_PHRASE_CHARS)
    missing = missing_phrases(statement_text(tip.id, _tip_content(principal, tip)), phrases)
    if missing:
        raise RedactionRefused("phrase_not_found", "a phrase occurs nowhere in the statement",
                               phrase=missing[0])
    return _add(session, principal, referral, tip, None, {"phrases": phrases}, len(phrases),
                now)


def add_box(session: Session, principal: Principal, referral_id: int, attachment_id: int,
            box: Sequence[object], now: datetime | None = None) -> Redaction:
    """Burn a rectangle into an image of a tip in this package: four whole thousandths of the
    image, or four strings as typed in percent (read only once the person may edit)."""
    referral, _identities = _ready_to_edit(session, principal, referral_id)
    tip, attachment = _target(session, referral, None, attachment_id)
    typed = [v for v in box if isinstance(v, str)]
    checked = percent_box(*typed) if len(box) == len(typed) == 4 else check_box(box)
    existing = sum(row.count for row in rows_for(session, referral.id, tip.id, attachment_id))
    if existing >= MAX_BOXES:
        raise RedactionRefused("too_many_boxes", "too many boxes", num=MAX_BOXES)
    # The image must open, or the package could not be built later.
    assert attachment is not None  # _target gives the image asked for, or NotFound
    burn_boxes(_image_bytes(session, attachment, principal.identities_for(tip)), [checked])
    return _add(session, principal, referral, tip, attachment, {"boxes": [list(checked)]}, 1,
                now)


def _add(session: Session, principal: Principal, referral: Referral, tip: Tip,
         attachment: Attachment | None, spec: dict, count: int,
         now: datetime | None) -> Redaction:
    row = Redaction(referral_id=referral.id, tip_id=tip.id,
                    attachment_id=attachment.id if attachment else None,
                    spec=crypto.seal(json.dumps(spec, ensure_ascii=False).encode(),
                                     unit_recipients(session, referral.case.unit)),
                    count=count, created_by_id=principal.user.id, created_at=now or utcnow())
    session.add(row)
    session.flush()
    record(session, AuditActor("staff", principal.user.id,
                                  access.acting_role(principal, referral.case.unit_id)),
           "referral.redaction_added", object_type="referral", object_id=referral.id,
           unit_code=referral.case.unit.code, kind="image" if attachment else "text",
           count=count)
    session.commit()
    return row


def remove(session: Session, principal: Principal, referral_id: int, redaction_id: int
           ) -> None:
    """Take a redaction back (while the package is not built)."""
    referral, _identities = _ready_to_edit(session, principal, referral_id)
    row = session.get(Redaction, redaction_id)
    if row is None or row.referral_id != referral.id:
        raise referrals.NotFound
    kind, count = ("image" if row.attachment_id else "text"), row.count
    session.delete(row)
    record(session, AuditActor("staff", principal.user.id,
                                  access.acting_role(principal, referral.case.unit_id)),
           "referral.redaction_removed", object_type="referral", object_id=referral.id,
           unit_code=referral.case.unit.code, kind=kind, count=count)
    session.commit()
