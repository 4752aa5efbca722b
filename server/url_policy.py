"""Which `image_url` URLs a message may carry.

The URL is handed to the model (litellm fetches it itself for some providers), so it is
a request made from inside the deployment on a client's behalf. Only http and https are
taken, and, unless ASSISTD_ALLOW_LOCAL_IMAGE_URLS is set, never a host the URL itself
names as this machine (localhost, 127.0.0.0/8, ::1, 0.0.0.0) or as link-local
(169.254.0.0/16 with the clouds' metadata service, fe80::/10), in any spelling an HTTP
client accepts (`127.1`, `0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`).

What a hostname resolves to is not checked here (DNS at request time proves nothing
about the time of the fetch); keep the fetching side's network policy for that
(docs/security.md).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# RFC 3986's characters: unreserved, reserved and '%'. Anything else (spaces, controls,
# non-ASCII) must be percent-encoded, or the URL fails the spec's `format: uri`.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


@dataclass
class ImageUrlPolicy:
    allow_local: bool = False


# Set once from Settings by create_app (pydantic validators cannot reach the app).
policy = ImageUrlPolicy()


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the shorthand forms inet_aton (and so curl, and browsers) read as IPv4
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def is_local_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return is_local_address(mapped)
        if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d
            return is_local_address(ipaddress.IPv4Address(int(ip)))
        return ip.is_loopback or ip.is_link_local or ip.is_unspecified
    return ip.is_loopback or ip.is_link_local or ip in ipaddress.IPv4Network("0.0.0.0/8")


def is_local_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host.split("%", 1)[0])
    return ip is not None and is_local_address(ip)


def check_image_url(url: str) -> str:
    """`url` unchanged if acceptable, else ValueError saying why (a 400 naming the param)."""
    if not _URI_CHARS.fullmatch(url):
        raise ValueError("must be a URL (RFC 3986: encode spaces and non-ASCII characters)")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError("must be a valid http or https URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("must be an http or https URL with a host")
    if not policy.allow_local and is_local_host(host):
        raise ValueError(
            "must not point at a loopback or link-local address "
            "(ASSISTD_ALLOW_LOCAL_IMAGE_URLS allows it)"
        )
    return url
