"""Who may reach a served library, and who may change it.

Serving beyond this machine needs a login (`check_exposure`). Changing the library (adding
or removing folders, starting or stopping index runs) answers only a client on this machine
or a logged-in one (`check_manager`): a folder added by anyone else would be indexed and its
files then handed out by the file route, so whoever reached the server could read any folder
the server's user can. Searching and viewing library files stay open to whoever reaches the
server (with a login set, that is only those who logged in).

The checks are pure functions over addresses and header names; `require_manager` applies
`check_manager` to a Gradio request, for every UI event and API endpoint that changes the
library.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from search.errors import TroveError

if TYPE_CHECKING:
    import gradio as gr

LOGIN_HINT = "--auth user:password (or the TROVE_AUTH environment variable)"
# Headers a proxy adds. A request carrying one came through a proxy, so its peer address is
# the proxy's (often this machine's own), not the client's: it does not count as local.
PROXY_HEADERS = frozenset({"forwarded", "x-real-ip", "via"})
PROXY_HEADER_PREFIX = "x-forwarded-"


class NotAllowedError(TroveError):
    """A library change asked for by a client that may only search."""


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an IP address, or "localhost") is this machine only: 127.0.0.0/8, ::1,
    or an IPv4 loopback address written as IPv6. Anything else, a name included, is not."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_exposure(host: str, share: bool, auth: object | None) -> None:
    """Refuse to serve where other machines can reach the server without a login (`auth`):
    a `host` that is not a loopback address, or a public share link."""
    if auth:
        return
    if share:
        raise TroveError(
            f"--share puts your library on a public address: give it a login with {LOGIN_HINT}."
        )
    if not is_loopback(host):
        raise TroveError(
            f"Serving on {host or 'every address'} without a login would let anyone who can "
            f"reach this machine search your library and open its files. Give it a login with "
            f"{LOGIN_HINT}, or serve on 127.0.0.1 (the default: this machine only)."
        )


def through_proxy(header_names: Iterable[str]) -> bool:
    """Whether a request with these headers came through a proxy (see PROXY_HEADERS)."""
    names = {name.lower() for name in header_names}
    return bool(names & PROXY_HEADERS) or any(n.startswith(PROXY_HEADER_PREFIX) for n in names)


def check_manager(
    client_host: str | None, header_names: Iterable[str], username: str | None
) -> None:
    """Refuse a library change (NotAllowedError) unless the request comes from a logged-in
    user (`username`), or straight from this machine: a loopback peer address and no proxy
    header. A forwarded-for header never makes a client local, whatever address it names."""
    if username:
        return
    proxied = through_proxy(header_names)
    if is_loopback(client_host) and not proxied:
        return
    source = "through a proxy" if proxied else f"from {client_host or 'an unknown address'}"
    raise NotAllowedError(
        f"Library changes (adding or removing folders, starting or stopping an index run) are "
        f"taken only from this machine or a logged-in user; this request came {source}. To "
        f"manage the library from another machine, serve it with {LOGIN_HINT} and log in."
    )


def check_local_client(client_host: str | None, header_names: Iterable[str]) -> None:
    """Refuse (NotAllowedError) unless the browser runs on this machine: a loopback peer
    and no proxy header. A login does not make a client local: opening a file shows it on
    the server's screen, which a person elsewhere cannot see."""
    proxied = through_proxy(header_names)
    if is_loopback(client_host) and not proxied:
        return
    source = "through a proxy" if proxied else f"from {client_host or 'an unknown address'}"
    raise NotAllowedError(
        f"Opening a file or its folder happens on the machine that runs Trove, so it is done "
        f"only for a browser on that machine; this request came {source}. Download the file "
        f"from its detail panel instead."
    )


def require_local_client(request: gr.Request | None) -> None:
    """Raise NotAllowedError unless the request comes from a browser on this machine."""
    if request is None:
        raise NotAllowedError("Opening a file needs a request to judge; none was given.")
    client = request.client
    check_local_client(client.host if client else None, dict(request.headers))


def require_manager(request: gr.Request | None) -> None:
    """Raise NotAllowedError unless the caller may change the library: a logged-in user, or
    a client on this machine that no proxy relayed. A handler called without a request (none
    to judge) is refused too."""
    if request is None:
        raise NotAllowedError("A library change needs a request to judge; none was given.")
    client = request.client
    check_manager(client.host if client else None, dict(request.headers), request.username)
