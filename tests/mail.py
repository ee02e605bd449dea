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
    """A Maildir with Maildir++ subfolders: {"INBOX": [...], "Sent": [...]}."""
    md = mailbox.Maildir(root, create=True)
    for folder, messages in folders.items():
        box = md if folder == "INBOX" else md.add_folder(folder.replace("/", "."))
        for data in messages:
            msg = mailbox.MaildirMessage(data)
            msg.set_subdir("cur")
            if flags:
                msg.set_flags(flags)
            box.add(msg)
    return root


def mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    for data in messages:
        box.add(data)
    box.flush()
    box.close()
    return path
