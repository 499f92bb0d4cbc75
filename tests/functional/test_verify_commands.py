"""The offline verifier under both its names, on ZIPs the auditor's page exported: `python -m
auditlog.verify` (its home since the log left referral/) and `python -m referral.verify`, which
exports made before the move name and which keeps working for a release. Each runs as its own
process from a folder outside the checkout, as an auditor would run it, and imports nothing but
the standard library and `cryptography` (docs/audit-log.md)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("auditlog.verify", "referral.verify")
# What the verifier may import besides the standard library: itself, and cryptography with what
# cryptography itself loads (its compiled OpenSSL binding, its cffi backend; bcrypt, which its
# SSH key support imports when it is installed).
ALLOWED = {"auditlog", "referral", "cryptography", "_openssl", "_cffi_backend", "bcrypt"}


# Runs a module as `python -m` would, then names every module loaded (sys.modules at exit).
LISTING = ("import atexit, runpy, sys\n"
           "atexit.register(lambda: print('MODULES', *sys.modules, file=sys.stderr))\n"
           "sys.argv[0] = sys.argv.pop(1)\n"
           "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")


def run(command: str, *args: str, cwd: Path, list_modules: bool = False
        ) -> subprocess.CompletedProcess[str]:
    how = ["-c", LISTING, command] if list_modules else ["-m", command]
    return subprocess.run([sys.executable, *how, *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, timeout=120, check=False)


def export(client, folder: Path, name: str) -> Path:
    response = client.post("/audit/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    path = folder / name
    path.write_bytes(response.data)
    return path


@pytest.fixture
def exports(app, client, staff, tmp_path) -> tuple[Path, Path]:
    """Two exports by an auditor, the second after more was logged: (earlier, later)."""
    auditor = staff.create("auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    earlier = export(client, tmp_path, "earlier.zip")
    assert client.post("/audit/verify").status_code in (200, 302, 303)  # logged: audit.verified
    later = export(client, tmp_path, "later.zip")
    return earlier, later


def latest_note(bundle: Path, into: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        notes = [n for n in archive.namelist() if n.startswith("checkpoints/")]
        name = max(notes, key=lambda n: int(Path(n).stem))
        (into / "previous.note").write_bytes(archive.read(name))
    return into / "previous.note"


def test_both_names_verify_a_real_export_with_proofs(exports, tmp_path) -> None:
    earlier, later = exports
    previous = latest_note(earlier, tmp_path)
    outputs = []
    for command in COMMANDS:
        done = run(command, later.name, "--previous", str(previous), "--entry", "0",
                   cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.startswith("ok: ")
        assert "consistent: previous checkpoint" in done.stdout
        assert "included: entry 0 in checkpoint" in done.stdout
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]


def test_both_names_fail_a_changed_export(exports, tmp_path) -> None:
    _, later = exports
    with zipfile.ZipFile(later) as original, \
            zipfile.ZipFile(tmp_path / "changed.zip", "w") as changed:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "entries.jsonl":
                data = data.replace(b'"staff"', b'"Staff"', 1)
            changed.writestr(item, data)
    for command in COMMANDS:
        done = run(command, "changed.zip", cwd=tmp_path)
        assert done.returncode == 1, (command, done.stdout)
        assert done.stderr.startswith("FAILED: entry "), (command, done.stderr)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_verifier_needs_only_the_standard_library_and_cryptography(exports, tmp_path,
                                                                      command) -> None:
    _, later = exports
    baseline = loaded(run("this", cwd=tmp_path, list_modules=True))  # the interpreter's own
    done = run(command, later.name, cwd=tmp_path, list_modules=True)
    assert done.returncode == 0 and done.stdout.startswith("ok: "), done.stderr
    modules = loaded(done) - baseline - set(sys.stdlib_module_names)
    assert {"auditlog", "cryptography"} <= modules
    assert modules <= ALLOWED, sorted(modules - ALLOWED)


def loaded(done: subprocess.CompletedProcess[str]) -> set[str]:
    """Top-level names of the modules a LISTING run had loaded when it ended."""
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return {name.split(".")[0] for name in line.split()[1:]}
