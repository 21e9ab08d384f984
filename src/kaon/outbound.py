"""The outbound policy: which addresses Kaon may connect to (`KAON_OUTBOUND_ALLOW`), checked when an output
is saved and again, against the resolved address, on every request.

By default only public addresses are allowed. Loopback, private (RFC 1918, fc00::/7), shared (CGNAT,
100.64.0.0/10), link-local and cloud metadata (169.254.0.0/16, fe80::/10, fd00:ec2::254), unspecified,
multicast and reserved addresses are refused unless the operator lists them: `KAON_OUTBOUND_ALLOW` is a
comma-separated list of CIDRs (`10.0.0.0/8`, `127.0.0.1`, `::1`) and host names (`localhost`,
`hooks.internal`; a listed name is allowed whatever it resolves to).

A request resolves its host once and connects to that address (the `Host` header and TLS name stay the
host's), so a name cannot pass the check and then resolve elsewhere (DNS rebinding); redirects are never
followed.
"""

import contextlib
import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

ENV = "KAON_OUTBOUND_ALLOW"
CODE = "OUTBOUND_REFUSED"
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_METADATA = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00:ec2::254/128"),
             ipaddress.ip_network("fe80::/10"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class Refused(ValueError):
    """The policy refuses this destination; the message names the address, its class and the setting."""

    code = CODE


def refused_class(address: IpAddress) -> str | None:
    """The kind of non-public address this is (None for a public one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _METADATA) or address.is_link_local:
        return "link-local or metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not public"
    return None


def system_lookup(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, from the system resolver."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


@dataclass(frozen=True)
class Policy:
    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    lookup: Callable[[str, int], list[str]] = system_lookup

    @classmethod
    def parse(cls, value: str) -> "Policy":
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def check_address(self, host: str, address: IpAddress) -> None:
        kind = refused_class(address)
        if kind is not None and not any(address in network for network in self.networks):
            shown = host if host == str(address) else f"{host} ({address})"
            raise Refused(f"{shown} is a {kind} address, refused by the outbound policy; an operator may allow "
                          f"it in {ENV}")

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for `host`: itself when an IP, else the first it resolves to, every one
        of which must be allowed (unless the name is listed)."""
        name = host.strip("[]").lower().rstrip(".")
        try:
            literal = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            self.check_address(name, literal)
            return str(literal)
        try:
            addresses = [ipaddress.ip_address(found.split("%")[0]) for found in self.lookup(name, port)]
        except (OSError, UnicodeError, ValueError) as error:
            raise httpx.ConnectError(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise httpx.ConnectError(f"cannot resolve {host}")
        if name not in self.hosts:
            for address in addresses:
                self.check_address(name, address)
        return str(addresses[0])

    def check_host(self, host: str) -> None:
        """At creation: refuse a host that is, or now resolves to, a refused address. A name that does not
        resolve yet is accepted; it is checked again on every request."""
        with contextlib.suppress(httpx.ConnectError):
            self.resolve(host, 443)


@functools.lru_cache(maxsize=8)
def _parsed(value: str) -> Policy:
    return Policy.parse(value)


def policy() -> Policy:
    """The operator's policy, from the environment (read each time: cheap, and tests may change it)."""
    return _parsed(os.environ.get(ENV, ""))


def check_url(url: str) -> None:
    """Raises Refused when `url`'s host is refused (at output creation and update)."""
    try:
        host = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as error:
        raise ValueError(f"not a valid URL: {error} - at `base_url`") from None
    if host:
        policy().check_host(host)


def request(client: httpx.Client, method: str, url: str, *, headers: Mapping[str, str] | None = None,
            content: bytes | None = None, json: Any = None, timeout: float = 30.0,
            rules: Policy | None = None) -> httpx.Response:
    """One request under the policy: resolved once, connected to the checked address, redirects not followed.
    Raises Refused, or httpx errors as `client.request` does."""
    target = httpx.URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise httpx.UnsupportedProtocol(f"only http and https URLs are sent, not {url[:100]!r}")
    port = target.port or (443 if target.scheme == "https" else 80)
    host = target.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS see it
    address = (rules or policy()).resolve(host, port)
    pinned = target.copy_with(host=address)
    sent = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}
    sent["Host"] = target.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return client.request(method, pinned, headers=sent, content=content, json=json, timeout=timeout,
                          follow_redirects=False, extensions=extensions)
