"""File names that are safe wherever they land: an entry of a ZIP the receiving body unpacks on
Windows or Linux, the name a browser saves a download under, a name shown on a page. A name a
citizen or an officer sent (`../../../../../tmp/x.pdf`, `C:\\x`, `report\u202efdp.exe`, 300
characters, `CON.txt`) keeps what it says (Chinese, Korean, its extension) and loses what could
act: folders, drive letters, leading dots, invisible and control characters, names Windows
reserves, lengths no file system takes. Standard library only: the offline verifier uses it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["DEFAULT_NAME", "MAX_NAME_BYTES", "member_problem", "plain_text", "safe_name",
           "zip_entry"]

DEFAULT_NAME = "file"
#: UTF-8 bytes of one name (a folder or a file). Most file systems take 255 for a name; a
#: folder and a file together stay within Windows' 260 UTF-16 units for most targets.
MAX_NAME_BYTES = 150
_MAX_EXTENSION = 16  # characters after the last dot that count as an extension to keep

# Characters that show nothing or act on the text around them: controls (NUL, newlines),
# formats (bidi overrides such as U+202E, zero-width spaces and joiners, BOM), surrogates,
# private use, unassigned, line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Slashes a Windows "best fit" code-page conversion or a careless tool turns into / or \.
_LOOKALIKE_SLASHES = "\u2215\u2044\u29f8\u29f9\u2216\uff0f\uff3c\ufe68"
# Characters Windows does not allow in a name (":" also names an NTFS stream).
_WINDOWS_FORBIDDEN = '<>:"|?*'
_REPLACED = str.maketrans({c: "_" for c in _LOOKALIKE_SLASHES + _WINDOWS_FORBIDDEN})
_DRIVE = re.compile(r"^[A-Za-z]:")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"})


def _visible(text: str) -> str:
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in _INVISIBLE:
            continue
        kept.append(" " if category == "Zs" else char)  # no-break, ideographic space: a space
    return unicodedata.normalize("NFC", "".join(kept))  # Hangul from macOS comes decomposed


# What typed text keeps of the invisible: a tab and a line break. Formats (Cf) go whole: the bidi
# embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E, U+200F
# and U+061C, zero-width spaces and joiners U+200B-U+200D, the BOM U+FEFF, soft hyphens.
_TEXT_DROPPED = frozenset({"Cc", "Cf", "Cs"})
_TEXT_KEPT = frozenset("\n\t")


def plain_text(text: str) -> str:
    """Text an officer or a reporter typed, for a document that goes out (the 移送书): what it
    says, without the characters that act on it unseen. Controls go, except tab and line break
    (CR LF and CR become LF, a line or paragraph separator a line break); format characters
    (bidi controls, zero-width characters, BOM) and lone surrogates go; NFC, so that what looks
    alike is alike. plain_text(plain_text(x)) == plain_text(x)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Zl", "Zp"):
            kept.append("\n")
        elif char in _TEXT_KEPT or category not in _TEXT_DROPPED:
            kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= _MAX_EXTENSION and extension.isalnum():
        return stem, "." + extension
    return name, ""


def _cut(text: str, max_bytes: int) -> str:
    """`text` cut at a character boundary to at most `max_bytes` UTF-8 bytes."""
    return text.encode("utf-8")[:max(max_bytes, 0)].decode("utf-8", "ignore")


def _fit(stem: str, extension: str, max_bytes: int, tag: str = "") -> str:
    """stem + tag + extension within max_bytes, the stem cut if need be (never the extension)."""
    room = max_bytes - len((tag + extension).encode("utf-8"))
    stem = _cut(stem, room).rstrip(" .") or _cut(DEFAULT_NAME, room)
    return stem + tag + extension


def safe_name(name: str, *, default: str = DEFAULT_NAME, max_bytes: int = MAX_NAME_BYTES
              ) -> str:
    """One file or folder name, safe on any file system and in any ZIP tool: the last part of
    `name` after any / or \\ (and a drive letter), without invisible or control characters,
    leading or trailing dots and spaces, characters Windows forbids (as "_"), a Windows
    reserved name (prefixed "_"), at most `max_bytes` of UTF-8 (the extension kept); `default`
    if nothing is left. safe_name(safe_name(x)) == safe_name(x)."""
    text = _visible(name)
    text = re.split(r"[/\\]", text)[-1]
    text = _DRIVE.sub("", text).translate(_REPLACED)
    text = re.sub(r" {2,}", " ", text).strip(" .")
    if not text:
        text = default
    stem, extension = _split_extension(text)
    if len(text.encode("utf-8")) > max_bytes:
        text = _fit(stem, extension, max_bytes)
        stem, extension = _split_extension(text)
    if text.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        text = _fit("_" + stem, extension, max_bytes)
    return text


def zip_entry(*parts: str, taken: set[str]) -> str:
    """The name of one ZIP entry: each of `parts` (folders, then the file) made safe by
    safe_name, joined by "/", and different, ignoring case, from every name in `taken` (a
    " (2)", " (3)"... before the extension when needed); the name joins `taken`."""
    folders = [safe_name(part) for part in parts[:-1]]
    last = safe_name(parts[-1]) if parts else DEFAULT_NAME
    stem, extension = _split_extension(last)
    name, count = "/".join([*folders, last]), 1
    while name.casefold() in taken:
        count += 1
        name = "/".join([*folders, _fit(stem, extension, MAX_NAME_BYTES, f" ({count})")])
    taken.add(name.casefold())
    return name


def member_problem(name: str) -> str | None:
    """Why an entry name read from a ZIP cannot be trusted (it would leave the folder it is
    unpacked into, or hide what it is), or None. For an archive that is read, not written."""
    if not name:
        return "an empty name"
    if "\x00" in name:
        return "a NUL character in the name"
    if "\\" in name:
        return "a backslash in the name"
    if name.startswith("/") or _DRIVE.match(name):
        return "an absolute path"
    parts = name.split("/")
    if name.endswith("/"):
        parts.pop()  # a folder's own entry
    if any(part in ("", ".", "..") for part in parts):
        return "an empty, '.' or '..' part in the path"
    if any(unicodedata.category(c) in _INVISIBLE for c in name):
        return "a control or invisible character in the name"
    return None
