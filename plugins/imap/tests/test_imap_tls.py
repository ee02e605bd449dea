"""IMAP over TLS against a real Dovecot on 127.0.0.1, its certificate issued by a throw-away CA (trustme).

Implicit TLS (imaps://) and STARTTLS (imap://) with the CA given as ca_file index the mail; a CA the
client does not trust, a certificate for another name, and a server that offers no STARTTLS are each
refused with one SourceError naming the problem, before any password is sent. Whether the password was
sent, and over what, is read in Dovecot's own log: it counts a loopback connection as secured (so it would
take a clear-text login) and logs each login with "TLS" or "secured". After every case, every byte of the index, the error, its
connection_log, the answer, the captured log records and the command's output is searched for the password.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mailindex import MailIndex, SourceError
from mailindex.identity import message_id_for
from tests import mail
from tests.conftest import ROOT
from tests.imap_server import DovecotServer, ServerCertificate, why_unavailable

imap_plugin = pytest.importorskip("mailindex_imap",
                                  reason="the IMAP plugin is not installed (make test installs plugins/imap)")

PASSWORD = "Tls-pw-7c1f9e-Quartz"  # distinctive, so that finding its bytes anywhere means it leaked
WRONG = "Tls-wrong-4b8d2a-Basalt"  # the one a failed login sends
MESSAGES = [mail.message(f"over tls {i}") for i in range(4)]
MODES = ["imaps", "starttls"]


def _served(cert: trustme.LeafCert) -> ServerCertificate:
    return ServerCertificate(b"".join(p.bytes() for p in cert.cert_chain_pems), cert.private_key_pem.bytes())


def _skip_unless_dovecot_runs() -> None:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"IMAP TESTS SKIPPED: {reason}")  # a failure under CI, like every skip


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def tls_dovecot(ca: trustme.CA) -> Iterator[DovecotServer]:
    """One Dovecot for the module: STARTTLS on .port, imaps on .tls_port, a certificate for 127.0.0.1,
    and one for mail.example.org only to a client that asks for "localhost" (SNI): a name mismatch."""
    _skip_unless_dovecot_runs()
    server = DovecotServer({"alice": PASSWORD}, _served(ca.issue_cert("127.0.0.1")),
                           names={"localhost": _served(ca.issue_cert("mail.example.org"))})
    mail.maildir(server.maildir("alice"), {"INBOX": MESSAGES})  # read only by these tests: loaded once
    with server:
        yield server


def _url(server: DovecotServer, mode: str, host: str = "127.0.0.1") -> str:
    return f"imaps://alice@{host}:{server.tls_port}" if mode == "imaps" else f"imap://alice@{host}:{server.port}"


def _port(server: DovecotServer, mode: str) -> int:
    return server.tls_port if mode == "imaps" else server.port


def _logins(server: DovecotServer) -> list[str]:
    """How each of alice's logins so far was secured, as Dovecot logs it: "TLS", or "secured" (loopback)."""
    return [line.rsplit(", ", 2)[-2] for line in server.log().splitlines() if "Login: user=<alice>" in line]


def _assert_no_password(index: Path, *seen: str | bytes) -> None:
    """Neither password's bytes are in a file under `index` or in any of `seen`."""
    files = [p for p in index.rglob("*") if p.is_file()]
    assert files, f"no index was written at {index}"
    texts = [(str(path), path.read_bytes()) for path in files]
    texts += [(repr(text)[:200], text if isinstance(text, bytes) else text.encode()) for text in seen]
    for needle in (PASSWORD.encode(), WRONG.encode()):
        for where, data in texts:
            assert needle not in data, f"{needle!r} in {where}"


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record, imapclient's protocol trace included."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("mode", MODES)
def test_tls_with_the_ca_given_indexes_the_mail(tmp_path: Path, tls_dovecot: DovecotServer, ca_file: Path,
                                                mode: str, debug_log: pytest.LogCaptureFixture) -> None:
    before = len(_logins(tls_dovecot))
    mx = MailIndex(tmp_path / "idx")
    mx.add_source("tls", _url(tls_dovecot, mode), password=PASSWORD, ca_file=str(ca_file), sync_all_folders=1)
    report = mx.sync("tls")
    assert (report.added, report.failed) == (len(MESSAGES), 0)
    assert {m["message_id"] for m in mx.messages.iter()} == {message_id_for(m) for m in MESSAGES}
    source = mx.source("tls")
    assert source["status"] == "OK" and source["options"]["ca_file"] == str(ca_file)
    # what a later failure would hand out as its connection_log
    src = mx.engine.open_row(mx.default_account.sources.row("tls"))
    assert isinstance(src, imap_plugin.ImapSource)
    log = "\n".join(src.conn.log)
    assert "C: LOGIN alice ****" in log
    mx.close()
    assert _logins(tls_dovecot)[before:] == ["TLS"]  # one login, over TLS
    assert "LOGIN" in debug_log.text  # the login exchange was logged, and without the password:
    _assert_no_password(tmp_path / "idx", debug_log.text, repr(source), log)


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_password_over_tls_is_refused_and_not_repeated(tmp_path: Path, tls_dovecot: DovecotServer,
                                                               ca_file: Path, mode: str,
                                                               debug_log: pytest.LogCaptureFixture) -> None:
    mx = MailIndex(tmp_path / "idx")
    url = _url(tls_dovecot, mode)
    mx.add_source("tls", url, password=WRONG, ca_file=str(ca_file))
    with pytest.raises(SourceError) as err:
        mx.sync("tls")
    assert str(err.value) == (f"{url}: the server refused the login for alice: [AUTHENTICATIONFAILED] "
                              "Authentication failed.")
    assert "C: LOGIN alice ****" in err.value.connection_log
    mx.close()
    _assert_no_password(tmp_path / "idx", str(err.value), err.value.connection_log, debug_log.text)


@pytest.mark.parametrize("mode", MODES)
def test_a_ca_not_trusted_is_refused_before_the_password_is_sent(tmp_path: Path, tls_dovecot: DovecotServer,
                                                                 mode: str,
                                                                 debug_log: pytest.LogCaptureFixture) -> None:
    before = len(_logins(tls_dovecot))
    mx = MailIndex(tmp_path / "idx")
    url = _url(tls_dovecot, mode)
    mx.add_source("tls", url, password=PASSWORD, sync_all_folders=1)  # no ca_file: the system store
    with pytest.raises(SourceError) as err:
        mx.sync("tls")
    assert str(err.value) == (f"{url}: refused the TLS certificate of 127.0.0.1:{_port(tls_dovecot, mode)}: "
                              "certificate verify failed: unable to get local issuer certificate; "
                              "a private CA's certificate can be given with the ca_file option")
    assert "LOGIN" not in err.value.connection_log
    assert mx.source("tls")["status"] == "CONNECTION_IMPOSSIBLE" and mx.messages.count() == 0
    mx.close()
    assert len(_logins(tls_dovecot)) == before
    _assert_no_password(tmp_path / "idx", str(err.value), err.value.connection_log, debug_log.text)


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_for_another_name_is_refused(tmp_path: Path, tls_dovecot: DovecotServer, ca_file: Path,
                                                   mode: str, debug_log: pytest.LogCaptureFixture) -> None:
    before = len(_logins(tls_dovecot))
    mx = MailIndex(tmp_path / "idx")
    url = _url(tls_dovecot, mode, host="localhost")  # served the certificate of mail.example.org, by our CA
    mx.add_source("other", url, password=PASSWORD, ca_file=str(ca_file))
    with pytest.raises(SourceError) as err:
        mx.sync("other")
    assert str(err.value) == (f"{url}: refused the TLS certificate of localhost:{_port(tls_dovecot, mode)}: "
                              "certificate verify failed: Hostname mismatch, certificate is not valid for "
                              "'localhost'.")
    assert "LOGIN" not in err.value.connection_log
    mx.close()
    assert len(_logins(tls_dovecot)) == before
    _assert_no_password(tmp_path / "idx", str(err.value), err.value.connection_log, debug_log.text)


def test_starttls_is_required_never_skipped(tmp_path: Path, debug_log: pytest.LogCaptureFixture) -> None:
    """A server without STARTTLS gets no LOGIN from imap:// (whose default is tls=starttls) or an explicit
    tls=starttls; the same server, asked for clear text on loopback, does log a login."""
    _skip_unless_dovecot_runs()
    with DovecotServer({"alice": PASSWORD}) as plain:
        url = f"imap://alice@127.0.0.1:{plain.port}"
        mx = MailIndex(tmp_path / "idx")
        refusal = (f"127.0.0.1:{plain.port} does not offer STARTTLS: refusing to log in without TLS "
                   "(imaps:// or tls=ssl for implicit TLS)")
        errors = []
        for label, options in (("default", {}), ("explicit", {"tls": "starttls"})):
            mx.add_source(label, url, password=PASSWORD, **options)
            with pytest.raises(SourceError) as err:
                mx.sync(label)
            assert str(err.value) == f"{url}: {refusal}"
            assert err.value.connection_log.splitlines()[-3:] == [f"C: connect 127.0.0.1:{plain.port} (starttls)",
                                                                  "C: STARTTLS", f"-- {refusal}"]
            assert "LOGIN" not in err.value.connection_log
            errors += [str(err.value), err.value.connection_log]
        assert _logins(plain) == []
        mx.add_source("clear", url, password=PASSWORD, tls="none")
        assert mx.sync("clear").added == 0
        mx.close()
        assert _logins(plain) == ["secured"]
    _assert_no_password(tmp_path / "idx", *errors, debug_log.text)


def test_a_live_operation_refused_by_tls_answers_with_the_certificate_problem(
        tmp_path: Path, tls_dovecot: DovecotServer, ca: trustme.CA, debug_log: pytest.LogCaptureFixture) -> None:
    own_ca = tmp_path / "ca.pem"  # this test's copy: it is replaced below by another CA's certificate
    ca.cert_pem.write_to_path(str(own_ca))
    mx = MailIndex(tmp_path / "idx")
    url = _url(tls_dovecot, "imaps")
    mx.add_source("tls", url, password=PASSWORD, ca_file=str(own_ca))
    assert mx.sync("tls").added == len(MESSAGES)
    mx.close()
    trustme.CA().cert_pem.write_to_path(str(own_ca))
    mx = MailIndex(tmp_path / "idx")  # a new process would open the source afresh, reading ca_file again
    mx.passwords[url] = PASSWORD
    answer = mx.messages.set_flags(message_id_for(MESSAGES[0]), flagged=1)
    mx.close()
    assert answer["success"] is False
    assert answer["connection_log"].splitlines()[-1] == (
        f"-- refused the TLS certificate of 127.0.0.1:{tls_dovecot.tls_port}")
    assert "certificate verify failed: unable to get local issuer certificate" in answer["connection_log"]
    assert "LOGIN" not in answer["connection_log"]
    _assert_no_password(tmp_path / "idx", repr(answer), debug_log.text)


def _cli(index: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MAILINDEX_IMAP_PASSWORD": PASSWORD}
    return subprocess.run([sys.executable, "-m", "mailindex.cli", "--index", str(index), *args], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)


def test_the_command_line_says_one_line_and_never_the_password(tmp_path: Path, tls_dovecot: DovecotServer,
                                                               ca_file: Path) -> None:
    url = _url(tls_dovecot, "imaps")
    refused = _cli(tmp_path / "idx", "index", url, "--source", "untrusted")
    assert refused.returncode == 1 and refused.stdout == b""
    (line,) = refused.stderr.decode().splitlines()  # one line, no traceback
    assert line.startswith("mailindex: ") and line.endswith(
        f" {url}: refused the TLS certificate of 127.0.0.1:{tls_dovecot.tls_port}: certificate verify failed: "
        "unable to get local issuer certificate; a private CA's certificate can be given with the ca_file option")
    trusted = _cli(tmp_path / "idx", "index", url, "--source", "trusted", "--option", f"ca_file={ca_file}", "--json")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["added"] == len(MESSAGES)
    _assert_no_password(tmp_path / "idx", refused.stdout, refused.stderr, trusted.stdout, trusted.stderr)


def test_a_bad_ca_file_is_refused_when_the_source_is_added(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    mx = MailIndex(tmp_path / "idx")
    url = "imaps://alice@127.0.0.1:1"
    cases = {"ca.pem": "option ca_file must be an absolute path (got 'ca.pem')",
             str(tmp_path / "missing.pem"): f"option ca_file: cannot load CA certificates from "
                                            f"{tmp_path / 'missing.pem'}: No such file or directory",
             str(not_pem): f"option ca_file: cannot load CA certificates from {not_pem}: "}
    for given, problem in cases.items():
        with pytest.raises(SourceError) as err:
            mx.add_source("tls", url, password=PASSWORD, ca_file=given)
        assert str(err.value).startswith(f"{url}: {problem}"), str(err.value)
    assert mx.sources() == []
    mx.close()
