"""portal/security/crypto.py held to the reference (issue 9): property tests that cross-check our
age v1
writer and reader with Debian's `age` and with pyrage in both directions, and feed all three the
same damaged and non-canonical files, which each must refuse.

What must be refused comes from the age spec (c2sp.org/age, age-encryption.org/v1). Where the spec
is clear and a reference is laxer, ours follows the spec and the case names the lax reference
(`lax=`), whose verdict is then not asserted. Non-canonical files are forged here with
`cryptography` directly, not through portal.security.crypto, so that they carry a valid header MAC
and only
the parser can catch them.

Speed: the `age` commands of one test run in one `sh` process (`AgeCli.run`); hypothesis runs a
bounded, derandomized number of examples.
"""

from __future__ import annotations

import base64
import hmac
import io
import itertools
import random
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import example, given, settings
from hypothesis import strategies as st

from portal.security import crypto
from tests.unit.test_crypto import require_age

C = crypto.CHUNK_SIZE
SEALED_CHUNK = C + 16
KEYS = [crypto.keypair_from_seed(sha256(b"age interop %d" % i).digest()) for i in range(21)]
OUTSIDER = KEYS[20]  # never a recipient
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None)
BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# ---------------------------------------------------------------------------------------------
# The three implementations


@dataclass(frozen=True)
class AgeResult:
    returncode: int
    stdout: bytes
    stderr: str


class AgeCli:
    """Debian's `age` and `age-keygen`, every command of a batch in one `sh` process."""

    def __init__(self, workdir: Path) -> None:
        self.age = require_age()
        self.keygen = str(Path(self.age).with_name("age-keygen"))
        self.workdir = workdir
        self._identity_files: dict[crypto.KeyPair, str] = {}

    def write(self, text: str) -> str:
        handle, name = tempfile.mkstemp(dir=self.workdir, suffix=".txt")
        with open(handle, "wb") as out:
            out.write(text.encode())
        return name

    def identity_file(self, key: crypto.KeyPair) -> str:
        if key not in self._identity_files:
            self._identity_files[key] = self.write(
                crypto.identity_file_text(key.identity, "age interop test"))
        return self._identity_files[key]

    def decrypt(self, ciphertext: bytes, key: crypto.KeyPair) -> tuple[list[str], bytes]:
        return [self.age, "-d", "-i", self.identity_file(key)], ciphertext

    def encrypt(self, plaintext: bytes, recipients: list[str], armor: bool = False
                ) -> tuple[list[str], bytes]:
        flags = ["-a"] if armor else []
        return [self.age, *flags, *(a for r in recipients for a in ("-r", r))], plaintext

    def run(self, commands: list[tuple[list[str], bytes]]) -> list[AgeResult]:
        batch = Path(tempfile.mkdtemp(dir=self.workdir))
        try:
            script = []
            for n, (argv, stdin) in enumerate(commands):
                (batch / f"{n}.in").write_bytes(stdin)
                script.append(f"{shlex.join(argv)} <{n}.in >{n}.out 2>{n}.err; echo $? >{n}.rc")
            subprocess.run(["sh", "-c", "\n".join(script)], cwd=batch, check=True, timeout=120)
            return [AgeResult(int((batch / f"{n}.rc").read_text()),
                              (batch / f"{n}.out").read_bytes(),
                              (batch / f"{n}.err").read_text(errors="replace"))
                    for n in range(len(commands))]
        finally:
            shutil.rmtree(batch)


@pytest.fixture(scope="module")
def age_cli(tmp_path_factory: pytest.TempPathFactory) -> AgeCli:
    return AgeCli(tmp_path_factory.mktemp("age-cli"))


def pyrage_decrypt(ciphertext: bytes, key: crypto.KeyPair) -> bytes:
    return pyrage.decrypt(ciphertext, [pyrage.x25519.Identity.from_str(key.identity)])


def pyrage_encrypt(plaintext: bytes, keys: list[crypto.KeyPair]) -> bytes:
    return pyrage.encrypt(plaintext, [pyrage.x25519.Recipient.from_str(k.recipient) for k in keys])


def push_sealed(plaintext: bytes, keys: list[crypto.KeyPair], pieces: list[int]) -> bytes:
    """Seal as an upload arrives: AgeWriter fed in pieces of the given sizes, in turn."""
    out = io.BytesIO()
    writer = crypto.AgeWriter(out, [k.recipient for k in keys])
    writer.write(b"")
    sizes = itertools.cycle(pieces or [C])
    at = 0
    while at < len(plaintext):
        step = next(sizes)
        writer.write(plaintext[at : at + step])
        at += step
    writer.close()
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# The layout of an age file


def payload_start(sealed: bytes) -> int:
    """Where the binary payload (16-byte nonce, then chunks) starts: after the MAC line."""
    return sealed.index(b"\n", sealed.index(b"\n--- ") + 1) + 1


def split_chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    """The header and nonce, and the sealed chunks (64 KiB + 16-byte tag, the last shorter)."""
    start = payload_start(sealed) + 16
    body = sealed[start:]
    return sealed[:start], [body[i : i + SEALED_CHUNK] for i in range(0, len(body), SEALED_CHUNK)]


def payload_size(plaintext_size: int) -> int:
    """Nonce plus chunks: the final chunk is never empty unless the whole payload is."""
    return 16 + plaintext_size + 16 * max(1, -(-plaintext_size // C))


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------------------------------------
# Forging files straight from the spec, to control every byte of the header


def b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def wrap_x25519(file_key: bytes, recipient: str, seed: bytes) -> tuple[bytes, bytes]:
    """The ephemeral share and body of an X25519 stanza for `recipient`."""
    _, public = crypto.bech32_decode(recipient)
    ephemeral = X25519PrivateKey.from_private_bytes(sha256(seed).digest())
    share = ephemeral.public_key().public_bytes_raw()
    secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    wrap_key = hkdf(secret, share + public, b"age-encryption.org/v1/X25519")
    return share, ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)


def forge(file_key: bytes, lines: list[bytes], chunks: list[tuple[bytes, bool]],
          newline: bytes = b"\n", mac_line: Callable[[bytes], bytes] = lambda m: b"--- " + m
          ) -> bytes:
    """An age file with exactly these header lines (version line first, MAC line excluded), a
    valid MAC over them, and these payload chunks (plaintext, whether it is marked final)."""
    header = newline.join(lines) + newline + b"---"
    mac = hmac.new(hkdf(file_key, b"", b"header"), header, sha256).digest()
    nonce = sha256(header).digest()[:16]
    aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
    payload = b"".join(
        aead.encrypt(n.to_bytes(11, "big") + (b"\x01" if final else b"\x00"), text, None)
        for n, (text, final) in enumerate(chunks))
    return header[: -len(b"---")] + mac_line(b64(mac)) + newline + nonce + payload


# ---------------------------------------------------------------------------------------------
# The cases every implementation must agree on


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    key: crypto.KeyPair = KEYS[0]
    plaintext: bytes | None = None  # a valid file that all three must open to this
    lax: frozenset[str] = frozenset()  # references known to accept this breach of the spec


def swap_char(data: bytes, at: int) -> bytes:
    """Another base64 character at `at` (so the change is not caught as bad base64)."""
    changed = bytearray(data)
    changed[at] = BASE64[(BASE64.index(data[at]) + 1) % 64]
    return bytes(changed)


def flip(data: bytes, at: int, mask: int = 1) -> bytes:
    changed = bytearray(data)
    changed[at] ^= mask
    return bytes(changed)


def rechunk(data: bytes, order: list[int]) -> bytes:
    head, chunks = split_chunks(data)
    return head + b"".join(chunks[i] for i in order)


def _stanza_line(data: bytes) -> int:
    return data.index(b"\n-> ") + 1


DAMAGES: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("truncated: empty file", lambda b: b""),
    ("truncated: inside the version line", lambda b: b[:10]),
    ("truncated: inside the first stanza", lambda b: b[: _stanza_line(b) + 20]),
    ("truncated: before the MAC line", lambda b: b[: b.index(b"\n--- ") + 1]),
    ("truncated: inside the MAC", lambda b: b[: b.index(b"\n--- ") + 20]),
    ("truncated: MAC line without its newline", lambda b: b[: payload_start(b) - 1]),
    ("truncated: header only", lambda b: b[: payload_start(b)]),
    ("truncated: inside the payload nonce", lambda b: b[: payload_start(b) + 8]),
    ("truncated: nonce but no chunk", lambda b: b[: payload_start(b) + 16]),
    ("truncated: inside the first chunk", lambda b: b[: payload_start(b) + 16 + 1000]),
    ("truncated: at the first chunk boundary", lambda b: rechunk(b, [0])),
    # The dangerous one: what is left ends in a full chunk, which a careless reader takes as final.
    ("truncated: at a full-chunk boundary, final chunk dropped", lambda b: rechunk(b, [0, 1, 2])),
    ("truncated: inside the final chunk", lambda b: b[:-50]),
    ("truncated: last byte", lambda b: b[:-1]),
    ("chunks reordered: first and second swapped", lambda b: rechunk(b, [1, 0, 2, 3])),
    ("chunks reordered: second and third swapped", lambda b: rechunk(b, [0, 2, 1, 3])),
    ("chunks reordered: final chunk moved first", lambda b: rechunk(b, [3, 0, 1, 2])),
    ("chunk dropped: the second", lambda b: rechunk(b, [0, 2, 3])),
    ("chunk repeated: the first twice", lambda b: rechunk(b, [0, 0, 1, 2, 3])),
    ("chunk repeated: the final one twice", lambda b: rechunk(b, [0, 1, 2, 3, 3])),
    ("data after the final chunk", lambda b: b + bytes(40)),
    ("flipped byte: version line", lambda b: flip(b, 3)),
    ("flipped byte: stanza type", lambda b: flip(b, _stanza_line(b) + 4)),
    ("flipped byte: stanza share", lambda b: swap_char(b, _stanza_line(b) + 20)),
    ("flipped byte: stanza body",
     lambda b: swap_char(b, b.index(b"\n", _stanza_line(b)) + 11)),
    ("flipped byte: header MAC", lambda b: swap_char(b, b.index(b"\n--- ") + 15)),
    ("flipped byte: MAC separator", lambda b: flip(b, b.index(b"\n--- ") + 4)),
    ("flipped byte: payload nonce", lambda b: flip(b, payload_start(b) + 3)),
    ("flipped byte: first chunk", lambda b: flip(b, payload_start(b) + 16 + 100)),
    ("flipped byte: tag of a full chunk", lambda b: flip(b, payload_start(b) + 16 + C + 5)),
    ("flipped byte: final chunk", lambda b: flip(b, len(b) - 30)),
    ("flipped byte: last byte", lambda b: flip(b, len(b) - 1, 0x80)),
]

DAMAGE_PLAINTEXT = random_bytes(3 * C + 100, 9)  # three full chunks and a short final one
DAMAGE_KEYS = [KEYS[0], KEYS[1]]  # the reader holds the second: the first stanza is skipped


def damaged_cases() -> list[Case]:
    bases = {"ours": crypto.seal(DAMAGE_PLAINTEXT, [k.recipient for k in DAMAGE_KEYS]),
             "pyrage": pyrage_encrypt(DAMAGE_PLAINTEXT, DAMAGE_KEYS)}
    cases = []
    for origin, base in bases.items():
        assert len(split_chunks(base)[1]) == 4
        cases += [Case(f"{origin} file, {name}", damage(base), KEYS[1]) for name, damage in DAMAGES]
        cases += [Case(f"{origin} file, wrong key", base, OUTSIDER),
                  Case(f"{origin} file, intact", base, KEYS[1], plaintext=DAMAGE_PLAINTEXT)]
    return cases


def forged_cases() -> list[Case]:
    file_key = sha256(b"forged file key").digest()[:16]
    share, body = wrap_x25519(file_key, KEYS[0].recipient, b"ephemeral")
    intro = b"age-encryption.org/v1"
    ours = [b"-> X25519 " + b64(share), b64(body)]
    text = b"forged"

    def file(*lines: bytes, chunks: list[tuple[bytes, bool]] | None = None, **kw: object
             ) -> bytes:
        return forge(file_key, list(lines), [(text, True)] if chunks is None else chunks, **kw)

    def stray_bits(encoded: bytes) -> bytes:  # the same value, with unused bits set
        return encoded[:-1] + bytes([BASE64[BASE64.index(encoded[-1]) ^ 1]])

    low_order = {"the all-zero point": bytes(32), "u = 1": b"\x01" + bytes(31),
                 "u = p, a non-canonical zero": (2**255 - 19).to_bytes(32, "little")}
    both = frozenset({"age", "pyrage"})
    refused = [
        Case("non-canonical: base64 padding in the share",
             file(intro, b"-> X25519 " + base64.b64encode(share), b64(body))),
        Case("non-canonical: base64 padding in the body",
             file(intro, ours[0], base64.b64encode(body))),
        Case("non-canonical: trailing bits in the share",
             file(intro, b"-> X25519 " + stray_bits(b64(share)), b64(body))),
        Case("non-canonical: trailing bits in the body",
             file(intro, ours[0], stray_bits(b64(body)))),
        Case("non-canonical: base64 padding on the MAC",
             file(intro, *ours, mac_line=lambda m: b"--- " + m + b"=")),
        Case("non-canonical: CRLF line endings", file(intro, *ours, newline=b"\r\n")),
        Case("non-canonical: uppercase AGE-ENCRYPTION.ORG", file(intro.upper(), *ours)),
        Case("non-canonical: version v2", file(b"age-encryption.org/v2", *ours)),
        Case("extra whitespace: after the version line", file(intro + b" ", *ours)),
        Case("extra whitespace: two spaces between arguments",
             file(intro, b"-> X25519  " + b64(share), b64(body))),
        Case("extra whitespace: after the last argument", file(intro, ours[0] + b" ", ours[1])),
        Case("extra whitespace: before the body", file(intro, ours[0], b" " + ours[1])),
        Case("extra whitespace: a blank line before the MAC", file(intro, *ours, b"")),
        Case("extra whitespace: two spaces after ---",
             file(intro, *ours, mac_line=lambda m: b"---  " + m)),
        Case("extra whitespace: after the MAC",
             file(intro, *ours, mac_line=lambda m: b"--- " + m + b" ")),
        Case("line length: a body line of 68 columns",
             file(intro, b"-> example.com/enigma", b"A" * 68, b"", *ours)),
        Case("line length: the X25519 body wrapped at 32 columns",
             file(intro, ours[0], ours[1][:32], ours[1][32:])),
        Case("line length: a 64-column line without the short final line",
             file(intro, b"-> example.com/enigma", b"A" * 64, *ours), lax=frozenset({"pyrage"})),
        Case("empty-recipient header", file(intro)),
        Case("stanza without arguments", file(intro, b"-> ", b"", *ours)),
        Case("stanza marker without its space", file(intro, b"->", b"", *ours)),
        Case("stanza argument with a tab", file(intro, b"-> example.com/enigma a\tb", b"", *ours)),
        Case("stanza argument not ASCII", file(intro, "-> example.com/é".encode(), b"", *ours)),
        Case("X25519 stanza with one argument", file(intro, b"-> X25519", b64(body), *ours)),
        Case("X25519 stanza with three arguments",
             file(intro, ours[0] + b" extra", b64(body), *ours)),
        Case("X25519 share of 31 bytes",
             file(intro, b"-> X25519 " + b64(share[:31]), b64(body), *ours)),
        Case("X25519 body of 33 bytes", file(intro, ours[0], b64(body + b"!"), *ours)),
        # The spec's MUSTs hold for every X25519 stanza; both references stop at the first match.
        Case("X25519 stanza with three arguments after the matching one",
             file(intro, *ours, ours[0] + b" extra", b64(body)), lax=both),
        Case("X25519 stanza with one argument after the matching one",
             file(intro, *ours, b"-> X25519", b64(body)), lax=both),
        Case("X25519 body of 33 bytes after the matching stanza",
             file(intro, *ours, ours[0], b64(body + b"!")), lax=both),
        # "An scrypt stanza, if present, MUST be the only stanza"; Debian's age 1.1.1 lets it pass.
        Case("scrypt stanza beside an X25519 one",
             file(intro, *ours, b"-> scrypt " + b64(bytes(16)) + b" 10", b64(body)),
             lax=frozenset({"age"})),
        *(Case(f"low-order share: {name}", file(intro, b"-> X25519 " + b64(point), b64(body)))
          for name, point in low_order.items()),
        Case("low-order share before the matching stanza",
             file(intro, b"-> X25519 " + b64(bytes(32)), b64(body), *ours)),
        Case("payload: no chunk at all", file(intro, *ours, chunks=[])),
        Case("payload: the only chunk not marked final",
             file(intro, *ours, chunks=[(text, False)])),
        Case("payload: empty final chunk after a full one",
             file(intro, *ours, chunks=[(bytes(C), False), (b"", True)])),
        Case("payload: a full chunk marked final, then more",
             file(intro, *ours, chunks=[(bytes(C), True), (text, True)])),
        Case("payload: a short chunk before the final one",
             file(intro, *ours, chunks=[(text, False), (text, True)])),
    ]
    accepted = [
        Case("valid: the forge itself", file(intro, *ours), plaintext=text),
        Case("valid: an unknown stanza first",
             file(intro, b"-> example.com/enigma a b", b"AAAA", *ours), plaintext=text),
        Case("valid: an unknown stanza with a 64-column line and an empty final line",
             file(intro, b"-> example.com/enigma", b"A" * 64, b"", *ours), plaintext=text),
        # A post-quantum or plugin stanza has arguments of 1,500 characters and more.
        Case("valid: an unknown stanza with a 2,000-character argument",
             file(intro, b"-> example.com/enigma " + b"A" * 2_000, b"", *ours), plaintext=text),
        Case("valid: empty payload", file(intro, *ours, chunks=[(b"", True)]), plaintext=b""),
        Case("valid: one full chunk marked final",
             file(intro, *ours, chunks=[(bytes(C), True)]), plaintext=bytes(C)),
    ]
    return refused + accepted


CASES = damaged_cases() + forged_cases()
assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_ours_and_pyrage_agree_on_each_case(case: Case) -> None:
    if case.plaintext is not None:
        assert crypto.open_sealed(case.data, [case.key.identity]) == case.plaintext
        assert pyrage_decrypt(case.data, case.key) == case.plaintext
        return
    with pytest.raises(crypto.CryptoError):  # never data, never another exception
        crypto.open_sealed(case.data, [case.key.identity])
    if "pyrage" not in case.lax:
        with pytest.raises(pyrage.DecryptError):
            pyrage_decrypt(case.data, case.key)


@pytest.fixture(scope="module")
def age_verdicts(age_cli: AgeCli) -> dict[str, AgeResult]:
    results = age_cli.run([age_cli.decrypt(case.data, case.key) for case in CASES])
    return {case.name: result for case, result in zip(CASES, results, strict=True)}


@pytest.mark.parametrize("case", [case for case in CASES if "age" not in case.lax],
                         ids=lambda case: case.name)
def test_age_agrees_on_each_case(case: Case, age_verdicts: dict[str, AgeResult]) -> None:
    verdict = age_verdicts[case.name]
    if case.plaintext is not None:
        assert verdict.returncode == 0, verdict.stderr
        assert verdict.stdout == case.plaintext
    else:
        assert verdict.returncode != 0, f"age accepted: {case.name}"


# ---------------------------------------------------------------------------------------------
# Round trips in every direction


BOUNDARIES = [(0, 1), (1, 20), (C - 1, 3), (C, 20), (C + 1, 1), (2 * C, 7), (5 * C + 17, 20)]


@pytest.mark.parametrize(("size", "count"), BOUNDARIES)
def test_chunk_boundaries_in_every_direction(age_cli: AgeCli, size: int, count: int) -> None:
    plaintext = random_bytes(size, size)
    keys = KEYS[:count]
    recipients = [k.recipient for k in keys]
    ours = crypto.seal(plaintext, recipients)
    readers = list(dict.fromkeys([keys[0], keys[-1], keys[count // 2]]))
    *opened, by_age = age_cli.run([*(age_cli.decrypt(ours, key) for key in readers),
                                   age_cli.encrypt(plaintext, recipients)])
    for result in opened:  # ours → age
        assert result.returncode == 0, result.stderr
        assert result.stdout == plaintext
    assert by_age.returncode == 0, by_age.stderr
    by_pyrage = pyrage_encrypt(plaintext, keys)
    for key in keys:  # any one of the recipients
        assert crypto.open_sealed(by_age.stdout, [key.identity]) == plaintext  # age → ours
        assert crypto.open_sealed(by_pyrage, [key.identity]) == plaintext  # pyrage → ours
    for key in readers:
        assert pyrage_decrypt(ours, key) == plaintext  # ours → pyrage
    # The same chunking as the references: a full final chunk, never an empty one after it.
    for sealed in (ours, by_age.stdout, by_pyrage):
        assert len(sealed) - payload_start(sealed) == payload_size(size)


near_boundaries = st.builds(lambda chunks, delta: max(0, chunks * C + delta),
                            st.integers(0, 5), st.integers(-2, 2))
payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(random_bytes, st.one_of(near_boundaries, st.integers(0, 6 * C)),
              st.integers(0, 2**32)),
)


@PROPERTY
@given(plaintext=payloads, data=st.data())
def test_round_trips_in_every_direction(age_cli: AgeCli, plaintext: bytes,
                                        data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.sampled_from(KEYS[:20]), min_size=1, max_size=20, unique=True),
                     label="recipients")
    reader = data.draw(st.sampled_from(keys), label="reader")
    pieces = data.draw(st.lists(st.integers(1, 3 * C), max_size=6), label="upload pieces")
    ours = push_sealed(plaintext, keys, pieces)
    recipients = [k.recipient for k in keys]
    opened, by_age = age_cli.run([age_cli.decrypt(ours, reader),
                                  age_cli.encrypt(plaintext, recipients)])
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == plaintext
    assert by_age.returncode == 0, by_age.stderr
    assert crypto.open_sealed(by_age.stdout, [OUTSIDER.identity, reader.identity]) == plaintext
    assert pyrage_decrypt(ours, reader) == plaintext
    assert crypto.open_sealed(pyrage_encrypt(plaintext, keys), [reader.identity]) == plaintext
    assert len(ours) - payload_start(ours) == payload_size(len(plaintext))


# ---------------------------------------------------------------------------------------------
# Damage anywhere, drawn by hypothesis


PROPERTY_PLAINTEXT = random_bytes(2 * C + 100, 7)
PROPERTY_FILE = crypto.seal(PROPERTY_PLAINTEXT, [k.recipient for k in DAMAGE_KEYS])
_head = payload_start(PROPERTY_FILE)
# Cut points worth drawing more often than chance would: around the header, nonce and chunk ends.
EDGES = sorted({max(0, min(len(PROPERTY_FILE) - 1, at + delta))
                for at in (_head, _head + 16, _head + 16 + SEALED_CHUNK,
                           _head + 16 + 2 * SEALED_CHUNK, len(PROPERTY_FILE))
                for delta in (-17, -16, -1, 0, 1)})


def assert_all_refuse(age_cli: AgeCli, files: list[bytes]) -> None:
    reader = DAMAGE_KEYS[1]
    verdicts = age_cli.run([age_cli.decrypt(f, reader) for f in files])
    for damaged, verdict in zip(files, verdicts, strict=True):
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(damaged, [reader.identity])
        with pytest.raises(pyrage.DecryptError):
            pyrage_decrypt(damaged, reader)
        assert verdict.returncode != 0, "age accepted a damaged file"


@PROPERTY
@given(cuts=st.lists(st.one_of(st.sampled_from(EDGES), st.integers(0, len(PROPERTY_FILE) - 1)),
                     min_size=1, max_size=6, unique=True))
def test_every_truncation_is_refused(age_cli: AgeCli, cuts: list[int]) -> None:
    assert_all_refuse(age_cli, [PROPERTY_FILE[:cut] for cut in cuts])


@PROPERTY
@given(changes=st.lists(st.tuples(st.integers(0, len(PROPERTY_FILE) - 1), st.integers(1, 255)),
                        min_size=1, max_size=6, unique_by=lambda change: change[0]))
def test_every_changed_byte_is_refused(age_cli: AgeCli, changes: list[tuple[int, int]]) -> None:
    assert_all_refuse(age_cli, [flip(PROPERTY_FILE, at, mask) for at, mask in changes])


@PROPERTY
@given(orders=st.lists(st.lists(st.integers(0, 2), max_size=4).filter(lambda o: o != [0, 1, 2]),
                       min_size=1, max_size=4))
def test_every_other_chunk_sequence_is_refused(age_cli: AgeCli, orders: list[list[int]]) -> None:
    assert_all_refuse(age_cli, [rechunk(PROPERTY_FILE, order) for order in orders])


# ---------------------------------------------------------------------------------------------
# Keys, identity files and armor


def test_a_low_order_recipient_is_refused_by_ours_and_age(age_cli: AgeCli) -> None:
    low_order = crypto.bech32_encode("age", bytes(32))
    with pytest.raises(crypto.CryptoError):
        crypto.seal(b"to nobody", [low_order])
    [verdict] = age_cli.run([age_cli.encrypt(b"to nobody", [low_order])])
    assert verdict.returncode != 0


# Comments of any text, line breaks drawn often: a comment must never end its line early.
comments = st.text(st.one_of(st.characters(), st.sampled_from("\n\r\u2028#")), max_size=40)


@PROPERTY
@given(comments=st.lists(comments, min_size=1, max_size=4))
@example(comments=["Qingliu recovery key\nunit zhou", "\r\n", "a\u2028b"])
def test_identity_files_are_read_by_age(age_cli: AgeCli, comments: list[str]) -> None:
    key = KEYS[3]
    sealed = crypto.seal(b"readable", [key.recipient])
    files = [age_cli.write(crypto.identity_file_text(key.identity, c)) for c in comments]
    results = age_cli.run([([age_cli.age, "-d", "-i", f], sealed) for f in files]
                          + [([age_cli.keygen, "-y", f], b"") for f in files])
    for result in results[: len(files)]:
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"readable"
    for result in results[len(files) :]:
        assert result.stdout.decode().split() == [key.recipient]
    identity = pyrage.x25519.Identity.from_str(key.identity)
    assert str(identity.to_public()) == key.recipient


def test_age_keygen_keys_work_with_ours(age_cli: AgeCli) -> None:
    [generated] = age_cli.run([([age_cli.keygen], b"")])
    lines = generated.stdout.decode().splitlines()
    identity = crypto.AgeIdentity(next(line for line in lines if line.startswith("AGE-SECRET")))
    public = next(line for line in lines if line.startswith("# public key: "))
    recipient = crypto.recipient_of(identity)
    assert public == f"# public key: {recipient}"
    plaintext = random_bytes(C + 5, 5)
    key_file = age_cli.write(generated.stdout.decode())
    opened, by_age = age_cli.run([([age_cli.age, "-d", "-i", key_file],
                                   crypto.seal(plaintext, [recipient])),
                                  age_cli.encrypt(plaintext, [recipient])])
    assert opened.stdout == plaintext, opened.stderr
    assert crypto.open_sealed(by_age.stdout, [identity]) == plaintext


def armor(sealed: bytes) -> bytes:
    """RFC 7468 strict PEM with the label the age spec gives (padded base64, 64 columns)."""
    encoded = base64.b64encode(sealed)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return b"\n".join([b"-----BEGIN AGE ENCRYPTED FILE-----", *lines,
                       b"-----END AGE ENCRYPTED FILE-----", b""])


def dearmor(armored: bytes) -> bytes:
    return base64.b64decode(b"".join(armored.strip().splitlines()[1:-1]), validate=True)


def test_armor_is_left_to_the_references(age_cli: AgeCli) -> None:
    """Ours stores binary age only and refuses armor outright; the binary inside age's armor is
    ours to open, and our binary in armor is read by both references."""
    key = KEYS[4]
    plaintext = random_bytes(C + 300, 4)
    ours = armor(crypto.seal(plaintext, [key.recipient]))
    opened, by_age = age_cli.run([age_cli.decrypt(ours, key),
                                  age_cli.encrypt(plaintext, [key.recipient], armor=True)])
    assert opened.stdout == plaintext, opened.stderr
    assert pyrage_decrypt(ours, key) == plaintext
    assert by_age.stdout.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
    assert pyrage_decrypt(by_age.stdout, key) == plaintext
    with pytest.raises(crypto.CryptoError, match="not an age v1 file"):
        crypto.open_sealed(by_age.stdout, [key.identity])
    assert crypto.open_sealed(dearmor(by_age.stdout), [key.identity]) == plaintext
