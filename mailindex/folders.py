"""Where a message sits: folder names, their RFC 6154 special-use ("symbolic") names, and flag names."""

from __future__ import annotations

DELIMITER = "/"
FLAG_NAMES = ("seen", "answered", "flagged", "deleted", "draft")

# Lowercased last path component -> symbolic name.
_COMMON_NAMES = {
    "sent": "\\Sent",
    "sent items": "\\Sent",
    "sent messages": "\\Sent",
    "sent mail": "\\Sent",
    "sent_mail": "\\Sent",
    "_sent_mail": "\\Sent",
    "sent_items": "\\Sent",
    "drafts": "\\Drafts",
    "draft": "\\Drafts",
    "trash": "\\Trash",
    "deleted items": "\\Trash",
    "deleted_items": "\\Trash",
    "deleted messages": "\\Trash",
    "junk": "\\Junk",
    "junk e-mail": "\\Junk",
    "junk email": "\\Junk",
    "spam": "\\Junk",
    "archive": "\\Archive",
    "archives": "\\Archive",
    "all mail": "\\All",
    "all_mail": "\\All",
    "starred": "\\Flagged",
    "flagged": "\\Flagged",
    "important": "\\Important",
}

# Gmail's system labels in a Takeout's X-Gmail-Labels header.
GMAIL_SYSTEM_LABELS = {
    "inbox": ("INBOX", "\\Inbox"),
    "sent": ("[Gmail]/Sent Mail", "\\Sent"),
    "starred": ("[Gmail]/Starred", "\\Starred"),
    "important": ("[Gmail]/Important", "\\Important"),
    "drafts": ("[Gmail]/Drafts", "\\Drafts"),
    "draft": ("[Gmail]/Drafts", "\\Drafts"),
    "spam": ("[Gmail]/Spam", "\\Junk"),
    "trash": ("[Gmail]/Trash", "\\Trash"),
    "archived": ("[Gmail]/All Mail", "\\All"),
}
# Labels that are states, not places: they become flags.
GMAIL_STATE_LABELS = {"opened": "seen", "unread": None}



def symbolic_name(folder: str) -> str | None:
    """The RFC 6154 symbolic name a folder is commonly meant to have, if any."""
    if folder.upper() == "INBOX":
        return "\\Inbox"
    leaf = folder.rsplit(DELIMITER, 1)[-1].strip().lower()
    if folder.startswith("[Gmail]/") and leaf == "starred":
        return "\\Starred"
    return _COMMON_NAMES.get(leaf)


# Left out of a sync by `sync_all_folders=0` (Context.IO's default, still that of connect tokens).
SKIPPED_BY_DEFAULT = frozenset({"\\Trash", "\\Drafts", "\\Junk"})


def synced_folders(folders: tuple[str, ...]) -> tuple[str, ...]:
    """The folders a default sync keeps: all but trash, drafts and junk (by their symbolic names)."""
    return tuple(f for f in folders if symbolic_name(f) not in SKIPPED_BY_DEFAULT)


def normalize_folder(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501); other names are kept as written."""
    head, sep, rest = name.partition(DELIMITER)
    return ("INBOX" if head.upper() == "INBOX" else head) + sep + rest
