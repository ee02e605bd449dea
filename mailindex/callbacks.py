"""Callback URLs: which ones mailindex may send a request to, and the POST itself.

A callback goes to a public address only, so that whoever creates a connect token cannot make the
index's host send requests to itself or to its private network (server-side request forgery). The
host of a URL is resolved the way the connection resolves it (`socket.getaddrinfo`, which also reads
`0x7f000001`, `2130706433` and `0177.0.0.1` as 127.0.0.1), every address it resolves to must be public,
and the POST connects to one of the addresses it has just vetted itself: no second lookup that a
DNS rebinding could answer differently. Redirects are not followed. `allow_private=True` lifts the
address rule; only the embedding program sets it (`MailIndex(allow_private_callbacks=True)`).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.parse
from typing import TYPE_CHECKING, Any, NamedTuple

from mailindex.errors import QueryError
from mailindex.query.filters import text_param

if TYPE_CHECKING:
    import http.client

TIMEOUT = 10.0  # seconds for each step of a delivery (connect, send, answer)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolved = list[tuple[socket.AddressFamily, tuple[Any, ...]]]  # (family, sockaddr) of each address


class Target(NamedTuple):
    """Where a callback URL sends its request."""

    tls: bool
    host: str  # lowercase, IDNA-encoded; an IPv6 literal without its brackets
    port: int
    path: str  # path and query: what the request line asks for


def target(name: str, value: Any) -> Target:
    """The parts of an absolute http(s) URL with a host, or QueryError naming `name`."""
    url = text_param(name, value)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError on a port that is not a number in range
        host = (parts.hostname or "").encode("idna").decode("ascii")  # UnicodeError is a ValueError
    except ValueError as exc:
        raise QueryError(name, value, f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise QueryError(name, value, "must be an absolute http:// or https:// URL")
    return Target(scheme == "https", host, (443 if scheme == "https" else 80) if port is None else port,
                  urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))


def resolve(where: Target) -> Resolved:
    """Every address the host resolves to, for a TCP connection to its port; OSError if none."""
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr
            in socket.getaddrinfo(where.host, where.port, type=socket.SOCK_STREAM)]


def non_public(address: IPAddress) -> str | None:
    """What keeps `address` from receiving a callback ("a loopback address", ...), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour  # reaches that IPv4 address
        if embedded is not None:
            why = non_public(embedded)
            return None if why is None else f"{why} (as {embedded})"
        if address.is_site_local:  # deprecated, but is_global does not count it out
            return "a site-local address"
    for what, flag in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                       ("the unspecified", address.is_unspecified), ("a multicast", address.is_multicast),
                       ("a reserved", address.is_reserved), ("a private", address.is_private)):
        if flag:
            return f"{what} address"
    return None if address.is_global else "not a globally routable address"  # e.g. 100.64.0.0/10


def refusal(where: Target, addresses: Resolved) -> str | None:
    """Why a callback may not go to these addresses of `where` (the first that is not public), or None."""
    for _family, sockaddr in addresses:
        why = non_public(ipaddress.ip_address(sockaddr[0]))
        if why is not None:
            named = f"{where.host} is" if sockaddr[0] == where.host else f"{where.host} resolves to {sockaddr[0]},"
            return f"{named} {why}; callbacks go to public addresses only"
    return None


def check_url(name: str, value: Any, *, allow_private: bool = False) -> str:
    """`value`, an absolute http(s) URL whose host is not and does not resolve to a non-public address
    (loopback, link-local, private, unique-local, multicast, reserved, unspecified); QueryError naming
    `name` otherwise.

    A host name that does not resolve now is accepted: making a token needs no network, and `post`
    vets the addresses again before it connects: a name that later resolves to a private address still
    receives nothing.
    """
    url = text_param(name, value)
    where = target(name, url)
    if not allow_private:
        try:
            addresses = resolve(where)
        except OSError:  # socket.gaierror: unknown now, vetted again at POST time
            addresses = []
        why = refusal(where, addresses)
        if why is not None:
            raise QueryError(name, value, why)
    return url


def post(url: str, payload: dict[str, Any], *, allow_private: bool = False) -> dict[str, Any]:
    """POST `payload` as JSON to `url`; answers `{url, delivered, status | error}` and never raises.

    The host is resolved once, every address checked (unless `allow_private`), and the connection made
    to a checked address, keeping the host name for the Host header and TLS (SNI and certificate). A
    redirect (3xx) is reported, not followed; only a 2xx answer counts as delivered.
    """
    import http.client  # here, not at the top: with ssl they cost every CLI command ~20 ms of start-up

    try:
        where = target("url", url)
        addresses = resolve(where)
        why = None if allow_private else refusal(where, addresses)
        if why is not None:
            return {"url": url, "delivered": False, "error": f"not sent: {why}"}
        connection = _pinned(where, addresses)
        try:
            connection.request("POST", where.path, body=json.dumps(payload).encode(),
                               headers={"Content-Type": "application/json", "User-Agent": "mailindex"})
            response = connection.getresponse()
        finally:
            connection.close()
    except (http.client.HTTPException, OSError, ValueError) as exc:
        return {"url": url, "delivered": False, "error": f"{type(exc).__name__}: {exc}"}
    if 200 <= response.status < 300:
        return {"url": url, "delivered": True, "status": response.status}
    if 300 <= response.status < 400:
        return {"url": url, "delivered": False, "status": response.status,
                "error": f"redirect to {response.getheader('Location')!r} not followed"}
    return {"url": url, "delivered": False, "status": response.status, "error": response.reason}


def _pinned(where: Target, addresses: Resolved) -> "http.client.HTTPConnection":
    """An HTTP(S) connection to `where` that connects to `addresses` only, never to a fresh lookup."""
    import http.client
    import ssl

    class Pinned(http.client.HTTPConnection):
        default_port = 443 if where.tls else 80  # the Host header leaves the scheme's own port out

        def connect(self) -> None:
            sock = _connect(addresses, self.timeout)
            if where.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=where.host)
            self.sock = sock

    return Pinned(where.host, where.port, timeout=TIMEOUT)


def _connect(addresses: Resolved, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of `addresses` that answers, as socket.create_connection tries them."""
    error: OSError = OSError("the host has no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error
