"""The committed fixtures match their generator, parse with the standard library, and hold their traps.

Also checks the benchmark corpus generator (benchmarks/corpus.py): deterministic,
a valid Maildir++ tree, parseable, and shaped like list mail.
"""

from __future__ import annotations

import email.policy
import importlib.util
import mailbox
import os
import re
from collections import Counter
from email.parser import BytesParser
from pathlib import Path

import pytest

from benchmarks import corpus

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "mail"
PARSER = BytesParser(policy=email.policy.default)

# Defects that mean the stdlib did not understand the message's structure.
STRUCTURAL_DEFECTS = {
    "MissingHeaderBodySeparatorDefect", "FirstHeaderLineIsContinuationDefect", "MisplacedEnvelopeHeaderDefect",
    "NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect", "InvalidMultipartContentTransferEncodingDefect",
    "InvalidBase64PaddingDefect", "InvalidBase64CharactersDefect", "InvalidBase64LengthDefect",
}


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fixtures_generate", ROOT / "fixtures" / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _maildir_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")
                  and not p.name.startswith("."))


def fixture_messages() -> list[tuple[str, bytes]]:
    """(name, raw bytes) of every message in fixtures/mail."""
    out = [(p.relative_to(FIXTURES).as_posix(), p.read_bytes()) for p in _maildir_files(FIXTURES / "maildir")]
    out += [(p.relative_to(FIXTURES).as_posix(), p.read_bytes()) for p in sorted((FIXTURES / "eml").rglob("*.eml"))]
    for name in ("archive.mbox", "takeout.mbox"):
        box = mailbox.mbox(FIXTURES / name, create=False)
        try:
            out += [(f"{name}#{i}", box.get_bytes(key)) for i, key in enumerate(box.keys())]
        finally:
            box.close()
    return out


def _check_parses(name: str, data: bytes, allow_lookup_error: bool = False) -> email.message.EmailMessage:
    msg = PARSER.parsebytes(data)
    assert msg["From"] is not None, f"{name}: no From header"
    for key, value in msg.items():
        str(value)  # every header can be read (and decoded) without raising
    bad = [type(d).__name__ for part in msg.walk() for d in part.defects
           if type(d).__name__ in STRUCTURAL_DEFECTS]
    assert not bad, f"{name}: {bad}"
    for part in msg.walk():
        if part.is_multipart():
            continue
        try:
            part.get_content()
        except LookupError:
            if not allow_lookup_error:
                raise
    return msg


# --------------------------------------------------------------------------- committed fixtures


def test_regenerating_gives_the_committed_bytes(tmp_path: Path) -> None:
    gen = _load_generator()
    gen.generate(tmp_path / "mail")
    fresh, committed = _tree(tmp_path / "mail"), _tree(FIXTURES)
    assert sorted(fresh) == sorted(committed), "file list differs: run `python fixtures/generate.py`"
    differ = [name for name in fresh if fresh[name] != committed[name]]
    assert not differ, f"regenerated files differ from the committed ones: {differ[:10]}"


def test_generator_is_deterministic(tmp_path: Path) -> None:
    gen = _load_generator()
    gen.generate(tmp_path / "a")
    gen.generate(tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_every_fixture_message_parses_with_the_stdlib() -> None:
    messages = fixture_messages()
    for name, data in messages:
        _check_parses(name, data, allow_lookup_error=b"charset=y" in data)


def test_fixture_counts_and_size() -> None:
    counts = Counter(name.split("/")[0].split("#")[0] for name, _ in fixture_messages())
    assert counts == {"maildir": 41, "eml": 15, "archive.mbox": 20, "takeout.mbox": 8}
    folders = Counter(p.parent.parent.name for p in _maildir_files(FIXTURES / "maildir"))
    assert folders == {"maildir": 25, ".Sent": 5, ".Drafts": 2, ".Work.Project": 6, ".Trash": 3}
    assert sum(len(d) for d in _tree(FIXTURES).values()) < 500_000


def test_maildir_layout_and_flags() -> None:
    md = FIXTURES / "maildir"
    for folder in ("", ".Sent", ".Drafts", ".Work.Project", ".Trash"):
        for sub in ("cur", "new", "tmp"):
            assert (md / folder / sub).is_dir()
        if folder:
            assert (md / folder / "maildirfolder").is_file()
    for p in _maildir_files(md):
        if p.parent.name == "new":
            assert ":2," not in p.name
        else:
            flags = p.name.rpartition(":2,")[2]
            assert set(flags) <= set("DFPRST") and list(flags) == sorted(flags), p.name
    names = {p.name.rpartition(":2,")[2] for p in _maildir_files(md) if p.parent.name == "cur"}
    assert {"S", "RS", "FS", "DS", "ST", ""} <= names


def _find(pattern: bytes) -> list[str]:
    return [name for name, data in fixture_messages() if re.search(pattern, data, re.MULTILINE)]


@pytest.mark.parametrize("where, pattern", [
    ("archive.mbox", rb"^>From here on"),          # mboxrd-escaped body lines, as stored in the file
    ("archive.mbox", rb"^>>From the archives"),
    ("archive.mbox", rb"^Status: RO"),
    ("archive.mbox", rb"^X-Status: A"),
    ("archive.mbox", rb"charset=y\b"),
    ("archive.mbox", rb"^Date: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d\n"),  # no zone
    ("maildir", rb"^Subject: =\?UTF-8\?B\?"),
    ("maildir", rb"^Subject: =\?ISO-8859-1\?Q\?"),
    ("maildir", rb"^From: Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m"),  # raw 8-bit UTF-8 header
    ("maildir", rb"^Subject: \[PATCH\] fix \(a\+\)\+ \$100 \*\.pdf\?$"),
    ("maildir", rb"^Date: .* -0000$"),
    ("maildir", rb"^Content-Type: text/html"),
    ("maildir", rb"multipart/alternative"),
    ("maildir", rb"Content-ID: <logo@shop.example.net>"),
    ("maildir", rb'filename="report-2023.pdf"'),
    ("maildir", rb'filename="notes.txt"'),
    ("maildir", rb'filename="big.pdf"'),
    ("maildir", rb'filename="photo.JPG"'),
    ("maildir", rb"^Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"),
    ("eml", rb"^To: undisclosed-recipients:;"),
    ("eml", rb"filename\*0\*=UTF-8''"),
    ("eml", rb"^Content-Type: message/rfc822"),
    ("eml", rb"\r\n"),
    ("eml", rb'filename="invoice.pdf"\n\nTVqQ'),  # base64 of b"MZ\x90"
    ("takeout.mbox", rb"^X-GM-THRID: \d+"),
    ("takeout.mbox", rb"^X-Gmail-Labels: .*Clients/Acme"),
])
def test_trap_is_present(where: str, pattern: bytes) -> None:
    if where.endswith(".mbox"):  # the raw file, so the mboxrd escaping is visible
        assert re.search(pattern, (FIXTURES / where).read_bytes(), re.MULTILINE), (where, pattern)
    else:
        assert any(name.startswith(where) for name in _find(pattern)), (where, pattern)


def test_missing_date_has_received_headers() -> None:
    no_date = [(n, d) for n, d in fixture_messages() if PARSER.parsebytes(d)["Date"] is None]
    mail = [(n, d) for n, d in no_date if n.startswith("maildir/")]
    assert len(mail) == 1 and mail[0][1].count(b"\nReceived: ") == 2


def test_same_message_in_two_maildir_folders() -> None:
    files = _maildir_files(FIXTURES / "maildir")
    seen: dict[bytes, list[str]] = {}
    for p in files:
        seen.setdefault(p.read_bytes(), []).append(p.parent.parent.name)
    dups = [folders for folders in seen.values() if len(folders) > 1]
    assert dups == [["maildir", ".Work.Project"]] or dups == [[".Work.Project", "maildir"]]


def test_thread_of_five_across_folders() -> None:
    msgs = {}
    for p in _maildir_files(FIXTURES / "maildir"):
        m = PARSER.parsebytes(p.read_bytes())
        if "kickoff" in str(m["Subject"]).lower():
            msgs[m["Message-ID"]] = (p.parent.parent.name, m)
    assert len(msgs) == 5
    assert {f for f, _ in msgs.values()} == {"maildir", ".Sent", ".Work.Project"}
    roots = [m for _, m in msgs.values() if m["In-Reply-To"] is None]
    assert len(roots) == 1
    for _, m in msgs.values():
        if m["In-Reply-To"] is not None:
            assert m["In-Reply-To"] in msgs
            assert m["References"].split()[-1] == m["In-Reply-To"]


def test_owner_sends_and_receives() -> None:
    sent = [p for p in _maildir_files(FIXTURES / "maildir") if p.parent.parent.name == ".Sent"]
    assert sent and all(b"\nFrom: Pat Owner <me@example.com>\n" in b"\n" + p.read_bytes() for p in sent)
    assert any(b"Re: " in p.read_bytes() for p in sent)
    assert len(_find(rb"^To: .*me@example\.com")) > 10


# --------------------------------------------------------------------------- benchmark corpus generator

def _corpus_tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), int(p.stat().st_mtime))
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_is_deterministic(tmp_path: Path) -> None:
    a = corpus.generate_maildir(tmp_path / "a", 300, seed=5)
    b = corpus.generate_maildir(tmp_path / "b", 300, seed=5)
    corpus.generate_maildir(tmp_path / "c", 300, seed=6)
    ta, tb, tc = _corpus_tree(tmp_path / "a"), _corpus_tree(tmp_path / "b"), _corpus_tree(tmp_path / "c")
    assert ta == tb
    assert ta != tc
    assert (a.count, a.bytes) == (b.count, b.bytes) == (300, sum(len(d) for n, (d, _) in ta.items()
                                                                  if "/cur/" in f"/{n}" or "/new/" in f"/{n}"))
    assert a.path == tmp_path / "a"


def test_corpus_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        corpus.generate_maildir(tmp_path / "x", 10)


@pytest.fixture(scope="module")
def corpus_2000(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    root = tmp_path_factory.mktemp("corpus") / "md"
    return corpus.generate_maildir(root, 2000, seed=1), root


def test_corpus_layout(corpus_2000: tuple[object, Path]) -> None:
    info, root = corpus_2000
    for folder in ("", ".Sent", ".Archive.2022", ".Archive.2023", ".Trash"):
        for sub in ("cur", "new", "tmp"):
            assert (root / folder / sub).is_dir()
        if folder:
            assert (root / folder / "maildirfolder").is_file()
    files = _maildir_files(root)
    assert len(files) == 2000
    folders = Counter(p.parent.parent.name for p in files)
    assert folders["md"] > 1700 and folders[".Sent"] > 10 and folders[".Archive.2023"] > 10
    flags = Counter(p.name.rpartition(":2,")[2] if ":2," in p.name else None for p in files)
    assert flags[None] > 0 and flags["S"] > 1000 and flags["RS"] > 0 and flags["FS"] > 0
    for p in files:
        assert (":2," in p.name) == (p.parent.name == "cur")
        size = int(re.search(r",S=(\d+)", p.name).group(1))  # type: ignore[union-attr]
        assert size == p.stat().st_size


def test_corpus_messages_parse_and_thread(corpus_2000: tuple[object, Path]) -> None:
    _, root = corpus_2000
    ids = set()
    replies = []
    for p in _maildir_files(root)[::4]:  # a quarter is enough, and quick
        data = p.read_bytes()
        msg = _check_parses(p.name, data, allow_lookup_error=True)
        assert msg["Message-ID"] and msg["Date"] is not None and msg["To"] is not None
        assert msg["Date"].datetime.year in range(2014, 2024)
        if p.parent.parent.name not in (".Sent", ".Drafts"):
            assert msg["List-Id"] is not None and msg["List-Help"] is not None
    for p in _maildir_files(root):
        head = p.read_bytes().split(b"\n\n", 1)[0]
        m = re.search(rb"^Message-I[dD]: (<[^>]+>)", head, re.MULTILINE)
        assert m
        ids.add(m.group(1))
        r = re.search(rb"^In-Reply-To: (<[^>]+>)", head, re.MULTILINE)
        if r:
            replies.append(r.group(1))
    assert len(ids) == 2000
    assert len(replies) > 1000 and all(r in ids for r in replies)


def test_corpus_shape(corpus_2000: tuple[object, Path]) -> None:
    info, root = corpus_2000
    heads = [p.read_bytes() for p in _maildir_files(root)]
    n = len(heads)
    mean = sum(len(d) for d in heads) / n
    assert 6_000 < mean < 13_000
    share = lambda pat: sum(1 for d in heads if re.search(pat, d, re.MULTILINE)) / n  # noqa: E731
    assert 0.10 < share(rb"multipart/alternative") < 0.22
    assert 0.025 < share(rb"^Content-Disposition: attachment") < 0.09
    assert 0.015 < share(rb"^Subject: =\?") < 0.06
    assert 0.30 < share(rb"^Cc: ") < 0.55
    assert share(rb"^Subject: (Re: )?\[PATCH") > 0.15
    assert share(rb"^Subject: Re: \[PATCH( v\d+)? \d+/\d+\]") > 0.01
    assert share(rb"^List-Unsubscribe: ") > 0.9
    senders = {m.group(1) for d in heads for m in [re.search(rb"^From: .*?([\w.+-]+@[\w.-]+)", d, re.MULTILINE)] if m}
    assert len(senders) > 700
    assert len({s.rpartition(b"@")[2] for s in senders}) > 80
    assert info.stats["multipart_alternative"] > 0  # type: ignore[attr-defined]


def test_default_corpus_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "CACHE_DIR", tmp_path)
    path = corpus.default_corpus(count=40, seed=3)
    assert path == tmp_path / "corpus-40-3" and len(_maildir_files(path)) == 40
    info = corpus.corpus_info(path)
    assert info is not None and info.count == 40 and info.bytes > 0

    def fail(*a: object, **k: object) -> None:
        raise AssertionError("regenerated a cached corpus")

    monkeypatch.setattr(corpus, "generate_maildir", fail)
    assert corpus.default_corpus(count=40, seed=3) == path


def test_corpus_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert corpus.main([str(tmp_path / "cli"), "--count", "25", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "wrote 25 messages" in out
    assert corpus.main([str(tmp_path / "cli"), "--count", "25"]) == 2  # not empty any more
    assert len(_maildir_files(tmp_path / "cli")) == 25
    assert os.listdir(tmp_path / "cli" / "tmp") == []
