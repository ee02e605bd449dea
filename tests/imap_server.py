"""A throw-away Dovecot IMAP server on 127.0.0.1 for the tests, all its state in one temp dir.

What works on this kind of machine is written up in
../shared/docs/dovecot-test-server.md: as root, Dovecot's login and mail
processes run as its system users; the temp root is short (Unix socket paths)
and world-readable (the auth process reads the users file there).
Given a certificate, it also speaks TLS: STARTTLS on `port`, implicit TLS on
`tls_port`. Dovecot counts a loopback connection as secured, so it takes a
clear-text login there too: its log tells how each login came ("TLS" or
"secured").
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive"}


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)


def why_unavailable() -> str | None:
    """None when a test server can run here; otherwise the reason, to skip (or fail in CI) with."""
    if dovecot_binary() is None:
        return "Dovecot is not installed: `make test` installs dovecot-imapd when run as root"
    if os.geteuid() != 0:
        return "the Dovecot test server runs only as root here (its login and mail processes need their users)"
    return None


def _free_ports(n: int) -> list[int]:
    """n distinct free ports on 127.0.0.1 (held open together, so no two are the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class ServerCertificate:
    """What Dovecot presents over TLS: a PEM certificate chain and its PEM private key."""

    chain: bytes
    key: bytes


class DovecotServer:
    """`with DovecotServer({"alice": "secret"}) as server:` then IMAP on 127.0.0.1:server.port.

    With `certificate`, STARTTLS on `port` and implicit TLS (imaps) on `tls_port`; `names` maps an SNI
    host name to the certificate presented to a client asking for that name instead.
    """

    def __init__(self, users: dict[str, str], certificate: ServerCertificate | None = None,
                 names: Mapping[str, ServerCertificate] | None = None) -> None:
        self.users = users
        self.certificate = certificate
        self.names = dict(names or {})
        self.root = Path(tempfile.mkdtemp(prefix="dc-", dir="/tmp"))
        self.root.chmod(0o755)
        self.port = 0
        self.tls_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def maildir(self, user: str) -> Path:
        """Where `user`'s mail lives; files written here before the first login are served as is."""
        return self.root / "mail" / user / "Maildir"

    def _certificate_files(self, name: str, cert: ServerCertificate) -> str:
        """Write `cert` under the root (the key readable by root only: Dovecot reads it before dropping
        privileges) and return the config lines that point at it."""
        tls = self.root / "tls"
        tls.mkdir(mode=0o700, exist_ok=True)
        (tls / f"{name}.crt").write_bytes(cert.chain)
        key = tls / f"{name}.key"
        key.touch(mode=0o600)
        key.write_bytes(cert.key)
        return f"ssl_cert = <{tls}/{name}.crt\nssl_key = <{tls}/{name}.key\n"

    def _ssl(self) -> str:
        if self.certificate is None:
            return "ssl = no\n"
        conf = "ssl = yes\n" + self._certificate_files("server", self.certificate)
        for i, (name, cert) in enumerate(self.names.items()):
            conf += f"local_name {name} {{\n{self._certificate_files(f'name{i}', cert)}}}\n"
        return conf

    def _config(self) -> Path:
        (self.root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        mailboxes = "".join(f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}\n"
                            for name, use in SPECIAL_USE.items())
        conf = f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{self._ssl()}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_fsync = never
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.root}/users
}}
userdb {{
  driver = static
  args = home={self.root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
"""
        path = self.root / "dovecot.conf"
        path.write_text(conf)
        return path

    def start(self) -> "DovecotServer":
        binary = dovecot_binary()
        assert binary is not None, why_unavailable()
        for user in self.users:
            self.maildir(user).mkdir(parents=True, exist_ok=True)
        dovecot = pwd.getpwnam("dovecot")
        for dirpath, _, files in os.walk(self.root / "mail"):
            os.chown(dirpath, dovecot.pw_uid, dovecot.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), dovecot.pw_uid, dovecot.pw_gid)
        for attempt in range(5):
            self.port, tls_port = _free_ports(2)
            self.tls_port = tls_port if self.certificate is not None else 0  # 0: no imaps listener
            self.proc = subprocess.Popen([binary, "-F", "-c", str(self._config())], start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._greeted():
                return self
            self.stop(remove=False)  # the port was taken meanwhile, or the config failed: try again
        raise RuntimeError(f"Dovecot did not start: {self.log()[-2000:]}")

    def _greeted(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, remove: bool = True) -> None:
        """SIGTERM the master, then SIGKILL its process group (logged-in imap processes outlive it)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the group's other members are reaped by init, a little later
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.01)
            self.proc = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "DovecotServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
