"""Real mail from ../shared/corpora: every message on disk is indexed and reads back byte for byte.

What is on disk is found with the standard library alone (os.walk, open, a From_ split), and each message's
id comes from tests.reference, so a message the source listing drops or an id the implementation gets wrong
cannot hide in the expectation.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from tests.reference import message_id
from tests.thread_reference import read_mail, reference_threads

# Each corpus with how its mail is stored: "files" is a tree of one-message files (Maildirs among them),
# "mbox" a directory of mbox files.
CORPORA = [("enron-2015-partial/maildir", "files"), ("notmuch", "files"), ("mail-parser", "files"),
           ("cpython-test-email", "files"), ("mimekit", "files"), ("stalwart-mail-parser", "files"),
           ("ruby-mail", "files"), ("gmail-takeout-sample", "mbox")]

# A one-message file is mail when its first line (after a UTF-8 byte-order mark) is a header field (RFC 5322
# field name: printable ASCII but ':') or a From_ line: not READMEs, COPYING, bodies without a header, Outlook .msg.
_MAIL_HEAD = re.compile(rb"From |[\x21-\x39\x3b-\x7e]+[ \t]*:")


def _mbox_messages(data: bytes) -> list[bytes]:
    """The bytes kept of each message of an mbox (mailindex/sources/mbox.py's documented rule): the From_
    line dropped, and the one blank line before the next From_ line, and ``^>+From `` unescaped one level.
    Every ``^From `` line here starts a message (true of these corpora; a body one would fail the test)."""
    chunks = re.split(rb"(?m)^From .*\n", data)[1:]
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", re.sub(rb"(\r?\n)\r?\n\Z", rb"\1", c)) for c in chunks]


def _on_disk(root: Path, kind: str) -> list[bytes]:
    """Every message under `root`, read with os.walk and open(); a Maildir's tmp/ is never read."""
    found: list[bytes] = []
    for folder, dirs, files in os.walk(root):
        if "cur" in dirs or "new" in dirs:
            dirs[:] = [d for d in dirs if d != "tmp"]  # deliveries in progress, not mail yet
        for name in sorted(files):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            if kind == "mbox":
                found += _mbox_messages(data)
            elif not name.startswith(".") and _MAIL_HEAD.match(data.removeprefix(codecs.BOM_UTF8)):
                found.append(data)
    return found


@pytest.mark.parametrize("name,kind", CORPORA, ids=[n for n, _ in CORPORA])
def test_every_message_is_indexed_and_byte_exact(corpora: Path, tmp_path: Path, name: str, kind: str) -> None:
    expected = _on_disk(corpora / name, kind)
    copies: dict[str, set[bytes]] = {}
    for data in expected:
        copies.setdefault(message_id(data), set()).add(data)
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        report = mx.index(corpora / name, "c", sync_all_folders=1)
        assert report.unchanged == 0 and report.removed == 0
        hashed = Counter(sha for (sha,) in mx.store.db.execute("SELECT sha256 FROM locations"))
        # one location per message on disk, each hashing the bytes on disk
        assert hashed == Counter(hashlib.sha256(d).hexdigest() for d in expected)
        assert {mid for (mid,) in mx.store.db.execute("SELECT message_id FROM messages")} == set(copies)
        assert mx.messages.count() == len(copies)
        for mid, datas in copies.items():  # `source` gives one of its copies, byte for byte
            assert mx.messages.source(mid) in datas
        again = mx.sync("c")
        assert (again.added, again.updated, again.removed) == (0, 0, 0)


def _enron_oracle(root: Path) -> list[dict[str, object]]:
    """Each distinct Enron message read the simple way: stdlib headers of each file, deduplicated by bytes."""
    seen: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        seen.setdefault(hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest(), {
            "from": {a.lower() for _, a in email.utils.getaddresses(msg.get_all("From", []))},
            "to": {a.lower() for _, a in email.utils.getaddresses(msg.get_all("To", []))},
            "subject": re.sub(r"\r?\n", "", str(msg.get("Subject", ""))),  # RFC 5322 unfolding
            "date": int(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()),
            "folder": path.parent.relative_to(root).as_posix(),
            "words": re.findall(r"[a-z0-9]+", " ".join([str(msg.get("Subject", "")), *_plain_parts(msg)]).lower()),
        })
    return list(seen.values())


def _plain_parts(msg: email.message.Message) -> list[str]:
    return [(part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "latin-1", "replace")
            for part in msg.walk() if part.get_content_type() == "text/plain" and not part.is_multipart()]


def _has_phrase(words: list[str], phrase: list[str]) -> bool:
    return any(words[i : i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))


def test_enron_words_and_phrases_count_as_the_reference(corpora: Path, tmp_path: Path) -> None:
    """Word and phrase counts equal tokens [a-z0-9]+ of subject and text/plain parts. Where notmuch differs
    (README "Query language"), it stems (imbalance: 181 against 138) and also reads address headers."""
    root = corpora / "enron-2015-partial" / "maildir"
    oracle = _enron_oracle(root)
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "enron", sync_all_folders=1)
        for text in ("imbalance", "imbalances", "california", "enron", "gas", "meeting", "ferc", "transwestern",
                     "power crisis", "conference room", "please let me know", "el paso"):
            phrase = text.split()
            expected = sum(1 for m in oracle if _has_phrase(m["words"], phrase))  # type: ignore[arg-type]
            assert expected > 0, text
            assert mx.messages.count(q=f'"{text}"' if len(phrase) > 1 else text) == expected, text
        assert mx.messages.count(q="imbalance*") == sum(
            1 for m in oracle if any(w.startswith("imbalance") for w in m["words"]))  # type: ignore[attr-defined]


def test_enron_hand_checked_queries(corpora: Path, tmp_path: Path) -> None:
    root = corpora / "enron-2015-partial" / "maildir"
    oracle = _enron_oracle(root)
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "enron", sync_all_folders=1)
        assert mx.messages.count() == len(oracle)
        sept = (1_000_000_000 - 1, 1_001_894_400)  # 2001-09-09 01:46:40 UTC to 2001-10-01 00:00 UTC
        checks: list[tuple[dict[str, object], Callable[[dict[str, object]], bool]]] = [
            ({"from": "lynn.blair@enron.com"}, lambda m: "lynn.blair@enron.com" in m["from"]),  # type: ignore[operator]
            ({"to": "lynn.blair@enron.com", "from": "john.buchanan@enron.com"},
             lambda m: "lynn.blair@enron.com" in m["to"] and "john.buchanan@enron.com" in m["from"]),  # type: ignore[operator]
            ({"subject": "/^RE: /"}, lambda m: str(m["subject"]).startswith("RE: ")),
            ({"subject": "/(?i)conference room eb\\d+/"},
             lambda m: re.search(r"(?i)conference room eb\d+", str(m["subject"])) is not None),
            ({"subject": "California"}, lambda m: "california" in str(m["subject"]).casefold()),
            ({"date_after": sept[0], "date_before": sept[1]}, lambda m: sept[0] < int(m["date"]) < sept[1]),  # type: ignore[call-overload]
        ]
        for params, wanted in checks:
            expected = sum(1 for m in oracle if wanted(m))
            assert expected > 0, params  # a check that finds nothing proves little
            assert mx.messages.count(**params) == expected, params
        sent = mx.messages.count(folder="\\Sent")
        folders = {f for m in mx.messages.iter(folder="\\Sent") for f in m["folders"]}
        assert sent > 0 and all(f.rsplit("/", 1)[-1] in ("sent_items", "_sent_mail", "sent") for f in folders)
        by_robert = mx.messages.count(**{"from": "robert.badeer@enron.com"})
        assert by_robert > 0
        assert by_robert == sum(1 for m in mx.messages.iter(email="robert.badeer@enron.com")
                                if m["addresses"]["from"]["email"] == "robert.badeer@enron.com")
        enron = mx.messages.count(email="enron.com")
        assert mx.messages.count() >= enron >= by_robert


def test_lkml_threads_end_to_end(corpora: Path, tmp_path: Path) -> None:
    """Indexed through the whole pipeline, each message's thread is its reference component."""
    root = corpora / "notmuch" / "lkml"
    files = sorted(p for p in (root / "cur").iterdir() if p.is_file())
    mails = [read_mail(p, message_id(p.read_bytes())) for p in files]
    components = {key: group for group in reference_threads(mails) for key in group}
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(root, "lkml")
        assert mx.messages.count() == len(components)
        for m in mx.messages.iter(include_thread_size=1):
            assert m["thread_size"] == len(components[m["message_id"]])
        biggest = max(components.values(), key=len)
        member = next(iter(biggest))
        listed = {m["message_id"] for m in mx.messages.thread(member, limit=100)["messages"]}
        assert listed == set(biggest) and len(biggest) > 50


def test_a_real_pdf_attachment_is_found_by_its_words(corpora: Path, tmp_path: Path) -> None:
    """mail-parser's mail_test_10 carries an IBM announcement letter as a PDF; "Eligible Products" is in it
    and nowhere else in the message."""
    with MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False)) as mx:
        mx.index(corpora / "mail-parser", "mp")
        (found,) = mx.messages.list(q='"eligible products"')
        assert found["email_message_id"] == mx.messages.list(q="attachment:eligible attachment:products")[0][
            "email_message_id"]
        assert mx.messages.count(q='body:"eligible products"') == 0
        assert mx.messages.count(q='subject:"eligible products"') == 0
        (pdf,) = [f for f in found["files"] if f["file_name"].lower().endswith(".pdf")]
        assert pdf["text_extracted"] is True
