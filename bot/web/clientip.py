"""The client's address behind trusted reverse proxies (``trusted_proxies``), for per-IP keys.

``X-Forwarded-For`` is believed only when the direct peer is one of ``trusted_proxies``;
then the client is the rightmost address of the header that is not itself a trusted proxy
(everything left of it could have been written by the client). An untrusted peer sending
the header is ignored, so nobody can pick their own address to dodge a lockout.

The middleware (first in the app) hands every handler a request whose ``request.remote``
is that address, so login throttling (``bot.web.auth``), the request limits
(``bot.web.limits``) and the audit log all key by the real client without knowing proxies.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from functools import lru_cache

from aiohttp import web

from bot import keys
from bot.web.security import Handler

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAX_HOPS = 20  # a longer header is not walked further (the rest is the client's own text)


@lru_cache(maxsize=8)
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses and CIDRs (``10.0.0.1``, ``10.0.0.0/8``, ``::1``) as networks.

    Raises:
        ValueError: a value that is neither.
    """
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(value: str) -> Address | None:
    """An address of a header entry (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:567``), or None."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in n for n in networks)


def resolve(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[str, ...]
) -> str | None:
    """The client address given the direct peer, the X-Forwarded-For values and the proxies.

    Args:
        peer: the address of the direct TCP peer (None for unix sockets and tests).
        forwarded_for: every ``X-Forwarded-For`` header value, in order.
        trusted: ``trusted_proxies`` (addresses and CIDRs).

    Returns:
        The rightmost untrusted address; the peer when it is not a trusted proxy.
    """
    networks = parse_networks(tuple(trusted))
    if not networks or peer is None:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, networks):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops[-_MAX_HOPS:]):
        address = _address(hop)
        if address is None:
            break  # garbage: the last good hop (a trusted proxy) is the best we know
        current = address
        if not _trusted(address, networks):
            break
    return str(current)


def client_ip(request: web.BaseRequest) -> str | None:
    """The client address of a request (see the module docstring)."""
    peername = request.transport.get_extra_info("peername") if request.transport else None
    peer = peername[0] if isinstance(peername, tuple | list) and peername else request.remote
    config = request.config_dict.get(keys.CONFIG) if isinstance(request, web.Request) else None
    trusted = config.trusted_proxies if config is not None else ()
    return resolve(peer, request.headers.getall("X-Forwarded-For", ()), trusted)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the handlers a request whose ``remote`` is the client behind trusted proxies."""
    if not request.config_dict[keys.CONFIG].trusted_proxies:
        return await handler(request)
    address = client_ip(request)
    if address == request.remote:
        return await handler(request)
    return await handler(request.clone(remote=address))


def setup(app: web.Application) -> None:
    """Install the middleware (listed in ``FEATURES`` before every per-address limit)."""
    app.middlewares.append(middleware)
