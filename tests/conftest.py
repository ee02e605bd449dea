"""Shared fixtures: temporary indexes, generated mailboxes, the shared corpora."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from mailindex import MailIndex
from mailindex.plugins import plugin_manager

if TYPE_CHECKING:
    from tests.imap_server import DovecotServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "mail"
CORPORA = ROOT.parent / "shared" / "corpora"

CI = bool(os.environ.get("CI"))
# Under CI the examples hypothesis found failing are kept outside the clone, so the next run on this
# machine tries them first, and a failure prints the blob that replays it (@reproduce_failure).
HYPOTHESIS_DB = Path(os.environ.get("MAILINDEX_HYPOTHESIS_DB", Path.home() / ".cache" / "mailindex" / "hypothesis"))
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True,
                          database=DirectoryBasedExampleDatabase(HYPOTHESIS_DB),
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if CI else "dev"))

# Under CI a skip fails the run unless its reason starts with one of these (README "Tests"): the large
# real corpora are fetched and built by hand, everything else CI must have.
CI_ALLOWED_SKIPS = ("real corpora absent",)


def _forbidden_skip(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """The reason of a skip CI does not allow, else None."""
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")
    return None if reason.startswith(CI_ALLOWED_SKIPS) else reason


def _fail_forbidden_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    reason = _forbidden_skip(report)
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which allows only skips starting {CI_ALLOWED_SKIPS}: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    _fail_forbidden_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[pytest.CollectReport]:
    """A module-level importorskip skips at collection: it must fail under CI too."""
    report = yield
    _fail_forbidden_skip(report)
    return report


@pytest.fixture(autouse=True)
def _no_user_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite never reads the configuration file of whoever runs it (tests of the file set their own);
    the path is one no user may have, nor be refused to look at (the read-only tests run as nobody)."""
    monkeypatch.setenv("MAILINDEX_CONFIG", "/nonexistent/mailindex-tests/config.toml")
    monkeypatch.delenv("MAILINDEX_FORMAT", raising=False)


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
        pytest.skip(f"IMAP TESTS SKIPPED: {reason}")  # a failure under CI, like every skip
    with DovecotServer({"alice": "secret"}) as server:
        yield server
