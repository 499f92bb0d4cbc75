"""Issue 9, finding 8: the XML inside Office files is parsed with defusedxml, so a DTD, an entity
or an external reference is refused in every encoding OPC allows (UTF-8 and UTF-16), not only
where a byte search for "<!DOCTYPE" happens to see it. A normal document still cleans."""

from __future__ import annotations

import io
import zipfile

import pytest

from portal.intake import sanitize
from portal.intake.sanitize import UploadRejected
from tests.unit.test_sanitize import (
    CONTENT_TYPES,
    CORE,
    DOCUMENT,
    ROOT_RELS,
    build_docx,
    rejected,
    run_clean,
    zip_texts,
)

BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="UTF-16"?>\n'
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
              for i in range(1, 10))
    + "]>\n"
)
EXTERNAL = ('<?xml version="1.0" encoding="UTF-16"?>\n'
            '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n')


def utf16(text: str, *, bom: bool = True, big_endian: bool = False) -> bytes:
    codec = "utf-16-be" if big_endian else "utf-16-le"
    mark = (b"\xfe\xff" if big_endian else b"\xff\xfe") if bom else b""
    return mark + text.encode(codec)


def with_dtd(part: bytes, dtd: str, entity: str = "&lol9;") -> str:
    """The part's XML (declaration dropped) after a UTF-16 declaration and a DTD, with the
    entity used in its first text."""
    body = part.decode().split("?>", 1)[1].lstrip()
    return dtd + body.replace("<dc:title>", f"<dc:title>{entity}", 1).replace(
        "<w:t>", f"<w:t>{entity}", 1)


@pytest.mark.parametrize("big_endian", [False, True])
def test_billion_laughs_in_a_utf16_core_part_is_refused(big_endian: bool) -> None:
    """The part the cleaner parses: before, the byte filter saw no "<!DOCTYPE" in UTF-16 and
    ElementTree got the entities."""
    core = utf16(with_dtd(CORE, BILLION_LAUGHS), big_endian=big_endian)
    assert b"<!DOCTYPE" not in core
    with pytest.raises(UploadRejected) as info:
        run_clean(build_docx({"docProps/core.xml": core}))
    assert info.value.code == "corrupt"  # the words of a damaged file: no 500, nothing stored


def test_external_entity_in_utf16_relationships_is_refused() -> None:
    rels = utf16(EXTERNAL + ROOT_RELS.decode().split("?>", 1)[1].lstrip().replace(
        "</Relationships>", "<!-- &x; --></Relationships>"))
    assert rejected(build_docx({"_rels/.rels": rels})) == "corrupt"


def test_dtd_in_a_utf16_content_types_part_is_refused() -> None:
    types = utf16('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE Types>\n'
                  + CONTENT_TYPES.decode().split("?>", 1)[1].lstrip())
    assert rejected(build_docx({"[Content_Types].xml": types})) == "corrupt"


@pytest.mark.parametrize("bom", [True, False])
def test_dtd_in_a_utf16_part_copied_unchanged_is_refused(bom: bool) -> None:
    """word/document.xml goes into the cleaned file as it came: it is not parsed whole, but its
    prolog is, in any encoding; before, it reached the officer's Office reader with its DTD."""
    document = utf16(with_dtd(DOCUMENT, BILLION_LAUGHS), bom=bom)
    assert rejected(build_docx({"word/document.xml": document})) == "corrupt"


def test_dtd_in_a_utf16_part_named_otherwise_is_refused() -> None:
    """A part is XML to an Office reader by its content type, so one that starts like XML is
    checked whatever its name."""
    part = utf16(with_dtd(DOCUMENT, BILLION_LAUGHS))
    assert rejected(build_docx({"word/embeddings/thing.bin": part})) == "corrupt"


def test_xml_part_in_an_encoding_the_parser_does_not_know_is_refused() -> None:
    """Where the parser cannot see whether a DTD is there, an Office reader still might."""
    unknown = b'encoding="x-unknown-7"'
    document = DOCUMENT.replace(b'encoding="UTF-8"', unknown)
    assert rejected(build_docx({"word/document.xml": document})) == "corrupt"
    # a part the cleaner parses: before, a LookupError (a 500)
    assert rejected(build_docx({"_rels/.rels": ROOT_RELS.replace(b'encoding="UTF-8"', unknown)})
                    ) == "corrupt"


def test_utf8_dtd_still_refused() -> None:
    core = with_dtd(CORE, BILLION_LAUGHS.replace("UTF-16", "UTF-8")).encode()
    assert rejected(build_docx({"docProps/core.xml": core})) == "corrupt"


def test_normal_docx_still_cleans() -> None:
    report, out = run_clean(build_docx())
    assert report.kind == sanitize.DOCX and not report.uncleaned
    parts = zip_texts(out)
    assert parts["word/document.xml"] == DOCUMENT
    assert b"Canary Person" not in b"".join(parts.values())
    assert "docProps/custom.xml" not in parts


def test_utf16_docx_without_dtd_cleans_and_loses_its_custom_properties() -> None:
    """OPC allows UTF-16 parts: such a file is cleaned like any other, the relationships and
    content types rewritten (as UTF-8) without the dropped custom properties."""
    parts = {
        "[Content_Types].xml": utf16(CONTENT_TYPES.decode().replace("UTF-8", "UTF-16")),
        "_rels/.rels": utf16(ROOT_RELS.decode().replace("UTF-8", "UTF-16")),
        "word/document.xml": utf16(DOCUMENT.decode().replace("UTF-8", "UTF-16")),
        "docProps/core.xml": utf16(CORE.decode().replace("UTF-8", "UTF-16")),
    }
    report, out = run_clean(build_docx(parts))
    assert report.kind == sanitize.DOCX and "document_author" in report.removed
    cleaned = zip_texts(out)
    assert cleaned["word/document.xml"] == parts["word/document.xml"]
    assert "docProps/custom.xml" not in cleaned
    for name in ("_rels/.rels", "[Content_Types].xml"):
        text = cleaned[name].decode("utf-8")
        assert 'encoding="UTF-8"' in text and "custom.xml" not in text
        assert "document.xml" in text
    assert sanitize.sniff_file(io.BytesIO(out)) == sanitize.DOCX


def test_empty_xml_part_passes_and_a_part_cut_before_its_root_is_refused() -> None:
    """An empty part holds no DTD; one whose prolog does not end is damaged."""
    def docx_with_styles(styles: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("[Content_Types].xml", CONTENT_TYPES)
            zf.writestr("_rels/.rels", ROOT_RELS)
            zf.writestr("word/document.xml", DOCUMENT)
            zf.writestr("word/styles.xml", styles)
        return buf.getvalue()

    assert zip_texts(run_clean(docx_with_styles(b""))[1])["word/styles.xml"] == b""
    assert rejected(docx_with_styles(b'<?xml version="1.0"?>\n<!-- unfinished')) == "corrupt"
