"""The audit log's entry format, signed checkpoints and the offline bundle verifier.

Bundles are built in tmp_path with the package's own functions; each tampering must be caught
and the place named.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from auditlog import merkle
from auditlog.logformat import (
    ZERO,
    FormatError,
    canonical,
    chain_hash,
    decode_line,
    encode_line,
    format_time,
    leaf_hash,
)
from auditlog.notes import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    checkpoint_body,
    generate_signer,
    key_id,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)
from auditlog.verify import Report, VerifyError, main, verify_bundle

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "audit.qingliu.test/log"
SIGNER = Signer.from_text(generate_signer(ORIGIN)[0])
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

# golang.org/x/mod/sumdb/note, note_test.go (TestNewSigner, TestSign, TestOpen): known answers.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = ("If you think cryptography is the answer to your problem,\n"
              "then you don't know what your problem is.\n")
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
             "dngotpRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGw"
             "nWLox33WWd1RvMc+QQ=\n")


def make_entry(seq: int, variant: str = "") -> dict[str, Any]:
    """A synthetic entry (prev is filled in by `link`)."""
    return {
        "v": 1, "seq": seq, "at": format_time(T0 + timedelta(seconds=seq, microseconds=seq)),
        "actor_type": "staff", "actor_id": 100 + seq % 7, "role": "officer",
        "action": ("tip.viewed", "tip.assigned", "referral.created")[seq % 3] + variant,
        "object_type": "tip", "object_id": 9000 + seq // 2, "unit": "延吉市" if seq % 2 else None,
        "details": {"count": seq, "urgent": seq % 5 == 0, "note": "例" if seq % 4 else None},
        "prev": "",
    }


def link(entries: Sequence[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    """Fill in prev and chain: (bundle lines, leaf hashes)."""
    lines, leaves, prev = [], [], ZERO
    for entry in entries:
        entry["prev"] = prev.hex()
        leaf = leaf_hash(canonical(entry))
        prev = chain_hash(prev, leaf)
        lines.append(encode_line(entry, prev))
        leaves.append(leaf)
    return lines, leaves


def history(n: int, variant_from: int | None = None) -> tuple[list[bytes], list[bytes]]:
    """n linked entries; from `variant_from` on, a different history (other actions)."""
    return link([make_entry(s, "" if variant_from is None or s < variant_from else ".x")
                 for s in range(n)])


def write_bundle(folder: Path, lines: Sequence[bytes], leaves: Sequence[bytes],
                 sizes: Sequence[int], signer: Signer = SIGNER) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "log.vkey").write_text(signer.verifier_text + "\n", encoding="utf-8")
    (folder / "entries.jsonl").write_bytes(b"".join(lines))
    for size in sizes:
        note = sign_checkpoint(signer, ORIGIN, size, merkle.root(leaves[:size]))
        (folder / "checkpoints" / f"{size}.note").write_text(note, encoding="utf-8")
    return folder


def bundle(tmp_path: Path, n: int = 100, sizes: Sequence[int] = (10, 40, 64, 100)) -> Path:
    return write_bundle(tmp_path / "bundle", *history(n), sizes)


def failure(folder: Path, **kwargs: Any) -> str:
    with pytest.raises(VerifyError) as caught:
        verify_bundle(folder, **kwargs)
    return str(caught.value)


def edit_lines(folder: Path, edit: Any) -> None:
    path = folder / "entries.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(edit(lines)))


# --- logformat ---

def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    entry = make_entry(1)
    entry["prev"] = "ab" * 32
    assert canonical(entry) == (
        '{"action":"tip.assigned","actor_id":101,"actor_type":"staff",'
        '"at":"2026-03-01T08:00:01.000001Z","details":{"count":1,"note":"例","urgent":false},'
        '"object_id":9000,"object_type":"tip","prev":"' + "ab" * 32 + '","role":"officer",'
        '"seq":1,"unit":"延吉市","v":1}').encode()
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert chain_hash(ZERO, ZERO) == hashlib.sha256(bytes(64)).digest()


@pytest.mark.parametrize(("change", "message"), [
    ({"seq": 1.0}, "seq must be"),
    ({"seq": True}, "seq must be"),
    ({"seq": -1}, "seq must be"),
    ({"v": 2}, "v must be 1"),
    ({"actor_id": 2**63}, "actor_id must be"),
    ({"actor_id": "7"}, "actor_id must be"),
    ({"role": 3}, "role must be"),
    ({"action": None}, "action must be"),
    ({"at": "2026-03-01T08:00:00Z"}, "at must look like"),
    ({"at": "2026-02-30T08:00:00.000000Z"}, "not a real time"),
    ({"at": "\u0662026-03-01T08:00:00.000000Z"}, "at must look like"),
    ({"at": "2026-03-01T08:00:00.000000+00:00"}, "at must look like"),
    ({"details": {"x": 1.5}}, "details['x']"),
    ({"details": {"x": [1]}}, "details['x']"),
    ({"details": {"x": {"y": 1}}}, "details['x']"),
    ({"details": []}, "details must be an object"),
    ({"prev": "AB" * 32}, "prev must be"),
    ({"prev": "ab"}, "prev must be"),
    ({"extra": 1}, "unexpected extra"),
    ({"unit": "\ud800"}, "lone surrogate"),
])
def test_canonical_refuses_what_is_not_the_format(change: dict[str, Any], message: str) -> None:
    entry = {**make_entry(0), "prev": "0" * 64, **change}
    with pytest.raises(FormatError, match=message.replace("[", r"\[").replace("(", r"\(")):
        canonical(entry)


def test_missing_key_is_named() -> None:
    entry = {**make_entry(0), "prev": "0" * 64}
    del entry["unit"]
    with pytest.raises(FormatError, match="missing unit"):
        canonical(entry)


def test_format_time() -> None:
    east8 = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 3, 1, 16, 0, 0, 5, tzinfo=east8)) == \
        "2026-03-01T08:00:00.000005Z"
    with pytest.raises(FormatError, match="naive"):
        format_time(datetime(2026, 3, 1))


def test_lines_round_trip_and_must_be_canonical() -> None:
    (line,), _ = link([make_entry(0)])
    entry, chain = decode_line(line)
    assert encode_line(entry, chain) == line and line.endswith(b"}\n")
    assert line.startswith(b'{"chain":"' + chain.hex().encode() + b'","entry":{')
    for bad, message in [
        (line.replace(b'"seq":0', b'"seq": 0'), "canonical"),
        (line.replace(b'"seq":0', b'"seq":0.0'), "floats"),
        (line.replace(b'"v":1}', b'"v":1,"v":1}'), "duplicate key 'v'"),
        (line.replace(b'"chain":"', b'"chain":"A', 1)[:-1], "chain must be"),
        (b'{"entry":{},"chain":"00"}', "canonical|chain|entry"),
        (b"[1]", "exactly the keys"),
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
    ]:
        with pytest.raises(FormatError, match=message):
            decode_line(bad)


def test_the_example_in_docs_audit_log_md() -> None:
    """The known answers printed in docs/audit-log.md §5 (cross-checked with sha256sum)."""
    first = {"v": 1, "seq": 0, "at": "2026-03-01T08:00:00.000000Z", "actor_type": "staff",
             "actor_id": 42, "role": "officer", "action": "tip.viewed", "object_type": "tip",
             "object_id": 9000, "unit": "延吉市",
             "details": {"count": 2, "urgent": False, "via": None}, "prev": "0" * 64}
    second = {**first, "seq": 1, "at": "2026-03-01T08:00:01.500000Z",
              "action": "referral.created", "object_type": None, "object_id": None,
              "unit": None, "details": {}}
    lines, leaves = link([first, second])
    assert leaves[0].hex() == "8cf9ea28df685b6931ddaed6f5d19bd8d107723f6ad8a5f6ba2a100e9ecf361d"
    assert leaves[1].hex() == "fbd9e04a424f703d6b2a3f06a3f2cf42b4d2615d30b6753fde6f98a5643658b0"
    assert decode_line(lines[1])[1].hex() == \
        "1f6c35ddba1d62788e0e8687cbc966075bb043c88b96029415e50f66a18bc8b5"
    assert second["prev"] == "c0cae88b87db8eacb1db1903e7fed58d020ccfcf8d882778c428357d815e0521"
    root = merkle.root(leaves)
    assert root.hex() == "b2b0db72bcbb29675a28ad200cf46dd8c6613196035e07b47eb19c3f4f6ae6fa"
    signer = Signer("audit.example/qingliu", bytes(range(32)))
    assert signer.text == ("PRIVATE+KEY+audit.example/qingliu+dda1efc8+"
                           "AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f")
    assert signer.verifier_text == ("audit.example/qingliu+dda1efc8+"
                                    "AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4")
    assert sign_checkpoint(signer, "audit.example/qingliu", 2, root) == (
        "audit.example/qingliu\n2\nsrDbcry7KWdaKK0gDPRt2MZhMZYDXge0frGcP09q5vo=\n\n"
        "— audit.example/qingliu 3aHvyGD6Xzb6Tj7zmjIO2H7v0XhPGqN2tbcjgi8/xobbLsJBl//+epWiG/WhJIP"
        "JthHsYNeGLU7wgpEzqF+2mDIH6wI=\n")


# --- notes: the Go sumdb/note known answers, C2SP checkpoints ---

def test_go_note_known_answers() -> None:
    signer = Signer.from_text(PETER_SKEY)
    assert signer.text == PETER_SKEY
    assert signer.verifier_text == PETER_VKEY
    verifier = Verifier.from_text(PETER_VKEY)
    assert verifier.key_id == bytes.fromhex("c74f20a3") == key_id("PeterNeumann",
                                                                  verifier.public_key)
    assert sign_note(signer, PETER_TEXT) == PETER_TEXT + "\n" + PETER_SIG  # Ed25519 is determ.
    assert open_note(PETER_TEXT + "\n" + PETER_SIG, verifier) == PETER_TEXT
    # Signatures by other keys are ignored; either key opens the doubly signed note.
    both = PETER_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(both, verifier) == PETER_TEXT
    assert open_note(both.encode(), Verifier.from_text(ENOCH_VKEY)) == PETER_TEXT
    # A corrupted signature by the known key is refused (as Go's TestOpen).
    corrupt = PETER_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(corrupt, verifier)
    with pytest.raises(NoteError, match="no signature by the expected key"):
        open_note(PETER_TEXT + "\n" + ENOCH_SIG, verifier)


@pytest.mark.parametrize("note", [
    PETER_TEXT,
    PETER_TEXT + "\n",
    PETER_TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + PETER_TEXT + "\n" + PETER_SIG,
    PETER_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZS"
    "NXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
    PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    PETER_TEXT + "\n" + PETER_SIG.replace("- ", "-- ").replace("—", "-"),
])
def test_malformed_notes(note: str) -> None:  # the bad messages of Go's TestOpen
    with pytest.raises(NoteError, match="malformed note"):
        open_note(note, Verifier.from_text(PETER_VKEY))


@pytest.mark.parametrize("text", [
    PETER_VKEY[:-1], PETER_VKEY.replace("c74f20a3", "c74f20a4"),
    "PeterNeumann+c74f20a3",
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
])
def test_bad_verifier_keys(text: str) -> None:
    with pytest.raises(NoteError):
        Verifier.from_text(text)


def test_bad_signer_keys() -> None:
    for text in [PETER_SKEY[:-1], PETER_SKEY.replace("c74f20a3", "c74f20a4"),
                 PETER_SKEY.replace("PRIVATE+KEY", "PUBLIC+KEY"), PETER_VKEY]:
        with pytest.raises(NoteError):
            Signer.from_text(text)


def test_checkpoint_note_format_and_parsing() -> None:
    signer_text, verifier_text = generate_signer(ORIGIN)
    signer, verifier = Signer.from_text(signer_text), Verifier.from_text(verifier_text)
    assert signer_text.startswith(f"PRIVATE+KEY+{ORIGIN}+{signer.key_id.hex()}+A")
    assert verifier_text.startswith(f"{ORIGIN}+{signer.key_id.hex()}+A") and "PRIVATE" not in \
        repr(signer)
    root = bytes(range(32))
    note = sign_checkpoint(signer, ORIGIN, 1234, root)
    body = f"{ORIGIN}\n1234\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert body == checkpoint_body(ORIGIN, 1234, root)
    assert note.startswith(body + "\n— " + ORIGIN + " ") and note.endswith("\n")
    sig = base64.b64decode(note.rsplit(" ", 1)[1])
    assert sig[:4] == signer.key_id and len(sig) == 68
    assert verifier.verify(body.encode(), sig[4:])
    assert parse_checkpoint(note, verifier) == Checkpoint(ORIGIN, 1234, root)
    with pytest.raises(NoteError, match="origin"):
        parse_checkpoint(note, verifier, origin="other.example/log")
    other = Signer.from_text(generate_signer(ORIGIN)[0])
    with pytest.raises(NoteError, match="no signature by the expected key"):
        parse_checkpoint(sign_checkpoint(other, ORIGIN, 1234, root), verifier)
    forged = note.replace("\n1234\n", "\n1235\n")
    with pytest.raises(NoteError, match="invalid signature"):
        parse_checkpoint(forged, verifier)
    for text, message in [(f"{ORIGIN}\n01\n{body.split()[2]}\n", "size"),
                          (f"{ORIGIN}\n1\nAAEC\n", "32"),
                          (f"{ORIGIN}\n1\n{body.split()[2]}\next\n", "extension"),
                          (f"{ORIGIN}\n1\n", "origin, size and root")]:
        with pytest.raises(NoteError, match=message):
            parse_checkpoint(sign_note(signer, text), verifier)


# --- the verifier ---

def test_clean_bundle_verifies(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    report = verify_bundle(folder)
    assert isinstance(report, Report)
    assert report.entries == 100 and report.latest.size == 100
    assert [c.size for c in report.checkpoints] == [10, 40, 64, 100]
    assert report.summary == f"ok: 100 entries, latest checkpoint 100, root " \
        f"{report.latest.root.hex()}"


def test_clean_bundle_via_the_command_line(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    done = subprocess.run([sys.executable, "-m", "auditlog.verify", str(folder)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 100 entries, latest checkpoint 100, root ")
    edit_lines(folder, lambda lines: lines[:50] + lines[51:])
    done = subprocess.run([sys.executable, "-m", "auditlog.verify", str(folder)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("FAILED: entry 51: expected seq 50")


def _zip(folder: Path, target: Path, prefix: str = "") -> Path:
    import zipfile

    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def test_the_downloaded_zip_verifies_in_place(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    archive = _zip(folder, tmp_path / "export.zip")
    assert verify_bundle(archive).summary == verify_bundle(folder).summary
    # A ZIP of the folder itself (one level deeper) is read too.
    nested = _zip(folder, tmp_path / "nested.zip", prefix="export/")
    assert verify_bundle(nested).entries == 100
    done = subprocess.run([sys.executable, "-m", "auditlog.verify", str(archive)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 100 entries, latest checkpoint 100, root ")


def test_a_tampered_or_damaged_zip_fails(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: lines[:50] + lines[51:])
    assert failure(_zip(folder, tmp_path / "cut.zip")).startswith("entry 51: expected seq 50")
    good = _zip(bundle(tmp_path / "again"), tmp_path / "good.zip").read_bytes()
    damaged = tmp_path / "damaged.zip"
    # Whichever byte is hit (local header, deflate stream, central directory), the verifier
    # either says so in a VerifyError or the byte did not matter (a timestamp, a comment).
    for at in range(len(good)):
        damaged.write_bytes(good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:])
        with contextlib.suppress(VerifyError):
            verify_bundle(damaged)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("not a bundle")
    empty = _zip(tmp_path / "nothing", tmp_path / "empty.zip")
    assert failure(empty).startswith("log.vkey: cannot read it")


def test_empty_log_and_uncovered_tail(tmp_path: Path) -> None:
    empty = write_bundle(tmp_path / "empty", [], [], [0])
    assert verify_bundle(empty).latest == Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT)
    folder = write_bundle(tmp_path / "tail", *history(30), [20])
    report = verify_bundle(folder)
    assert report.entries == 30 and "entries 20..29 are not covered" in "\n".join(report.lines())


def test_one_changed_byte_is_named(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: [*lines[:37], lines[37].replace(b'"tip.', b'"tiq.'),
                                      *lines[38:]])
    assert failure(folder).startswith("entry 37: chain hash ")


def test_rewritten_entry_with_recomputed_chain_is_caught_by_the_checkpoint(
        tmp_path: Path) -> None:
    entries = [make_entry(s) for s in range(100)]
    good_lines, good_leaves = link([dict(e) for e in entries])
    entries[23]["action"] = "tip.deleted"
    bad_lines, _ = link(entries)  # every chain hash recomputed after the edit
    folder = tmp_path / "bundle"
    write_bundle(folder, good_lines, good_leaves, [10, 40, 64, 100])
    (folder / "entries.jsonl").write_bytes(b"".join(bad_lines))
    message = failure(folder)
    assert message.startswith("checkpoint checkpoints/40.note: root ")
    assert "entries 10..39 (after the last matching checkpoint, 10)" in message


def test_deleted_line_is_named(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: lines[:16] + lines[17:])
    assert failure(folder).startswith("entry 17: expected seq 16")


def test_swapped_lines_are_named(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: [*lines[:20], lines[21], lines[20], *lines[22:]])
    assert failure(folder).startswith("entry 21: expected seq 20")


def test_broken_prev_link_is_named(tmp_path: Path) -> None:
    entries = [make_entry(s) for s in range(12)]
    lines, _ = link(entries)
    entries[5]["prev"] = "1" * 64
    lines[5] = encode_line(entries[5], chain_hash(bytes.fromhex("1" * 64),
                                                  leaf_hash(canonical(entries[5]))))
    folder = write_bundle(tmp_path / "b", lines, [], [0])
    assert failure(folder).startswith(f"entry 5: prev {'1' * 64} is not the chain hash")


def test_non_canonical_and_truncated_lines_are_named(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: [*lines[:5], lines[5].replace(b'"v":1', b'"v": 1'),
                                      *lines[6:]])
    assert failure(folder) == "entry 5 (line 6): entry is not in canonical form"
    folder = bundle(tmp_path / "2")
    edit_lines(folder, lambda lines: [*lines[:-1], lines[-1][:-1]])
    assert failure(folder).startswith("entry 99 (line 100): the last line is not terminated")


def test_checkpoint_signed_with_another_key(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    other = Signer.from_text(generate_signer(ORIGIN)[0])
    _, leaves = history(100)
    (folder / "checkpoints" / "64.note").write_text(
        sign_checkpoint(other, ORIGIN, 64, merkle.root(leaves[:64])), encoding="utf-8")
    message = failure(folder)
    assert message.startswith("checkpoint checkpoints/64.note: no signature by the expected key "
                              f"{SIGNER.verifier.label} (signed by {other.verifier.label})")


def test_forged_checkpoint_signature(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    path = folder / "checkpoints" / "40.note"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[1] = "41"  # the size line, still signed by the old signature
    path.write_text("\n".join(lines), encoding="utf-8")
    assert failure(folder) == (f"checkpoint checkpoints/40.note: invalid signature for key "
                               f"{SIGNER.verifier.label}")


def test_checkpoint_with_a_wrong_root(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    _, leaves = history(100)
    (folder / "checkpoints" / "64.note").write_text(
        sign_checkpoint(SIGNER, ORIGIN, 64, merkle.root(leaves[:63])), encoding="utf-8")
    message = failure(folder)
    assert message.startswith("checkpoint checkpoints/64.note: root ")
    assert "entries 40..63 (after the last matching checkpoint, 40)" in message


def test_checkpoint_larger_than_the_log(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: lines[:90])
    assert failure(folder).startswith("checkpoint checkpoints/100.note: size 100 is larger than "
                                      "the log (90 entries")


def test_bundle_layout_errors(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    (folder / "checkpoints" / "0040.note").write_text("x", encoding="utf-8")
    assert failure(folder) == "checkpoint checkpoints/0040.note: not named <size>.note"
    (folder / "checkpoints" / "0040.note").unlink()
    shutil.copy(folder / "checkpoints" / "40.note", folder / "checkpoints" / "41.note")
    assert failure(folder) == "checkpoint checkpoints/41.note: its note says size 40"
    (folder / "checkpoints" / "41.note").unlink()
    (folder / "log.vkey").write_text(generate_signer(ORIGIN)[1], encoding="utf-8")
    assert failure(folder).startswith("checkpoint checkpoints/10.note: no signature by the "
                                      "expected key")
    (folder / "log.vkey").write_text("nonsense", encoding="utf-8")
    assert failure(folder).startswith("log.vkey: ")
    shutil.rmtree(folder / "checkpoints")
    (folder / "checkpoints").mkdir()
    (folder / "log.vkey").write_text(SIGNER.verifier_text, encoding="utf-8")
    assert failure(folder) == "no checkpoints in checkpoints/: nothing is signed"


def test_inclusion_of_an_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = bundle(tmp_path)
    report = verify_bundle(folder, entry=57)
    lines, leaves = history(100)
    assert report.inclusion_proof == merkle.inclusion_proof(57, leaves)
    assert report.entry_leaf == leaves[57] and report.entry_line == lines[57]
    assert merkle.verify_inclusion(57, 100, leaves[57], report.inclusion_proof,
                                   report.latest.root)
    assert main([str(folder), "--entry", "57"]) == 0
    out = capsys.readouterr().out
    assert f"included: entry 57 in checkpoint 100, leaf {leaves[57].hex()}, proof of 7 hashes" \
        in out
    assert '"seq":57' in out and report.inclusion_proof[0].hex() in out
    assert failure(folder, entry=100) == ("entry 100 is not covered by the latest checkpoint "
                                          "(size 100)")


def test_consistency_with_an_earlier_checkpoint(tmp_path: Path) -> None:
    lines, leaves = history(100)
    earlier = write_bundle(tmp_path / "earlier", lines[:70], leaves[:70], [40, 70])
    saved = tmp_path / "70.note"
    shutil.copy(earlier / "checkpoints" / "70.note", saved)
    folder = write_bundle(tmp_path / "now", lines, leaves, [40, 70, 100])
    report = verify_bundle(folder, previous=saved)
    assert report.previous == Checkpoint(ORIGIN, 70, merkle.root(leaves[:70]))
    assert report.consistency_proof == merkle.consistency_proof(70, leaves)
    assert len(report.consistency_proof) == 7
    assert "consistent: previous checkpoint 70 " in "\n".join(report.lines())
    assert verify_bundle(folder, previous=folder / "checkpoints" / "40.note").previous
    assert verify_bundle(folder, previous=folder / "checkpoints" / "100.note").previous
    # An earlier checkpoint from a longer log: the log lost entries.
    longer = write_bundle(tmp_path / "longer", *history(120), [120])
    message = failure(folder, previous=longer / "checkpoints" / "120.note")
    assert "size 120 is larger than the latest checkpoint 100" in message
    # A forged previous checkpoint.
    other = Signer.from_text(generate_signer(ORIGIN)[0])
    forged = tmp_path / "forged.note"
    forged.write_text(sign_checkpoint(other, ORIGIN, 70, merkle.root(leaves[:70])), "utf-8")
    assert failure(folder, previous=forged).startswith(f"previous checkpoint {forged}: no "
                                                       "signature by the expected key")


def test_replaced_tail_is_caught_only_with_the_previous_checkpoint(tmp_path: Path) -> None:
    """Someone with the signing key keeps entries 0..39 (checkpoint 40), writes a different
    history after them and signs new checkpoints. The bundle is consistent in itself; only a
    checkpoint kept from an earlier export that covered the old tail shows the rewrite."""
    lines, leaves = history(100)
    earlier = write_bundle(tmp_path / "earlier", lines[:70], leaves[:70], [40, 70])
    kept = tmp_path / "kept-70.note"
    shutil.copy(earlier / "checkpoints" / "70.note", kept)

    new_lines, new_leaves = history(120, variant_from=40)
    assert new_lines[:40] == lines[:40] and new_lines[40] != lines[40]
    folder = write_bundle(tmp_path / "rewritten", new_lines, new_leaves, [40, 80, 120])

    report = verify_bundle(folder)  # the bundle alone verifies...
    assert report.entries == 120 and report.latest.size == 120
    ok = verify_bundle(folder, previous=earlier / "checkpoints" / "40.note")
    assert ok.previous is not None and ok.previous.size == 40  # ...the untouched prefix too
    message = failure(folder, previous=kept)  # but not the checkpoint over the old tail
    assert message.startswith(f"previous checkpoint {kept} (size 70, root ")
    assert "is not consistent with checkpoint 120" in message
    assert main([str(folder), "--previous", str(kept)]) == 1


# --- the byte-level (default) check against the strict JSON check ---

def outcome(folder: Path, **kwargs: Any) -> str:
    """The summary line, or the failure message."""
    try:
        return verify_bundle(folder, **kwargs).summary
    except VerifyError as error:
        return f"FAILED: {error}"


def both(folder: Path, **kwargs: Any) -> tuple[str, str]:
    return outcome(folder, **kwargs), outcome(folder, strict=True, **kwargs)


def rechain(lines: Sequence[bytes], start: int = 0) -> list[bytes]:
    """Recompute the chain hashes (and the prev fields) from line `start` on, as someone without
    the signing key would after editing a line; the entry bytes are kept as they are."""
    out = list(lines[:start])
    prev = ZERO if start == 0 else bytes.fromhex(lines[start - 1][10:74].decode())
    for line in lines[start:]:
        entry = line[84:-2].replace(b'"prev":"' + line[84:-2].split(b'"prev":"')[-1][:64],
                                    b'"prev":"' + prev.hex().encode())
        prev = chain_hash(prev, leaf_hash(entry))
        out.append(b'{"chain":"' + prev.hex().encode() + b'","entry":' + entry + b"}\n")
    return out


def signed_bundle(folder: Path, lines: Sequence[bytes], sizes: Sequence[int]) -> Path:
    """A bundle whose checkpoints sign `lines` as they are (the signer wrote them)."""
    return write_bundle(folder, lines, [leaf_hash(line[84:-2]) for line in lines], sizes)


@pytest.mark.parametrize("block", [1 << 20, 1000, 2])
def test_both_checks_agree_on_a_clean_bundle(tmp_path: Path, block: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditlog.verify._BLOCK", block)  # runs of many lines, or of one
    folder = bundle(tmp_path)
    fast, strict = both(folder, previous=folder / "checkpoints" / "40.note", entry=57)
    assert fast == strict and fast.startswith("ok: 100 entries")
    assert verify_bundle(folder, strict=True).strict and not verify_bundle(folder).strict
    report = verify_bundle(folder, previous=folder / "checkpoints" / "40.note", entry=57)
    lines, leaves = history(100)
    assert report.consistency_proof == merkle.consistency_proof(40, leaves)
    assert report.inclusion_proof == merkle.inclusion_proof(57, leaves)
    assert report.entry_line == lines[57]


def _decoded_lines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seq of every line the verifier decodes as JSON (the strict check), as it goes."""
    import auditlog.verify

    decoded: list[int] = []
    check_json = auditlog.verify._check_json

    def spy(line: bytes, seq: int, prev: bytes) -> tuple[bytes, bytes]:
        decoded.append(seq)
        return check_json(line, seq, prev)

    monkeypatch.setattr("auditlog.verify._check_json", spy)
    return decoded


def test_only_unsigned_lines_are_decoded_by_default(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte-level check really is the path taken: JSON only for the unsigned tail."""
    decoded = _decoded_lines(monkeypatch)
    folder = write_bundle(tmp_path / "b", *history(100), [10, 64])
    assert outcome(folder).startswith("ok: 100 entries, latest checkpoint 64")
    assert decoded == list(range(64, 100))
    decoded.clear()
    assert outcome(folder, strict=True).startswith("ok: 100 entries")
    assert decoded == list(range(100))


TAMPERINGS = {
    "changed byte": lambda lines: [*lines[:37], lines[37].replace(b'"tip.', b'"tiq.'),
                                   *lines[38:]],
    "changed chain": lambda lines: [*lines[:37], lines[37][:20] + b"0" + lines[37][21:],
                                    *lines[38:]],
    "upper-case chain": lambda lines: [*lines[:37], lines[37][:10] + lines[37][10:74].upper()
                                       + lines[37][74:], *lines[38:]],
    "deleted line": lambda lines: lines[:16] + lines[17:],
    "added line": lambda lines: [*lines[:16], lines[16], *lines[16:]],
    "swapped lines": lambda lines: [*lines[:20], lines[21], lines[20], *lines[22:]],
    "space in the entry": lambda lines: [*lines[:5], lines[5].replace(b'"v":1', b'"v": 1'),
                                         *lines[6:]],
    "space in the frame": lambda lines: [*lines[:5], lines[5].replace(b'{"chain":', b'{ "chain":'),
                                         *lines[6:]],
    "escaped character": lambda lines: [*lines[:6], lines[6].replace(b"tip.", b"tip\\u002e", 1),
                                        *lines[7:]],
    "CRLF": lambda lines: [*lines[:5], lines[5][:-1] + b"\r\n", *lines[6:]],
    "empty line": lambda lines: [*lines[:5], b"\n", *lines[5:]],
    "truncated": lambda lines: [*lines[:-1], lines[-1][:-1]],
    "half a line": lambda lines: [*lines[:-1], lines[-1][:200]],
    "lines missing at the end": lambda lines: lines[:90],
    "prev in details": lambda lines: [*lines[:8], lines[8].replace(
        b'"details":{', b'"details":{"prev":"' + lines[8][10:74] + b'",'), *lines[9:]],
    "seq in details": lambda lines: [*lines[:8], lines[8].replace(b'"details":{',
                                                                  b'"details":{"seq":8,'),
                                     *lines[9:]],
    "rewritten and rechained": lambda lines: rechain(
        [*lines[:24], lines[24].replace(b'"tip.', b'"tiq.'), *lines[25:]], 24),
    "deleted and rechained": lambda lines: rechain(lines[:16] + lines[17:], 16),
}


@pytest.mark.parametrize("block", [1 << 20, 1000])
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_both_checks_catch_every_tampering(tmp_path: Path, name: str, block: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditlog.verify._BLOCK", block)
    folder = bundle(tmp_path)
    edit_lines(folder, TAMPERINGS[name])
    fast, strict = both(folder)
    # The byte-level check names the first bad line with the strict check's own message.
    assert fast == strict and fast.startswith("FAILED: "), (fast, strict)
    if name == "rewritten and rechained":  # consistent in itself: only the signed root tells
        assert fast.startswith("FAILED: checkpoint checkpoints/40.note: root ")
        assert "entries 10..39" in fast


def test_a_non_canonical_edit_with_a_recomputed_chain(tmp_path: Path) -> None:
    """An entry edited into non-canonical JSON, the chain recomputed by someone without the key:
    strict mode names the line, the byte-level check the checkpoint whose root it breaks."""
    folder = bundle(tmp_path)
    edit_lines(folder, lambda lines: rechain(
        [*lines[:24], lines[24].replace(b"tip.", b"tip\\u002e", 1), *lines[25:]], 24))
    fast, strict = both(folder)
    assert strict == "FAILED: entry 24 (line 25): entry is not in canonical form"
    assert fast.startswith("FAILED: checkpoint checkpoints/40.note: root ")


def test_strict_check_messages_are_the_reference_ones(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    edit_lines(folder, TAMPERINGS["upper-case chain"])
    assert outcome(folder) == ("FAILED: entry 37 (line 38): chain must be 64 lowercase hex "
                               "characters")
    edit_lines(folder, lambda lines: [*lines[:37], lines[37][:10] + lines[37][10:74].lower()
                                      + lines[37][74:], *lines[38:]])
    assert outcome(folder).startswith("ok: ")
    edit_lines(folder, TAMPERINGS["space in the frame"])
    assert outcome(folder) == "FAILED: entry 5 (line 6): line is not in canonical form"
    edit_lines(folder, lambda lines: [*lines[:5], lines[5].replace(b'{ "chain":', b'{"chain":'),
                                      *lines[6:]])
    edit_lines(folder, lambda lines: [*lines[:5], lines[5].replace(b'"entry":', b'"entry": '),
                                      *lines[6:]])
    assert outcome(folder) == "FAILED: entry 5 (line 6): entry is not in canonical form"
    edit_lines(folder, lambda lines: [*lines[:5], b'{"x":1}\n', *lines[6:]])
    assert outcome(folder) == ('FAILED: entry 5 (line 6): a line must be an object with exactly '
                               'the keys "chain" and "entry"')


def test_a_signed_non_canonical_entry_is_caught_by_strict_only(tmp_path: Path) -> None:
    """Hash-consistent but not canonical: the signer itself committed to a malformed entry. The
    bytes are exactly the signed ones, which is all the byte-level check proves; --strict also
    proves the format. Edited after signing, the same line fails both (previous test)."""
    lines, _ = history(100)
    for edit in [lambda line: line.replace(b"tip.", b"tip\\u002e", 1),  # same value
                 lambda line: line.replace(b'"details":{', b'"details":{"a":1,"a":2,'),
                 lambda line: line.replace(b'"details":{', b'"details":{"z":1.5,')]:
        edited = rechain([*lines[:30], edit(lines[30]), *lines[31:]], 30)
        folder = signed_bundle(tmp_path / str(len(list(tmp_path.iterdir()))), edited,
                               [10, 40, 64, 100])
        fast, strict = both(folder)
        assert fast.startswith("ok: 100 entries")
        assert strict.startswith("FAILED: entry 30 (line 31): ")
        # Past the latest checkpoint the entries are unsigned: both check them strictly.
        folder = signed_bundle(tmp_path / str(len(list(tmp_path.iterdir()))), edited, [10, 30])
        fast, strict = both(folder)
        assert fast == strict and strict.startswith("FAILED: entry 30 (line 31): ")


def test_lines_the_byte_check_cannot_read_are_checked_strictly(tmp_path: Path) -> None:
    """Canonical entries whose tail does not split as expected (a role ending in ",", `prev` and
    `seq` keys in details) verify, through the line-by-line JSON check."""
    entries = [make_entry(s) for s in range(50)]
    entries[3]["role"] = "officer,"
    entries[4]["unit"] = 'a,"b'
    entries[5]["details"] = {"prev": "0" * 64, "role": "x", "seq": 99, "unit": None, "v": 1}
    entries[6]["unit"] = "\n,\"seq\":6,"
    lines, leaves = link(entries)
    folder = write_bundle(tmp_path / "b", lines, leaves, [20, 50])
    assert both(folder) == (outcome(folder),) * 2 and outcome(folder).startswith("ok: 50 ")
    # ... and still catch a wrong top-level seq hidden behind a right one in details.
    entries = [make_entry(s) for s in range(12)]
    entries[7]["seq"] = 70
    entries[7]["details"] = {"seq": 7}
    lines, leaves = link(entries)
    folder = write_bundle(tmp_path / "c", lines, leaves, [12])
    assert both(folder) == ("FAILED: entry 70: expected seq 7 (line 8; a missing, added or "
                            "reordered line)",) * 2


def test_the_stored_tree_gives_the_reference_roots_and_proofs() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(70)]
    for runs in [[70], [1] * 70, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 2]]:
        tree, size = merkle.Tree(), 0
        assert tree.root(0, 0) == merkle.EMPTY_ROOT
        for run in runs:
            tree.extend(leaves[size:size + run])
            size += run
            assert tree.size == size and tree.root(0, size) == merkle.root(leaves[:size])
    for size in range(1, 71):
        for m in range(size + 1):
            assert tree.consistency_proof(m, size) == merkle.consistency_proof(m, leaves[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == merkle.inclusion_proof(index,
                                                                               leaves[:size])
    assert tree.root(3, 11) == merkle.root(leaves[3:11])  # not aligned: computed, still right


def test_strict_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, _ = history(20)
    edited = rechain([*lines[:6], lines[6].replace(b"tip.", b"tip\\u002e", 1), *lines[7:]], 6)
    assert edited[6] != lines[6]
    folder = signed_bundle(tmp_path / "b", edited, [20])
    assert main([str(folder)]) == 0
    assert main([str(folder), "--strict"]) == 1
    assert capsys.readouterr().err == ("FAILED: entry 6 (line 7): entry is not in canonical "
                                       "form\n")


# --- the parallel pass: spans of entries.jsonl checked by this process and worker processes ---

def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditlog.verify._PARALLEL", 1 << 62)
    monkeypatch.setattr("auditlog.verify._PARALLEL_SPAWN", 1 << 62)


@pytest.fixture
def in_spans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The parallel pass at a toy size: entries.jsonl in spans of about 2,000 bytes (lines here
    are about 330), read 700 bytes at a time (lines cut across reads), by two worker processes.
    Returns the first seq of every span that the main process had to check again
    (_recheck: a span a worker found a problem in, or whose claims were wrong)."""
    import auditlog.verify

    monkeypatch.setattr("auditlog.verify._PARALLEL", 0)
    monkeypatch.setattr("auditlog.verify._PARALLEL_SPAWN", 0)
    monkeypatch.setattr("auditlog.verify._SPAN", 2000)
    monkeypatch.setattr("auditlog.verify._SPAN_BLOCK", 700)
    monkeypatch.setattr("auditlog.verify._workers", lambda: 2)
    rechecked: list[int] = []
    recheck = auditlog.verify._recheck

    def spy(state: Any, path: Path, start: int, stop: int) -> int:
        rechecked.append(state.seq)
        return recheck(state, path, start, stop)

    monkeypatch.setattr("auditlog.verify._recheck", spy)
    return rechecked


def spans_of(folder: Path, strict_from: int = 1 << 62) -> list[tuple[int, int, int, bytes]]:
    from auditlog.verify import _spans

    path = folder / "entries.jsonl"
    return _spans(path, path.stat().st_size, strict_from)


@pytest.mark.parametrize("method", [None, "spawn"])  # None: fork on Linux
def test_the_parallel_pass_reports_as_one_process(tmp_path: Path, in_spans: list[int],
                                                  method: str | None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import auditlog.verify

    monkeypatch.setattr("auditlog.verify._START_METHOD", method)
    grafted: list[int] = []
    graft = auditlog.verify._Pass.graft

    def count(state: Any, *args: Any) -> None:
        grafted.append(state.seq)
        graft(state, *args)

    monkeypatch.setattr("auditlog.verify._Pass.graft", count)
    # Spans checked in this process (the spy is pickled by name: a worker runs its own copy).
    mine: list[int] = []
    check_span = auditlog.verify._check_span

    def spy(*args: Any) -> Any:
        mine.append(args[3])
        return check_span(*args)

    spy.__module__, spy.__qualname__ = check_span.__module__, check_span.__qualname__
    monkeypatch.setattr("auditlog.verify._check_span", spy)

    folder = bundle(tmp_path)
    spans = spans_of(folder)
    assert len(spans) > 10 and spans[0][:3] == (0, spans[1][0], 0)
    lines, leaves = history(100)
    for start, stop, seq, prev in spans:  # every span claims where it is, and ends a line
        assert b"".join(lines)[start:stop] == b"".join(lines[seq:seq + len(
            b"".join(lines)[start:stop].splitlines())])
        assert prev == (ZERO if seq == 0 else decode_line(lines[seq - 1])[1])
    kwargs: dict[str, Any] = {"previous": folder / "checkpoints" / "40.note", "entry": 57}
    report = verify_bundle(folder, **kwargs)
    assert grafted == [seq for _, _, seq, _ in spans] and in_spans == []
    assert mine == []  # every span was checked by a worker process
    assert report.inclusion_proof == merkle.inclusion_proof(57, leaves)
    assert report.consistency_proof == merkle.consistency_proof(40, leaves)
    assert report.entry_line == lines[57]
    parallel = report.lines()
    one_process(monkeypatch)
    assert verify_bundle(folder, **kwargs).lines() == parallel
    assert grafted == [seq for _, _, seq, _ in spans]  # (not called again)


@pytest.mark.parametrize("span", [1500, 2000, 2600])  # moves the span ends across the lines
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_the_parallel_pass_names_every_tampering_as_one_process(
        tmp_path: Path, name: str, span: int, in_spans: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditlog.verify._SPAN", span)
    folder = bundle(tmp_path)
    edit_lines(folder, TAMPERINGS[name])
    parallel = outcome(folder)
    assert parallel.startswith("FAILED: ") and len(spans_of(folder)) > 5
    one_process(monkeypatch)
    assert outcome(folder) == parallel == outcome(folder, strict=True)
    # The span with a bad line was checked again by this process; a wrong root or a missing
    # end is found by this process from the spans the workers passed.
    assert bool(in_spans) == (name not in ("rewritten and rechained", "lines missing at the end"))


def test_a_damaged_entry_in_the_second_span_is_named(tmp_path: Path,
                                                      in_spans: list[int]) -> None:
    folder = bundle(tmp_path)
    spans = spans_of(folder)
    second = spans[1][2]
    for seq, first in [(second + 2, second), (second, second), (second - 1, 0)]:
        edit_lines(folder, lambda lines, seq=seq: [
            *lines[:seq], lines[seq].replace(b'"staff"', b'"Staff"'), *lines[seq + 1:]])
        assert failure(folder).startswith(f"entry {seq}: chain hash ")
        assert in_spans == [first]  # that span alone was checked again, by this process
        in_spans.clear()
        folder = bundle(tmp_path / str(seq))
    # A changed chain hash on the first span's last line: the second span's claim is wrong too.
    edit_lines(folder, lambda lines: [*lines[:second - 1], lines[second - 1][:20] + b"0"
                                      + lines[second - 1][21:], *lines[second:]])
    assert failure(folder).startswith(f"entry {second - 1}: chain hash ")
    assert in_spans == [0]


def test_the_parallel_pass_leaves_the_unsigned_lines_to_the_strict_check(
        tmp_path: Path, in_spans: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = _decoded_lines(monkeypatch)
    folder = write_bundle(tmp_path / "b", *history(100), [10, 64])
    assert len(spans_of(folder, 64)) < len(spans_of(folder))  # no span past line 64 is given out
    assert outcome(folder).startswith("ok: 100 entries, latest checkpoint 64")
    assert decoded == list(range(64, 100)) and in_spans == []
    # The lines the byte check cannot read are checked strictly by the worker, and pass.
    entries = [make_entry(s) for s in range(50)]
    entries[13]["role"] = "officer,"
    entries[14]["details"] = {"prev": "0" * 64, "role": "x", "seq": 99, "unit": None, "v": 1}
    folder = write_bundle(tmp_path / "c", *link(entries), [20, 50])
    assert outcome(folder).startswith("ok: 50 entries") and in_spans == []
    # A checkpoint inside a span whose root is wrong is named as by one process.
    folder = bundle(tmp_path / "d")
    _, leaves = history(100)
    (folder / "checkpoints" / "64.note").write_text(
        sign_checkpoint(SIGNER, ORIGIN, 64, merkle.root(leaves[:63])), encoding="utf-8")
    assert failure(folder).startswith("checkpoint checkpoints/64.note: root ")
    assert in_spans == []


def test_a_zip_is_read_by_one_process_and_verifies_the_same(tmp_path: Path,
                                                            in_spans: list[int]) -> None:
    folder = bundle(tmp_path)
    assert verify_bundle(_zip(folder, tmp_path / "export.zip")).lines() == \
        verify_bundle(folder).lines()


@pytest.mark.skipif(sys.platform != "linux", reason="the failing worker is set up by fork")
def test_a_worker_that_fails_or_dies_only_costs_time(tmp_path: Path, in_spans: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import auditlog.verify

    monkeypatch.setattr("auditlog.verify._START_METHOD", "fork")
    folder = bundle(tmp_path)
    spans = spans_of(folder)
    expected = verify_bundle(folder).lines()
    in_spans.clear()
    check_span = auditlog.verify._check_span

    def failing(*args: Any) -> Any:  # runs in the workers (inherited by fork)
        if args[3] == spans[3][2]:
            raise MemoryError
        if args[3] == spans[6][2]:
            os._exit(3)  # the worker dies: the spans it would have taken are checked here
        return check_span(*args)

    monkeypatch.setattr("auditlog.verify._check_span", failing)
    assert verify_bundle(folder).lines() == expected
    assert spans[3][2] in in_spans and spans[6][2] in in_spans
    assert len(in_spans) < len(spans)  # the spans before were taken from the workers
