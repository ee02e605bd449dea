"""Shared fixtures: temporary indexes, generated mailboxes, the shared corpora."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from mailindex import MailIndex
from mailindex.plugins import plugin_manager

if TYPE_CHECKING:
    from tests.imap_server import DovecotServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "mail"
CORPORA = ROOT.parent / "shared" / "corpora"

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (they live in ../shared/corpora beside the project)")
    return CORPORA


@pytest.fixture
def mx(tmp_path: Path) -> Iterator[MailIndex]:
    index = MailIndex(tmp_path / "idx", pm=plugin_manager(entry_points=False))
    yield index
    index.close()


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A real Dovecot on 127.0.0.1 with user alice (password "secret"); skipped loudly where it cannot run,
    and an error under CI, which must always run the IMAP tests."""
    from tests.imap_server import DovecotServer, why_unavailable

    reason = why_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the IMAP tests: {reason}")
        pytest.skip(f"IMAP TESTS SKIPPED: {reason}")
    with DovecotServer({"alice": "secret"}) as server:
        yield server
