"""portal/cases/redaction.py: phrases blacked out of a statement wherever and however they are
written,
rectangles burned into an image's pixels (not laid over them), the same bytes each time, and
boxes outside the image or without an area refused."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from portal.cases.redaction import (
    BLACK,
    RedactionRefused,
    burn_boxes,
    clean_phrases,
    missing_phrases,
    percent_box,
    redact_text,
    statement_text,
)
from tests.helpers import jpeg_with_metadata


def test_every_occurrence_becomes_as_many_squares_as_it_has_characters() -> None:
    text = "举报人张三住在河边，张三的电话是13912345678。张三！"
    out = redact_text(text, ["张三", "13912345678"])
    assert "张三" not in out and "139" not in out
    assert out == f"举报人{BLACK * 2}住在河边，{BLACK * 2}的电话是{BLACK * 11}。{BLACK * 2}！"
    assert len(out) == len(text)
    assert redact_text(text, []) == text and redact_text(text, ["  "]) == text


def test_matching_ignores_width_and_case_and_overlaps() -> None:
    # Full-width digits and letters are the same phrase (NFKC), upper case the same as lower.
    out = redact_text("电话１３９１２３４５６７８，车牌 ＡＢ１２３ and Kim Cheol", ["13912345678",
                                                                           "ab123", "kim"])
    assert out == f"电话{BLACK * 11}，车牌 {BLACK * 5} and {BLACK * 3} Cheol"
    assert redact_text("aaaa", ["aaa"]) == BLACK * 4  # overlapping occurrences, all covered
    assert redact_text("ﬁle", ["fi"]) == BLACK + "le"  # a ligature is one character, covered


def test_phrases_from_a_textarea_and_those_that_occur_nowhere() -> None:
    assert clean_phrases(["张三\r", "", "  ", "张三", "\u202e139"]) == ["张三", "139"]
    assert missing_phrases("电话１３９", ["139", "李四"]) == ["李四"]


def test_a_statement_carries_the_content_fields_and_never_the_identity() -> None:
    content = {"narrative": "夜里张三看见倾倒。", "place": "河边", "occurred": "11月3日",
               "responsible": "某化工厂", "officials": "", "category": "P01",
               "identity": {"name": "CANARY-NAME", "phone": "13900000000",
                            "id_number": "220102199001011234"}}
    text = statement_text(7, content, ["张三"])
    assert text.startswith("举报内容（举报 #7）")
    assert "地点：河边" in text and "发生时间：11月3日" in text
    assert "被举报单位或个人：某化工厂" in text
    assert f"夜里{BLACK * 2}看见倾倒。" in text and "涉及的公职人员" not in text
    for canary in ("CANARY-NAME", "13900000000", "220102199001011234", "P01"):
        assert canary not in text


def noisy_image(size: tuple[int, int] = (200, 120), seed: int = 7) -> bytes:
    """A PNG of random pixels: every row of any region is a byte run found nowhere else."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(
        size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_box_is_burned_into_the_pixels_and_nothing_of_it_remains() -> None:
    original = noisy_image()
    source = Image.open(io.BytesIO(original)).convert("RGB")
    out = burn_boxes(original, [(100, 250, 300, 500)])  # x 10%, y 25%, 30% wide, 50% high
    image = Image.open(io.BytesIO(out))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (200, 120)
    left, top, right, bottom = 20, 30, 80, 90
    pixels = image.load()
    assert all(pixels[x, y] == (0, 0, 0) for x in range(left, right) for y in range(top, bottom))
    assert pixels[left - 1, top] != (0, 0, 0) and pixels[right, bottom] != (0, 0, 0)
    # No run of the region's original pixels survives, in the pixels or in the file.
    raw = image.tobytes()
    region_rows = [source.crop((left, y, right, y + 1)).tobytes() for y in range(top, bottom)]
    for row in region_rows:
        assert row[:24] not in raw and row[:24] not in out
    # Outside the box the picture is untouched.
    assert source.crop((0, 0, 200, top)).tobytes() == image.crop((0, 0, 200, top)).tobytes()


def test_the_copy_carries_no_metadata_and_is_the_same_bytes_twice() -> None:
    photo = jpeg_with_metadata(size=(120, 90), comment=b"CANARY-COMMENT")
    first = burn_boxes(photo, [(0, 0, 500, 500), (900, 900, 100, 100)])
    assert first == burn_boxes(photo, [(0, 0, 500, 500), (900, 900, 100, 100)])
    image = Image.open(io.BytesIO(first))
    assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
    for canary in (b"CanaryCam", b"Model X1", b"CANARY-COMMENT", b"Exif", b"eXIf", b"tEXt"):
        assert canary not in first
    assert image.getpixel((119, 89)) == (0, 0, 0) and image.getpixel((59, 44)) == (0, 0, 0)
    assert image.getpixel((61, 46)) != (0, 0, 0)


def test_an_upright_copy_of_a_rotated_photo() -> None:
    image = Image.new("RGB", (40, 20), (200, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    burned = Image.open(io.BytesIO(burn_boxes(out.getvalue(), [(0, 0, 1000, 500)])))
    assert burned.size == (20, 40)  # as the officer sees it; the box covers the top half
    assert burned.getpixel((10, 5)) == (0, 0, 0) and burned.getpixel((10, 35)) != (0, 0, 0)


@pytest.mark.parametrize(("box", "code"), [
    ((0, 0, 0, 100), "box_empty"), ((0, 0, 100, -5), "box_empty"),
    ((-1, 0, 100, 100), "box_outside"), ((950, 0, 100, 100), "box_outside"),
    ((0, 0, 1001, 10), "box_outside"), ((0, 0, 10), "box_not_numbers"),
    ((0.5, 0, 10, 10), "box_not_numbers"), ((True, 0, 10, 10), "box_not_numbers"),
])
def test_boxes_outside_the_image_or_without_area_are_refused(box, code) -> None:
    with pytest.raises(RedactionRefused) as refused:
        burn_boxes(noisy_image((10, 10)), [box])
    assert refused.value.code == code and str(refused.value)


def test_an_unreadable_image_and_typed_percentages() -> None:
    with pytest.raises(RedactionRefused, match="cannot be read"):
        burn_boxes(b"not an image", [(0, 0, 10, 10)])
    assert percent_box("10", "25,5", " 30 ", "50%") == (100, 255, 300, 500)
    for typed in (("x", "0", "1", "1"), ("nan", "0", "1", "1"), ("inf", "0", "1", "1"),
                  ("1e400", "0", "1", "1"), ("90", "0", "20", "10"), ("٣", "0", "1", "1"),
                  ("-0", "0", "1", "1"), ("1000", "0", "1", "1")):
        with pytest.raises(RedactionRefused):
            percent_box(*typed)
