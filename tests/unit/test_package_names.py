"""Names inside the referral package, and of downloads: the name a file was sent with, its true
type, and nothing in it that could act (issue 9, finding 7: a case document sent as
`../../../../../tmp/x.pdf` was stored as `02_../../../../../tmp/x.pdf`)."""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from auditlog.verify import VerifyError, verify_bundle
from models import Attachment, Referral
from portal.cases.referrals import package_name
from portal.web.extensions import db
from portal.web.http import content_disposition
from referral.filenames import MAX_NAME_BYTES, member_problem, safe_name, zip_entry

HOSTILE = [
    "../../../../../tmp/x.pdf",
    "/etc/cron.d/x.pdf",
    "..\\..\\Windows\\System32\\x.pdf",
    "C:\\Users\\kim\\x.pdf",
    "C:x.pdf",
    "..",
    ".",
    "x.pdf\x00.exe",
    "x\u202efdp.exe",  # shows as "xexe.pdf"
    "x\u200b\u2066.pdf",
    "a" * 300 + ".pdf",
    "调查" * 150 + ".pdf",
    "CON.pdf",
    "lpt1",
    " . hidden.pdf . ",
    "a／b＼c.pdf",
    "x:stream.pdf",
    "a\ud800.pdf",
    "line\nbreak\ttab.pdf",
]
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@pytest.mark.parametrize(("sent", "extension", "expected"), [
    ("河边倾倒.jpg", "jpg", "河边倾倒.jpg"),
    ("IMG_0001.JPEG", "jpg", "IMG_0001.JPEG"),  # the same type under another spelling
    ("调查报告.txt", "txt", "调查报告.txt"),
    ("증거 사진.jpg", "jpg", "증거 사진.jpg"),
    ("scan", "pdf", "scan.pdf"),  # no extension: the true type's is added
    ("photo.png", "jpg", "photo.png.jpg"),  # a name that lies about the type is told the truth
    ("../../etc/passwd", "txt", "passwd.txt"),  # no folders
    ("C:\\Users\\kim\\证据.docx", "docx", "证据.docx"),
    ("\x00\n.", "txt", "file.txt"),
    ("report.txt", None, "report.txt"),
    ("../../../../../tmp/x.pdf", "pdf", "x.pdf"),
    ("x\u202efdp.exe", "pdf", "xfdp.exe.pdf"),  # the override gone, the true type said
    ("x\u200b.pdf", "pdf", "x.pdf"),
    ("CON.pdf", "pdf", "_CON.pdf"),  # Windows cannot create "CON.pdf"
    ("aux", "txt", "_aux.txt"),
    ("...pdf", "pdf", "pdf.pdf"),
    ("报告：第1版?.pdf", "pdf", "报告：第1版_.pdf"),  # a full-width colon is fine, "?" is not
])
def test_package_name(sent: str, extension: str | None, expected: str) -> None:
    assert package_name(sent, extension) == expected


def test_a_long_name_is_cut_keeping_its_extension() -> None:
    for sent in ("a" * 300 + ".pdf", "调查" * 150 + ".pdf", "정보" * 150 + ".pdf"):
        name = package_name(sent, "pdf")
        assert name.endswith(".pdf") and len(name.encode()) <= MAX_NAME_BYTES
        assert name[:-4] == sent[:len(name) - 4]  # the start kept, whole characters
    appended = package_name("b" * 300, "jpg")  # the true type's extension survives the cut
    assert appended.endswith(".jpg") and len(appended.encode()) <= MAX_NAME_BYTES


@pytest.mark.parametrize("sent", HOSTILE)
def test_hostile_names_are_plain_names(sent: str) -> None:
    name = safe_name(sent)
    assert member_problem(name) is None and "/" not in name and "\\" not in name
    assert name == safe_name(name)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=400)
       | st.lists(st.sampled_from(["..", "/", "\\", ".", " ", "C:", "\x00", "\u202e", "\u200b",
                                   "CON", "调查", "한", "pdf", "a", "：", "\ufeff"]),
                  max_size=60).map("".join))
def test_any_name_becomes_a_safe_name(sent: str) -> None:
    name = safe_name(sent)
    assert name and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not re.search(r'[/\\<>:"|?*]', name)
    assert not any(unicodedata.category(c) in INVISIBLE for c in name)
    assert name[0] not in ". " and name[-1] not in ". "
    assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
    assert member_problem(name) is None
    assert safe_name(name) == name


def test_zip_entries_are_unique_ignoring_case() -> None:
    taken: set[str] = set()
    names = [zip_entry("02_证据", sent, taken=taken)
             for sent in ("x.pdf", "../x.pdf", "X.PDF", "C:\\x.pdf", "a" * 300 + ".pdf",
                          "a" * 400 + ".pdf")]
    assert names[:4] == ["02_证据/x.pdf", "02_证据/x (2).pdf", "02_证据/X (3).PDF",
                         "02_证据/x (4).pdf"]
    assert names[5].endswith(" (2).pdf") and len(names[5].rsplit("/")[1].encode()) <= 150
    assert len({n.casefold() for n in names}) == len(names)
    assert zip_entry("../..", "x", taken=taken) == "file/x"  # a folder is one safe name too


@pytest.mark.parametrize("sent", HOSTILE)
def test_content_disposition_names_no_folder(sent: str) -> None:
    header = content_disposition(sent)
    fallback = re.search(r'filename="([^"]*)"', header).group(1)
    exact = unquote(header.rsplit("filename*=UTF-8''", 1)[1])
    assert exact == safe_name(sent) and member_problem(exact) is None
    assert member_problem(fallback) is None and "/" not in fallback
    header.encode("latin-1")  # a header value Werkzeug can send


def test_a_citizens_file_is_stored_under_a_safe_name(app, portal_keys) -> None:
    """Every upload (tip, follow-up, case, referral step) is stored by filing.store_attachments:
    the name shown on every page and in every download is the safe one."""
    from portal.intake import filing
    from portal.security import crypto
    from tests.conftest import FAST_ARGON2
    from tests.helpers import MemoryUpload, jpeg_with_metadata

    filing.file_tip(db.session, filing.TipDraft(narrative="photo", county="yanji"),
                    [MemoryUpload("..\\..\\河边\u202egpj.exe", jpeg_with_metadata())],
                    limits=filing.Limits(10, 5 * 2**20, 5 * 2**20), receipt_cost=FAST_ARGON2)
    attachment = db.session.scalars(select(Attachment)).one()
    meta = json.loads(crypto.open_sealed(attachment.meta, [portal_keys["zhou"]]))
    assert meta["filename"] == "河边gpj.exe"


# ---------------------------------------------------------------------------------------------
# The package as a receiving body gets it


def tiny_pdf() -> bytes:
    out = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(out)
    return out.getvalue()


def test_hostile_names_in_a_handed_over_package(app, staff) -> None:
    from tests.functional.test_referral_handover import referral_scene, submit_with_report

    scene = referral_scene(app, staff)
    sent = ["../../../../../tmp/x.pdf", "/tmp/x.pdf", "..\\..\\x.pdf", "x\u202efdp.exe",
            "a" * 300 + ".pdf", "CON.pdf"]
    posted = scene.officer.post(f"/staff/cases/{scene.case_id}", content_type="multipart/"
                                "form-data", data={"do": "documents", "kind": "other", "files": [
                                    (io.BytesIO(tiny_pdf()), name) for name in sent]})
    assert posted.status_code in (200, 303), posted.get_data(as_text=True)[:2000]
    # The name is stored made safe, and downloads under it.
    documents = db.session.scalars(select(Attachment).where(
        Attachment.case_id == scene.case_id, Attachment.kind == "other")).all()
    assert len(documents) == len(sent)
    download = scene.officer.get(f"/staff/documents/{documents[0].id}")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].endswith("filename*=UTF-8''x.pdf")
    page = scene.officer.get(f"/staff/cases/{scene.case_id}?lang=en").get_data(as_text=True)
    assert "../" not in page and "\u202e" not in page

    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    handed = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                                data={"contact_phone": "0433-2512345"})
    assert handed.status_code == 303, handed.get_data(as_text=True)[:2000]
    assert db.session.get(Referral, scene.referral_id).package_id
    package = scene.officer.get(f"/staff/referrals/{scene.referral_id}/package")
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        names = [info.orig_filename for info in archive.infolist()]
        listing = archive.read("00_材料清单.txt").decode()
    assert all(member_problem(name) is None for name in names), names
    assert len({n.casefold() for n in names}) == len(names)
    assert all(len(part.encode()) <= MAX_NAME_BYTES for n in names for part in n.split("/"))
    files = sorted(n.split("/", 1)[1] for n in names if "/" in n and n.endswith(".pdf"))
    assert files == sorted(["x.pdf", "x.pdf", "x.pdf", "xfdp.exe.pdf",  # a folder each
                            "_CON.pdf", "a" * (MAX_NAME_BYTES - 4) + ".pdf"])
    assert "../" not in listing and "\u202e" not in listing
    # Unpacked into a folder, every file stays inside it.
    target = Path(app.instance_path) / "unpacked"
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        archive.extractall(target)
    found = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert found == sorted(names)


# ---------------------------------------------------------------------------------------------
# The offline verifier reads ZIPs it did not make


def _bundle_zip(tmp_path: Path, extra: dict[str, bytes]) -> Path:
    from tests.unit.test_verify import bundle

    folder = bundle(tmp_path / "bundle")
    target = tmp_path / "export.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in extra.items():  # zipfile cuts a name at NUL: "\x01" stands in
            archive.writestr(zipfile.ZipInfo(name.replace("\x00", "\x01")), data)
    for name in extra:
        stand_in = name.replace("\x00", "\x01").encode()
        target.write_bytes(target.read_bytes().replace(stand_in, name.encode()))
    return target


@pytest.mark.parametrize("name", [
    "../../../../../tmp/x", "/etc/x", "C:/x", "checkpoints\\..\\..\\x", "checkpoints/../x",
    "log.vkey\x00../../x", "x\u202etxt.exe", "checkpoints//x", "ENTRIES.JSONL"])
def test_the_verifier_refuses_a_zip_with_a_hostile_entry_name(tmp_path: Path, name: str) -> None:
    """The verifier never unpacks; it refuses what could not be unpacked safely elsewhere, or
    reads differently in another tool (a name twice, ignoring case)."""
    assert verify_bundle(_bundle_zip(tmp_path / "good", {})).entries == 100
    with pytest.raises(VerifyError, match="refused"):
        verify_bundle(_bundle_zip(tmp_path / "bad", {name: b"x"}))
