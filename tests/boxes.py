"""Write a generated mailbox as a Maildir and index it."""

from __future__ import annotations

from pathlib import Path

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from tests import mail
from tests.strategies import OWNER, Spec


def write(box: list[Spec], root: Path) -> Path:
    folders: dict[str, list[bytes]] = {}
    flagged: dict[str, list[bytes]] = {}
    for spec in box:
        for copy, f in enumerate(spec.folders):
            (flagged if spec.flagged else folders).setdefault(f, []).append(spec.to_bytes(copy))
    mail.maildir(root, folders)
    mail.maildir(root, flagged, flags="FS")
    return root


def index(box: list[Spec], tmp: Path, owner: list[str] | None = None) -> MailIndex:
    """A MailIndex of `box` (owner OWNER unless given), every message of every folder added, flags kept."""
    mx = MailIndex(tmp / "idx", pm=plugin_manager(entry_points=False), owner=[OWNER] if owner is None else owner)
    report = mx.index(write(box, tmp / "md"), "box", sync_all_folders=1, sync_flags=1)
    assert report.failed == 0 and report.added == len(box)
    return mx
