"""Generated messages written into each source format, synced, and read back field by field."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from mailindex import MailIndex
from mailindex.plugins import plugin_manager
from tests import mail
from tests.budget import examples
from tests.strategies import Spec, mailboxes


def _write(fmt: str, box: list[Spec], root: Path) -> Path:
    if fmt == "maildir":
        folders: dict[str, list[bytes]] = {}
        for s in box:
            for copy, f in enumerate(s.folders):
                folders.setdefault(f, []).append(s.to_bytes(copy))
        return mail.maildir(root / "md", folders)
    if fmt == "mbox":
        (root / "boxes" / "Work").mkdir(parents=True)
        by_folder: dict[str, list[bytes]] = {}
        for s in box:
            by_folder.setdefault(s.folders[0], []).append(s.to_bytes())
        for folder, messages in by_folder.items():
            (root / "boxes" / folder).parent.mkdir(parents=True, exist_ok=True)
            mail.mbox(root / "boxes" / f"{folder}.mbox", messages)
        return root / "boxes"
    for s in box:
        d = root / "eml" / s.folders[0]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{s.n}.eml").write_bytes(s.to_bytes())
    return root / "eml"


def _expected_folders(fmt: str, spec: Spec) -> list[str]:
    return sorted(spec.folders) if fmt == "maildir" else [spec.folders[0]]


@pytest.mark.parametrize("fmt", ["maildir", "mbox", "eml"])
@settings(max_examples=examples(0.6))
@given(box=mailboxes())
def test_fields_survive_every_format(fmt: str, box: list[Spec]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(fmt, box, Path(tmp))
        with MailIndex(Path(tmp) / "idx", pm=plugin_manager(entry_points=False)) as mx:
            report = mx.index(root, "src", type=fmt, sync_all_folders=1)
            assert (report.added, report.failed) == (len(box), 0)
            got = {m["email_message_id"]: m for m in mx.messages.iter()}
        for spec in box:
            m = got[f"<m{spec.n}@test.example>"]
            assert m["subject"] == spec.subject
            assert m["date"] == spec.date
            assert m["addresses"]["from"]["email"] == spec.sender
            assert [a["email"] for a in m["addresses"]["to"]] == spec.to
            assert [a["email"] for a in m["addresses"].get("cc", [])] == spec.cc
            assert [a["email"] for a in m["addresses"].get("bcc", [])] == spec.bcc
            assert sorted(m["folders"]) == _expected_folders(fmt, spec)
            assert [(f["file_name"], f["size"]) for f in m["files"]] == spec.files
            assert m["sources"] == [{"label": "src", "resource_url": root.resolve().as_uri()}]
