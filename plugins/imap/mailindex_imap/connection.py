"""One IMAP connection: where to connect, how to log in, and every failure as a SourceError with the server's words.

Locations are URLs: ``imaps://user@host[:993]`` (TLS) or ``imap://user@host[:143]``
(STARTTLS, required: a server that does not offer it is refused before any
password is sent, never spoken to in clear text). Certificates and the host
name are checked against the system store, or only against the CA
certificates of the PEM file named by the ``ca_file`` option (an absolute
path). ``tls=none`` allows plain TCP, and only to a loopback address (tests,
a local Dovecot). The password comes from the caller (kept in
memory only), the environment variable named by ``password_env`` (default
MAILINDEX_IMAP_PASSWORD), or the system keyring (``keyring=1``, service
"mailindex", key the location URL); it is never written anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.response_parser import parse_fetch_response
from imapclient.imapclient import seq_to_parenstr_upper

from mailindex.errors import SourceError, SourceNotFound

DEFAULT_PASSWORD_ENV = "MAILINDEX_IMAP_PASSWORD"
TIMEOUT = 60.0
LOG_LINES = 40
# OpenSSL's X509_V_ERR codes for a chain that ends in a CA the context does not trust (not for a name
# mismatch or an expired certificate, which a CA file does not cure)
_UNTRUSTED_ISSUER = frozenset({2, 18, 19, 20, 21})
T = TypeVar("T")


class Endpoint:
    """Host, port, user and TLS mode parsed from a location URL and options."""

    def __init__(self, location: str, options: Mapping[str, Any]) -> None:
        parts = urlsplit(location)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise SourceError(location, "an IMAP location looks like imaps://user@host or imap://user@host:143")
        self.location = location
        self.host = parts.hostname
        self.user = unquote(parts.username or "")
        if not self.user:
            raise SourceError(location, "the location names no user (imaps://user@host)")
        tls = str(options.get("tls", "ssl" if parts.scheme == "imaps" else "starttls")).lower()
        if tls not in ("ssl", "starttls", "none"):
            raise SourceError(location, f"option tls must be ssl, starttls or none (got {tls!r})")
        if tls == "none" and not _is_loopback(self.host):
            raise SourceError(location, "tls=none (a clear-text password) is allowed only to a loopback address")
        self.tls = tls
        self.port = parts.port or (993 if tls == "ssl" else 143)
        self.options = options
        ca_file = options.get("ca_file")
        # a bad ca_file is refused when the source is added, not at its first sync
        self._context = self._load_ca_file(ca_file) if ca_file is not None and tls != "none" else None

    def password(self) -> str:
        given = self.options.get("password")
        if given:
            return str(given)
        env = str(self.options.get("password_env") or DEFAULT_PASSWORD_ENV)
        if os.environ.get(env):
            return os.environ[env]
        if str(self.options.get("keyring", "0")) in ("1", "true", "True"):
            try:
                import keyring  # optional: only when asked
            except ImportError:
                raise SourceError(self.location, "keyring=1 needs the 'keyring' package "
                                                 "(pip install 'mailindex-imap[keyring]')") from None
            stored = keyring.get_password("mailindex", self.location)
            if stored:
                return stored
        raise SourceError(self.location, f"no password: pass one, set ${env}, or store it in the keyring (keyring=1)")

    def context(self) -> ssl.SSLContext:
        """The TLS context: it checks the certificate chain (against the ca_file's CAs when that option
        is given, else the system store) and the host name."""
        if self._context is None:
            self._context = ssl.create_default_context()  # the system store, loaded on first use (~20 ms)
        return self._context

    def _load_ca_file(self, ca_file: Any) -> ssl.SSLContext:
        path = os.fspath(ca_file) if isinstance(ca_file, (str, os.PathLike)) else ""
        if not os.path.isabs(path):  # the option is stored with the source: later syncs run from anywhere
            raise SourceError(self.location, f"option ca_file must be an absolute path (got {ca_file!r})")
        try:
            return ssl.create_default_context(cafile=path)
        except OSError as exc:  # ssl.SSLError too: a file that holds no PEM certificate
            raise SourceError(self.location, f"option ca_file: cannot load CA certificates from {path}: "
                                             f"{exc.strerror or _words(exc)}") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Connection:
    """A logged-in IMAPClient, opened on first use and opened again after a drop.

    `call(what, fn)` runs one exchange; any failure becomes a SourceError
    whose `connection_log` holds the last exchanges and the server's words.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self._client: imapclient.IMAPClient | None = None
        self.selected: tuple[str, bool] | None = None  # (folder, read-only)
        self.selected_info: dict[bytes, Any] = {}

    @property
    def client(self) -> imapclient.IMAPClient:
        if self._client is None:
            self._client = self._login()
        return self._client

    def _login(self) -> imapclient.IMAPClient:
        ep = self.endpoint
        try:
            return self._open()
        except LoginError as exc:
            raise self._error(f"the server refused the login for {ep.user}", exc) from None
        except ssl.SSLCertVerificationError as exc:
            hint = "; a private CA's certificate can be given with the ca_file option" \
                if exc.verify_code in _UNTRUSTED_ISSUER else ""
            raise self._error(f"refused the TLS certificate of {ep.host}:{ep.port}", exc,
                              words=f"certificate verify failed: {exc.verify_message or _words(exc)}{hint}") from None
        except (OSError, IMAPClientError) as exc:
            raise self._error(f"cannot connect to {ep.host}:{ep.port}", exc) from None

    def _open(self) -> imapclient.IMAPClient:
        """Connect, secure the connection as the endpoint says, log in; on any failure close the socket."""
        ep = self.endpoint
        self.log.append(f"C: connect {ep.host}:{ep.port} ({ep.tls})")
        client = imapclient.IMAPClient(ep.host, port=ep.port, ssl=ep.tls == "ssl", timeout=TIMEOUT,
                                       ssl_context=ep.context() if ep.tls == "ssl" else None)
        try:
            if ep.tls == "starttls":
                self._starttls(client)
            self.log.append(f"C: LOGIN {ep.user} ****")
            client.login(ep.user, ep.password())
        except BaseException:
            _shutdown(client)
            raise
        self.log.append("S: OK logged in")
        return client

    def _starttls(self, client: imapclient.IMAPClient) -> None:
        """Switch to TLS, or refuse: a server that does not offer STARTTLS never gets the password."""
        ep = self.endpoint
        self.log.append("C: STARTTLS")
        if not client.has_capability("STARTTLS"):
            problem = (f"{ep.host}:{ep.port} does not offer STARTTLS: refusing to log in without TLS "
                       "(imaps:// or tls=ssl for implicit TLS)")
            self.log.append(f"-- {problem}")
            raise SourceError(ep.location, problem, connection_log="\n".join(self.log))
        client.starttls(ep.context())

    def call(self, what: str, fn: Callable[[imapclient.IMAPClient], T]) -> T:
        """Run `fn(client)`; log `what`; a server NO/BAD or a dropped connection raises SourceError."""
        self.log.append(f"C: {what}")
        client = self.client
        try:
            return fn(client)
        except (IMAPClientAbortError, OSError, socket.timeout) as exc:
            self.drop()
            raise self._error(f"the connection dropped during {what}", exc) from None
        except IMAPClientError as exc:
            text = _words(exc)
            if "NONEXISTENT" in text.upper() or "doesn't exist" in text:
                raise self._error(f"{what}: no such folder", exc, SourceNotFound) from None
            raise self._error(f"the server refused {what}", exc) from None

    def _error(self, problem: str, exc: BaseException, kind: type[SourceError] = SourceError,
               words: str | None = None) -> SourceError:
        words = _words(exc) if words is None else words
        self.log.append(f"S: {words}")
        self.log.append(f"-- {problem}")
        return kind(self.endpoint.location, f"{problem}: {words}", connection_log="\n".join(self.log))

    def select(self, folder: str, readonly: bool, fresh: bool = False) -> dict[bytes, Any]:
        """SELECT (EXAMINE when read-only) unless the folder is selected already in a mode that serves."""
        current = self.selected
        if (not fresh and self._client is not None and current is not None and current[0] == folder
                and (readonly or not current[1])):
            return self.selected_info
        info = self.call(f"{'EXAMINE' if readonly else 'SELECT'} {folder}",
                         lambda c: c.select_folder(folder, readonly=readonly))
        self.selected, self.selected_info = (folder, readonly), info
        return info

    def drop(self) -> None:
        client, self._client, self.selected = self._client, None, None
        if client is not None:
            _shutdown(client)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.logout()
            except (OSError, IMAPClientError):
                pass
            self._client = None
            self.selected = None


def fetch_all(client: imapclient.IMAPClient, items: list[bytes]) -> dict[int, dict[bytes, Any]]:
    """UID FETCH 1:* in one command: IMAPClient.fetch() keeps only the ids it was given as numbers,
    and naming 20,000 UIDs one by one would pass the server's line-length limit."""
    tag = client._imap._command("UID", "FETCH", "1:*", seq_to_parenstr_upper(items))
    typ, data = client._imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = client._imap._untagged_response(typ, data, "FETCH")
    return parse_fetch_response(data, client.normalise_times, True)


def _shutdown(client: imapclient.IMAPClient) -> None:
    try:
        client.shutdown()
    except (OSError, IMAPClientError):
        pass


def _words(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text
