"""Office documents: telling docx/xlsx/pptx and the legacy OLE2 formats apart, and rewriting
Office Open XML packages without the people and times in them.

Office documents carry author and last-modified-by names, company, template paths
(``C:\\Users\\<name>\\...``), editing times and unique document IDs that let an employer match
the upload with the copy on the reporter's own machine; zip-based documents also carry
per-entry timestamps and stale thumbnails. Legacy ``.doc/.xls/.ppt`` cannot be cleaned and are
stored unchanged (see ``kinds.describe_uncleanable``)."""

from __future__ import annotations

import codecs
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from portal.intake.sanitize.images import strip_jpeg_metadata
from portal.intake.sanitize.kinds import (
    DOC,
    DOCX,
    OLE_OFFICE,
    PPT,
    PPTX,
    XLS,
    XLSX,
    FileKind,
    UploadRejected,
    type_not_allowed,
)
from portal.intake.sanitize.streams import CHUNK_SIZE, CountingWriter, random_access

#: Zip-bomb guards for Office Open XML packages.
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_RATIO = 100
#: Entries smaller than this are exempt from the ratio check: small XML parts routinely
#: compress better than 100:1 and cannot hurt us.
ZIP_RATIO_FLOOR = 1024 * 1024
#: XML parts we parse/rewrite in memory are capped at this size.
MAX_XML_PART = 4 * 1024 * 1024


def _zip_local_entries(head: bytes) -> Iterator[tuple[str, bytes | None]]:
    """Walk the ZIP local file headers found in ``head``.

    Yields (name, data) where data is the (possibly partial) uncompressed content as far
    as ``head`` reaches, or None when it cannot be decoded. Entries whose sizes are only
    given in a trailing data descriptor (streaming writers such as Apache POI) are
    followed by letting the deflate stream find its own end.
    """
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
        flags, method = struct.unpack_from("<HH", head, pos + 6)
        csize = struct.unpack_from("<I", head, pos + 18)[0]
        name_len, extra_len = struct.unpack_from("<HH", head, pos + 26)
        name_end = pos + 30 + name_len
        if name_end > len(head):
            return
        name = head[pos + 30 : name_end].decode("utf-8" if flags & 0x800 else "cp437", "replace")
        start = name_end + extra_len
        sized = not (flags & 0x08 and csize == 0) and csize != 0xFFFFFFFF
        if method == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
            try:
                data = inflater.decompress(head[start:], MAX_XML_PART)
            except zlib.error:
                yield name, None
                return
            yield name, data
            if sized:
                end = start + csize
            elif inflater.eof:
                end = len(head) - len(inflater.unused_data)
            else:
                return
        elif method == zipfile.ZIP_STORED and sized:
            end = start + csize
            yield name, head[start:end]
        else:
            yield name, None
            if not sized:
                return
            end = start + csize
        pos = end
        if flags & 0x08:  # skip the data descriptor (with/without signature, zip64 or not)
            for skip in (16, 12, 24, 20):
                if head[pos + skip : pos + skip + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
                    pos += skip
                    break
            else:
                return


_OOXML_MAIN_TYPES = (
    (b"wordprocessingml.document.main+xml", DOCX),
    (b"spreadsheetml.sheet.main+xml", XLSX),
    (b"presentationml.presentation.main+xml", PPTX),
)
_OOXML_REJECT_TYPES = (b"macroenabled", b"template.main+xml", b"slideshow.main+xml")


def _classify_ooxml(content_types: bytes | None, names: Iterable[str]) -> FileKind | None:
    """Decide docx/xlsx/pptx from [Content_Types].xml, falling back to folder names."""
    if content_types is not None:
        lowered = content_types.lower()
        if any(marker in lowered for marker in _OOXML_REJECT_TYPES):
            raise type_not_allowed("macro-enabled or template Office files are not allowed")
        for marker, kind in _OOXML_MAIN_TYPES:
            if marker in content_types:
                return kind
    prefixes = {n.split("/", 1)[0] for n in names if "/" in n}
    found = [k for p, k in (("word", DOCX), ("xl", XLSX), ("ppt", PPTX)) if p in prefixes]
    return found[0] if len(found) == 1 else None


def sniff_zip_head(head: bytes) -> FileKind:
    """Provisional Office classification from the first local headers of a ZIP.

    ``clean`` re-checks the full central directory before trusting it."""
    names: list[str] = []
    content_types: bytes | None = None
    for name, data in _zip_local_entries(head):
        names.append(name)
        if name == "[Content_Types].xml":
            content_types = data
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise type_not_allowed("Office documents with macros are not allowed")
    package_hint = any(
        n in ("[Content_Types].xml", "_rels/.rels") or n.startswith("docProps/") for n in names
    )
    kind = _classify_ooxml(content_types, names)
    if kind is not None and (package_hint or content_types is not None):
        return kind
    if package_hint:
        raise type_not_allowed("cannot identify the Office document from its first bytes")
    raise type_not_allowed("zip archives are not allowed (only Office documents)")


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Well-known first bytes of the main stream when it starts in the first sector.
_OLE_SUBHEADERS = (
    (b"\xec\xa5\xc1\x00", DOC),  # Word FIB
    (b"\xec\xa5\xc2\x00", DOC),
    (b"\x09\x08\x10\x00\x00\x06\x05\x00", XLS),  # BIFF8 BOF (workbook globals)
    (b"\x09\x08\x08\x00\x00\x06\x05\x00", XLS),
    (b"\x00\x6e\x1e\xf0", PPT),
    (b"\x0f\x00\xe8\x03", PPT),
    (b"\xa0\x46\x1d\xf0", PPT),
)


def _classify_ole(stream_names: set[str]) -> FileKind | None:
    if "EncryptedPackage" in stream_names:
        raise type_not_allowed("password-protected Office documents cannot be accepted")
    if stream_names & {"Macros", "_VBA_PROJECT_CUR", "VBA", "_VBA_PROJECT"}:
        raise type_not_allowed("Office documents with macros are not allowed")
    if any("\u3800" <= ch <= "\u4840" for name in stream_names for ch in name):
        raise type_not_allowed("Windows installer packages are not allowed")  # MSI name encoding
    if "WordDocument" in stream_names:
        return DOC
    if stream_names & {"Workbook", "Book"}:
        return XLS
    if "PowerPoint Document" in stream_names:
        return PPT
    return None


def sniff_ole_head(head: bytes) -> FileKind:
    """Legacy Office (OLE2 compound file) from its first bytes.

    Reads the directory sectors that lie inside ``head`` (following the allocation
    table as far as it is visible), else recognises the main stream's signature in the
    first sector. A compound file we cannot attribute is still accepted as the generic
    ``OLE_OFFICE`` kind: it is stored unchanged and offered to staff under a
    non-executable extension.
    """
    if len(head) < 512 or head[0x1C:0x1E] != b"\xfe\xff":
        raise UploadRejected("corrupt", "malformed OLE header")
    shift = struct.unpack_from("<H", head, 0x1E)[0]
    if shift not in (9, 12):
        raise UploadRejected("corrupt", "malformed OLE sector size")
    ssize = 1 << shift
    per_fat = ssize // 4
    difat = struct.unpack_from("<109I", head, 0x4C)
    sector = struct.unpack_from("<I", head, 0x30)[0]
    names: set[str] = set()
    seen: set[int] = set()
    while sector < 0xFFFFFFFA and sector not in seen and (sector + 2) * ssize <= len(head):
        seen.add(sector)
        data = head[(sector + 1) * ssize : (sector + 2) * ssize]
        for off in range(0, ssize, 128):
            name_len = struct.unpack_from("<H", data, off + 0x40)[0]
            if 2 <= name_len <= 64 and name_len % 2 == 0 and data[off + 0x42] in (1, 2, 5):
                names.add(data[off : off + name_len - 2].decode("utf-16-le", "replace"))
        fat_index = sector // per_fat
        if fat_index >= 109 or difat[fat_index] >= 0xFFFFFFFA:
            break
        entry = (difat[fat_index] + 1) * ssize + (sector % per_fat) * 4
        if entry + 4 > len(head):
            break
        sector = struct.unpack_from("<I", head, entry)[0]
    kind = _classify_ole(names)
    if kind is not None:
        return kind
    first_sector = head[ssize : ssize + 8]
    for signature, candidate in _OLE_SUBHEADERS:
        if first_sector.startswith(signature):
            return candidate
    return OLE_OFFICE


def classify_zip(zf: zipfile.ZipFile) -> FileKind:
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadRejected("corrupt", "zip bomb: too many entries")
    names = [i.filename for i in infos]
    if "[Content_Types].xml" not in names:
        raise type_not_allowed("zip archives are not allowed (only Office documents)")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise type_not_allowed("Office documents with macros are not allowed")
    try:
        content_types = _utf8_xml(_read_part(zf, zf.getinfo("[Content_Types].xml")))
    except ElementTree.ParseError as exc:
        raise UploadRejected("corrupt", f"[Content_Types].xml is not valid XML: {exc}") from None
    kind = _classify_ooxml(content_types, names)
    if kind is None:
        raise type_not_allowed("zip is not a Word/Excel/PowerPoint document")
    return kind


# ------------------------------------------------------------------------- Office (zip)

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_REL_CORE = "/metadata/core-properties"
_REL_APP = "/extended-properties"
_REL_CUSTOM = "/custom-properties"
_REL_THUMB = "/metadata/thumbnail"
_NS_DC = "{http://purl.org/dc/elements/1.1/}"
_NS_CP = "{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}"
_NS_APP = "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}"
_NS_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_AUTHOR_ELEMENTS = {
    _NS_DC + "creator",
    _NS_CP + "lastModifiedBy",
    _NS_APP + "Company",
    _NS_APP + "Manager",
}
_MINIMAL_CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    b'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" '
    b'xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
)
_MINIMAL_APP = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
    b'2006/docPropsVTypes"/>'
)
_REL_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?Relationship\b[^>]*?(?:/>|>\s*</(?:[\w.-]+:)?Relationship\s*>)", re.S
)
_OVERRIDE_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?Override\b[^>]*?(?:/>|>\s*</(?:[\w.-]+:)?Override\s*>)", re.S
)
_JPEG_NAMES = (".jpg", ".jpeg", ".jpe", ".jfif")


def _attr(element: bytes, name: bytes) -> str:
    match = re.search(rb"\b" + name + rb"\s*=\s*([\"'])(.*?)\1", element, re.S)
    return match.group(2).decode("utf-8", "replace") if match else ""


def _read_part(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_XML_PART:
        raise UploadRejected("corrupt", f"{info.filename} is implausibly large")
    with zf.open(info) as part:
        return part.read(MAX_XML_PART + 1)[:MAX_XML_PART]


def _check_zip_limits(infos: list[zipfile.ZipInfo], max_in_memory: int) -> None:
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadRejected("corrupt", "zip bomb: too many entries")
    if sum(i.file_size for i in infos) > 10 * max_in_memory:
        raise UploadRejected("corrupt", "zip bomb: total uncompressed size too large")
    for info in infos:
        if info.file_size > ZIP_RATIO_FLOOR and info.file_size > MAX_ZIP_RATIO * max(
            info.compress_size, 1
        ):
            raise UploadRejected("corrupt", "zip bomb: compression ratio too high")
        if info.flag_bits & 0x1:
            raise UploadRejected("corrupt", "encrypted zip entry")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UploadRejected("corrupt", "unsupported zip compression method")
    if len({i.filename for i in infos}) != len(infos):
        raise UploadRejected("corrupt", "duplicate zip entry names")


def _parse_xml(data: bytes) -> ElementTree.Element:
    """Parse a small package part with defusedxml. OPC forbids DTDs (ECMA-376 part 2, 8.1.4)
    and allows UTF-8 and UTF-16: a DTD, an entity or an external reference is refused in every
    encoding the parser reads (a byte search for "<!DOCTYPE" misses UTF-16), so no entity
    expansion bomb and no external entity. Not well-formed: ElementTree.ParseError."""
    try:
        return SafeElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise UploadRejected("corrupt", f"DTD in an Office package part ({exc})") from None
    except LookupError as exc:  # an encoding the parser does not know
        raise UploadRejected("corrupt", f"an Office package part: {exc}") from None


class _RootReached(Exception):
    """The XML part's root element began: no DTD can come after it."""


class _PrologCheck:
    """An XML part that is copied unchanged, fed through defusedxml's parser as it streams up
    to its root element: a DTD can only stand before the root, so a DTD in any encoding is
    refused without reading the part whole. A part that is not XML up to its root (an encoding
    the parser does not know, no element) is refused too: an Office reader could still find a
    DTD there."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._parser: SafeElementTree.XMLParser | None = SafeElementTree.XMLParser(
            target=self, forbid_dtd=True
        )

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _RootReached

    def feed(self, chunk: bytes) -> None:
        if self._parser is not None:
            self._run(self._parser.feed, chunk)

    def close(self) -> None:
        if self._parser is not None:
            self._run(self._parser.close)
            raise UploadRejected("corrupt", f"{self._name}: no XML element")

    def _run(self, step: Callable[..., object], *args: bytes) -> None:
        try:
            step(*args)
        except _RootReached:
            self._parser = None
        except DefusedXmlException as exc:
            raise UploadRejected("corrupt", f"DTD in an Office package part ({exc})") from None
        except (ElementTree.ParseError, LookupError) as exc:
            raise UploadRejected("corrupt", f"{self._name} is not valid XML: {exc}") from None


_XML_PART_NAMES = (".xml", ".rels", ".vml")
_XML_STARTS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<?xml",
               "<?xml".encode("utf-16-le"), "<?xml".encode("utf-16-be"))


def _is_xml_part(name: str, head: bytes) -> bool:
    """Parsed by an Office reader as XML: by its name, or by how it starts."""
    return name.lower().endswith(_XML_PART_NAMES) or head.startswith(_XML_STARTS)


def _utf8_xml(data: bytes) -> bytes:
    """A part (checked by _parse_xml) as UTF-8 with its declaration saying so, for the
    byte-level rewrites below (OPC allows UTF-16 too)."""
    _parse_xml(data)
    encoding = ("utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
                else "utf-16-le" if data.startswith(b"<\0")
                else "utf-16-be" if data.startswith(b"\0<") else None)
    if encoding is None:
        return data
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UploadRejected("corrupt", f"an Office package part is not UTF-16: {exc}") from None
    text = re.sub(r"""^(<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""", r"\1\2UTF-8\2", text)
    return text.encode("utf-8")


def _package_relationships(rels: bytes) -> dict[str, str]:
    """Map each root relationship's target part (no leading '/') to its type."""
    try:
        root = _parse_xml(rels)
    except ElementTree.ParseError as exc:
        raise UploadRejected("corrupt", f"_rels/.rels is not valid XML: {exc}") from None
    parts: dict[str, str] = {}
    for rel in root.iter(_NS_RELS + "Relationship"):
        if rel.get("TargetMode") != "External":
            parts[rel.get("Target", "").lstrip("/")] = rel.get("Type", "")
    return parts


def _found_in_properties(xml: bytes) -> set[str]:
    try:
        root = _parse_xml(xml)
    except ElementTree.ParseError:
        return {"document_info"}
    found: set[str] = set()
    for element in root.iter():
        if element is root or not (element.text or "").strip():
            continue
        found.add("document_author" if element.tag in _AUTHOR_ELEMENTS else "document_info")
    return found


def clean_ooxml(
    source: BinaryIO, kind: FileKind, max_in_memory: int, out: CountingWriter
) -> tuple[str, ...]:
    """Rewrite an Office Open XML package entry by entry with neutral document
    properties, no custom properties, no thumbnail, metadata-free embedded JPEGs and
    normalised zip timestamps (these reveal when and in which time zone it was saved)."""
    removed: set[str] = set()
    try:
        with zipfile.ZipFile(random_access(source, max_in_memory)) as zin:
            if classify_zip(zin) != kind:
                raise type_not_allowed("content does not match the declared kind")
            infos = zin.infolist()
            _check_zip_limits(infos, max_in_memory)
            names = {i.filename for i in infos}
            rel_types = (
                _package_relationships(_read_part(zin, zin.getinfo("_rels/.rels")))
                if "_rels/.rels" in names
                else {}
            )
            core = {p for p, t in rel_types.items() if t.endswith(_REL_CORE)}
            app = {p for p, t in rel_types.items() if t.endswith(_REL_APP)}
            dropped = {p for p, t in rel_types.items() if t.endswith((_REL_CUSTOM, _REL_THUMB))}
            core.add("docProps/core.xml")
            app.add("docProps/app.xml")
            dropped.add("docProps/custom.xml")
            budget = 10 * max_in_memory
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
                for info in infos:
                    name = info.filename
                    if info.is_dir():
                        continue
                    if name in dropped:
                        removed.add(
                            "thumbnail" if rel_types.get(name, "").endswith(_REL_THUMB)
                            else "custom_properties"
                        )  # fmt: skip
                        continue
                    if info.date_time != _FIXED_ZIP_TIME or info.extra or info.comment:
                        removed.add("archive_timestamps")
                    target = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
                    target.compress_type = (
                        zipfile.ZIP_STORED
                        if info.compress_type == zipfile.ZIP_STORED
                        else zipfile.ZIP_DEFLATED
                    )
                    target.create_system = 0
                    target.external_attr = 0
                    target.file_size = info.file_size  # lets zipfile pick zip64 if needed
                    data = _rewritten_part(zin, info, core, app, dropped, removed, max_in_memory)
                    if data is not None:
                        zout.writestr(target, data)
                        continue
                    with zin.open(info) as src, zout.open(target, "w") as dst:
                        chunk = src.read(CHUNK_SIZE)
                        prolog = (_PrologCheck(name) if chunk and _is_xml_part(name, chunk)
                                  else None)  # an empty part holds no DTD
                        while chunk:
                            budget -= len(chunk)
                            if budget < 0:
                                raise UploadRejected("corrupt", "zip bomb: too much data")
                            if prolog is not None:
                                prolog.feed(chunk)
                            dst.write(chunk)
                            chunk = src.read(CHUNK_SIZE)
                        if prolog is not None:
                            prolog.close()
            if zin.comment:
                removed.add("archive_comment")
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UploadRejected("corrupt", f"broken Office document: {exc}") from None
    return tuple(sorted(removed))


def _rewritten_part(
    zin: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    core: set[str],
    app: set[str],
    dropped: set[str],
    removed: set[str],
    max_in_memory: int,
) -> bytes | None:
    """New bytes for parts we change, or None to stream the part unchanged."""
    name = info.filename
    if name in core or name in app:
        removed |= _found_in_properties(_read_part(zin, info))
        return _MINIMAL_CORE if name in core else _MINIMAL_APP
    if name == "_rels/.rels":
        rels = _utf8_xml(_read_part(zin, info))
        return _REL_ELEMENT.sub(
            lambda m: b"" if _attr(m.group(0), b"Target").lstrip("/") in dropped else m.group(0),
            rels,
        )
    if name == "[Content_Types].xml":
        types = _utf8_xml(_read_part(zin, info))
        return _OVERRIDE_ELEMENT.sub(
            lambda m: b"" if _attr(m.group(0), b"PartName").lstrip("/") in dropped else m.group(0),
            types,
        )
    if name.lower().endswith(_JPEG_NAMES) and info.file_size <= max_in_memory:
        with zin.open(info) as part:
            original = part.read()
        stripped = strip_jpeg_metadata(original, keep_orientation=True)
        if stripped is not None and stripped != original:
            removed.add("embedded_image_metadata")
            return stripped
        return original
    return None
