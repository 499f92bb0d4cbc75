"""Names inside the referral package: the name a file was sent with, and its true type."""

from __future__ import annotations

import pytest

from portal.referrals import package_name


@pytest.mark.parametrize(("sent", "extension", "expected"), [
    ("河边倾倒.jpg", "jpg", "河边倾倒.jpg"),
    ("IMG_0001.JPEG", "jpg", "IMG_0001.JPEG"),  # the same type under another spelling
    ("调查报告.txt", "txt", "调查报告.txt"),
    ("scan", "pdf", "scan.pdf"),  # no extension: the true type's is added
    ("photo.png", "jpg", "photo.png.jpg"),  # a name that lies about the type is told the truth
    ("../../etc/passwd", "txt", "passwd.txt"),  # no folders
    ("C:\\Users\\kim\\证据.docx", "docx", "证据.docx"),
    ("\x00\n.", "txt", "file.txt"),
    ("report.txt", None, "report.txt"),
])
def test_package_name(sent: str, extension: str | None, expected: str) -> None:
    assert package_name(sent, extension) == expected
