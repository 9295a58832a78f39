"""Where a webhook may point: a public address, over https outside development, unless the
operator allows the host (`GOVERNANCE_WEBHOOK_ALLOWED_HOSTS`).

A webhook is a URL an admin types and the worker posts to from inside the network, so it must not
reach what only the network can: loopback, link-local (169.254.169.254, the cloud metadata
service), private, shared, reserved or multicast addresses. It is checked twice: when a group's
webhook is saved (the URL, and what its host resolves to then), and by the worker before every
post (what the host resolves to now, since DNS may have changed since). The worker then connects
to the very address it checked (the host name still goes in `Host` and in TLS's SNI, and the
certificate is verified against it) and never follows a redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from governance.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class UnsafeWebhook(Exception):
    """This URL may not be a webhook target; `reason` says why (without the URL's secret path)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """What the settings allow: plain http or not, and hosts exempt from the address check."""

    require_https: bool = True
    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> WebhookPolicy:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in settings.webhook_allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(_normal(entry))
        return cls(settings.environment != "development", frozenset(names), tuple(networks))

    def allows(self, host: str) -> bool:
        """Whether the operator allowed this host (by name, or as an address in a network)."""
        if _normal(host) in self.allowed_names:
            return True
        address = _literal(host)
        return address is not None and any(address in net for net in self.allowed_networks)


@dataclass(frozen=True, slots=True)
class Target:
    """How to post to a checked webhook: the URL to connect to, and what keeps the name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(_normal(host))
    except ValueError:
        return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not connect to this address, or None for a public one."""
    inner = _embedded(address)
    if inner is not None:
        return refusal(inner)
    for kind, flag in (
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("an unspecified", address.is_unspecified),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
    ):
        if flag:
            return f"{kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def _parts(url: str, policy: WebhookPolicy) -> tuple[SplitResult, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeWebhook("must be an http(s) URL")
    if policy.require_https and scheme != "https":
        raise UnsafeWebhook(
            "must use https (plain http only with GOVERNANCE_ENVIRONMENT=development)"
        )
    if not parts.hostname:
        raise UnsafeWebhook("has no host")
    return parts, parts.hostname


def check_url(url: str, policy: WebhookPolicy) -> None:
    """Refuse a URL that is unsafe on its face: scheme, an address literal, a local name."""
    _split, host = _parts(url, policy)
    if policy.allows(host):
        return
    address = _literal(host)
    if address is not None:
        why = refusal(address)
        if why:
            raise UnsafeWebhook(f"{host} is {why}")
    elif _normal(host) in _LOCAL_NAMES or _normal(host).endswith(".localhost"):
        raise UnsafeWebhook(f"{host} is a loopback name")


def checked_addresses(
    host: str, port: int, resolver: Resolver = _system_resolver
) -> list[IPAddress]:
    """What the host resolves to, if every address is public; else UnsafeWebhook.

    OSError when it does not resolve at all.
    """
    addresses = [ipaddress.ip_address(a.partition("%")[0]) for a in resolver(host, port)]
    if not addresses:
        raise OSError(f"{host} resolves to nothing")
    for address in addresses:
        why = refusal(address)
        if why:
            raise UnsafeWebhook(f"{host} resolves to {address}, {why}")
    return addresses


def check_saved(url: str, policy: WebhookPolicy, resolver: Resolver = _system_resolver) -> None:
    """The check when an admin saves a webhook: the URL, and what its host resolves to now.

    A host that does not resolve from here is let through: the worker's own check decides.
    """
    check_url(url, policy)
    parts, host = _parts(url, policy)
    if policy.allows(host) or _literal(host) is not None:
        return
    try:
        checked_addresses(host, parts.port or _default_port(parts), resolver)
    except OSError:
        return


def _default_port(parts: SplitResult) -> int:
    return 443 if parts.scheme.lower() == "https" else 80


def pin(url: str, policy: WebhookPolicy, resolver: Resolver = _system_resolver) -> Target:
    """The check before a post: resolve the host now, refuse unless every address is public,
    and connect to the address checked (an allowed host is posted to as it is)."""
    check_url(url, policy)
    parts, host = _parts(url, policy)
    if policy.allows(host) or _literal(host) is not None:
        return Target(url)
    port = parts.port or _default_port(parts)
    address = checked_addresses(host, port, resolver)[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (
        (f"{userinfo}@" if userinfo else "") + literal + (f":{parts.port}" if parts.port else "")
    )
    authority = f"{host}:{parts.port}" if parts.port else host
    pinned = parts._replace(netloc=netloc).geturl()
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
    return Target(pinned, {"Host": authority}, extensions)
