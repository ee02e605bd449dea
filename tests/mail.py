"""Build test messages and mailboxes with the standard library."""

from __future__ import annotations

import email.utils
import mailbox
from email.message import EmailMessage
from pathlib import Path


def message(subject: str = "hello", sender: str = "alice@example.com", to: str = "me@example.com",
            date: int = 1_600_000_000, body: str = "body text", msgid: str | None = None,
            attachments: list[tuple[str, bytes]] = (), **headers: str) -> bytes:  # type: ignore[assignment]
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(date)
    m["Message-ID"] = msgid or email.utils.make_msgid(domain="test.example")
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(m)


def maildir(root: Path, folders: dict[str, list[bytes]], flags: str = "") -> Path:
    """A Maildir with Maildir++ subfolders ({"INBOX": [...], "Work/Project": [...]}), bytes as given.

    Written by hand: the stdlib's mailbox module re-serialises messages, so the
    bytes on disk would not be the bytes a test generated.
    """
    for folder, messages in folders.items():
        box = root if folder == "INBOX" else root / ("." + folder.replace("/", "."))
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        for data in messages:
            global _counter
            _counter += 1
            (box / "cur" / f"1600000000.M{_counter}P1.test:2,{''.join(sorted(flags))}").write_bytes(data)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


_counter = 0


def mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    for data in messages:
        box.add(data)
    box.flush()
    box.close()
    return path


def part_bomb(parts: int, named: bool = False) -> bytes:
    """A multipart message with `parts` tiny parts (as attachments when `named`)."""
    disposition = "Content-Disposition: attachment; filename=p{i}.txt\r\n" if named else ""
    body = "".join(f"--b\r\nContent-Type: text/plain\r\n{disposition.format(i=i)}\r\npart {i}\r\n"
                   for i in range(parts))
    return (f"From: bomb@example.com\r\nSubject: part bomb\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=b\r\n\r\n{body}--b--\r\n").encode()


def nested(depth: int) -> bytes:
    """message/rfc822 wrapped `depth` times; the outermost subject is "wrap <depth - 1>"."""
    inner = b"From: core@example.com\r\nSubject: the core\r\n\r\ninnermost words\r\n"
    for i in range(depth):
        inner = (b"From: wrap@example.com\r\nSubject: wrap %d\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: message/rfc822\r\n\r\n" % i) + inner
    return inner
