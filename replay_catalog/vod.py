"""Fetching HLS playlists from Tencent VOD without opening a door into our own network.

The URLs come from callbacks, and a callback's sign does not cover its body, so a
URL is only fetched when its host is on the VOD allow-list, every address it
resolves to is public (unless private addresses are explicitly allowed), and the
connection goes to the address that was checked (no second DNS answer). Redirects
are followed by hand and only to allowed hosts; bodies and time are capped.
"""

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

log = logging.getLogger("replay_catalog.vod")

# Tencent VOD's default play domains: recordings are served from
# `{bizid}.vod.myqcloud.com` (the file list's documented fallback URL),
# `{bizid}.vod2.myqcloud.com` (what callbacks carry) and `{subappid}.vod-qcloud.com`
# (newer VOD distribution domains).
DEFAULT_VOD_ALLOWED_HOSTS = (".vod.myqcloud.com", ".vod2.myqcloud.com", ".vod-qcloud.com")
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_PLAYLIST_BYTES = 2 * 1024 * 1024
# A VOD URL that redirects more often than this is not one we want to follow.
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WEB_SCHEMES = ("http", "https")
PLAYLIST_ACCEPT = "application/vnd.apple.mpegurl, application/x-mpegurl;q=0.9, */*;q=0.1"
# IPv6 ranges that carry an IPv4 address in their last 32 bits (RFC 4291 2.5.5.1, the
# deprecated IPv4-compatible form; RFC 6052 2.1, the well-known NAT64 prefix), and the
# NAT64 prefix for local use only (RFC 8215).
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# A DNS name as resolvers take it (RFC 1035 2.3.4): at most 253 characters, labels of 1
# to 63 letters, digits, '-' or '_' (which some CDN names use), one optional final dot.
MAX_HOST_NAME_LENGTH = 253
HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}", re.IGNORECASE)


class VodFetchError(Exception):
    """A playlist could not be fetched; the message is one line, safe to show a caller."""


class VodFetchRefused(VodFetchError):
    """The URL (or a redirect) is not one the service may fetch; nothing was sent to it."""


@dataclass(frozen=True)
class FetchedPlaylist:
    """A playlist's text and the URL it finally came from (after redirects), which its
    relative URIs are resolved against."""

    url: str
    text: str


class VodHosts:
    """The allow-list: exact host names (or addresses), and `.suffix` for any subdomain."""

    def __init__(self, entries: Iterable[str]) -> None:
        normalized = [entry.strip().lower().rstrip(".") for entry in entries if entry.strip()]
        self.exact = frozenset(entry for entry in normalized if not entry.startswith("."))
        self.suffixes = tuple(entry for entry in normalized if entry.startswith("."))

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.exact or any(
            host.endswith(suffix) and len(host) > len(suffix) for suffix in self.suffixes
        )


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet (not private, loopback, link-local,
    reserved, multicast or unspecified), judging an IPv6 address that carries an IPv4
    one by the IPv4 address it leads to."""
    if isinstance(address, ipaddress.IPv6Address):
        # Python 3.11 calls site-local and NAT64 local-use addresses global.
        if address.is_site_local or address in NAT64_LOCAL_USE:
            return False
        if address.teredo is not None:
            return False  # a tunnel to an IPv4 host whose address is obfuscated
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, IPv4-compatible (`::/96`,
    which Python 3.11 calls global), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in IPV4_COMPATIBLE or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_host_name(host: str) -> bool:
    """Whether `host` is a DNS name a resolver accepts (an empty label, as in
    `a..vod2.myqcloud.com`, makes Python's resolver raise UnicodeError)."""
    name = host.removesuffix(".")
    return 0 < len(name) <= MAX_HOST_NAME_LENGTH and all(
        HOST_LABEL.fullmatch(label) for label in name.split(".")
    )


def _is_address(host: str) -> bool:
    """Whether `host` is an IP address (an IPv6 one as in a URL, without brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class VodFetcher:
    """Fetches playlists under the policy above; one per app, sessions per request."""

    def __init__(
        self,
        allowed_hosts: Iterable[str] = DEFAULT_VOD_ALLOWED_HOSTS,
        *,
        allow_private_addresses: bool = False,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_MAX_PLAYLIST_BYTES,
    ) -> None:
        self.hosts = VodHosts(allowed_hosts)
        self.allow_private_addresses = allow_private_addresses
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        # Building a TLS context reads the CA bundle: do it once, not per request.
        self.ssl_context = ssl.create_default_context()

    @asynccontextmanager
    async def session(self) -> AsyncIterator["VodSession"]:
        """A connection pool for the fetches of one request, closed at the end."""
        async with httpx.AsyncClient(
            verify=self.ssl_context,
            timeout=self.timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment may bypass the checks
            headers={"Accept": PLAYLIST_ACCEPT, "User-Agent": "replay-catalog"},
        ) as client:
            yield VodSession(self, client)


class VodSession:
    def __init__(self, fetcher: VodFetcher, client: httpx.AsyncClient) -> None:
        self.fetcher = fetcher
        self.client = client

    async def fetch(self, url: str) -> FetchedPlaylist:
        """The playlist at `url`, or VodFetchError saying in one line why not."""
        try:
            async with asyncio.timeout(self.fetcher.timeout_seconds):
                return await self._fetch(_parse_url(url))
        except TimeoutError:
            raise VodFetchError(
                f"{_host_of(url)} did not answer within {self.fetcher.timeout_seconds:g} s"
            ) from None

    async def _fetch(self, url: httpx.URL) -> FetchedPlaylist:
        for redirects in range(MAX_REDIRECTS + 1):
            response = await self._send(url)
            try:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise VodFetchError(f"{_netloc(url)} redirected without a Location")
                    if redirects == MAX_REDIRECTS:
                        raise VodFetchError(f"more than {MAX_REDIRECTS} redirects from {url.host}")
                    url = _redirect_target(url, location)
                    continue
                if response.status_code != 200:
                    raise VodFetchError(f"{_netloc(url)} answered HTTP {response.status_code}")
                body = await self._read_limited(response, url)
            finally:
                await response.aclose()
            try:
                return FetchedPlaylist(str(url), body.decode("utf-8-sig"))
            except UnicodeDecodeError:
                raise VodFetchError(f"the playlist from {_netloc(url)} is not UTF-8 text") from None
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(self, url: httpx.URL) -> httpx.Response:
        """Send a GET to the checked address of an allowed host, keeping its name for the
        Host header and TLS (SNI and certificate checks)."""
        self._check_policy(url)
        host = url.raw_host.decode("ascii")
        address = await self._checked_address(host, url.port or _default_port(url))
        request = self.client.build_request(
            "GET",
            url.copy_with(host=address),
            headers={"Host": url.netloc.decode("ascii")},
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        try:
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise VodFetchError(f"{_netloc(url)} did not answer in time") from None
        except httpx.HTTPError as failure:
            raise VodFetchError(
                f"{_netloc(url)} could not be reached ({type(failure).__name__})"
            ) from None

    def _check_policy(self, url: httpx.URL) -> None:
        if url.scheme not in WEB_SCHEMES:
            raise VodFetchRefused(f"only http and https URLs are fetched, not {url.scheme}:")
        if url.userinfo:
            raise VodFetchRefused("URLs with credentials are not fetched")
        host = url.raw_host.decode("ascii")
        if not is_host_name(host) and not _is_address(host):
            shown = host if len(host) <= 80 else f"{host[:77]}..."
            raise VodFetchRefused(f"{shown} is not a valid host name")
        if not self.fetcher.hosts.allows(host):
            raise VodFetchRefused(f"{host} is not an allowed VOD host (VOD_ALLOWED_HOSTS)")

    async def _checked_address(self, host: str, port: int) -> str:
        """The address to connect to: the first one `host` resolves to, after every
        address it resolves to has passed the private-address check."""
        try:
            answers = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):  # UnicodeError: a name the IDNA codec refuses
            raise VodFetchError(f"{host} could not be resolved") from None
        addresses = [
            ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for *_, sockaddr in answers
        ]
        if not addresses:
            raise VodFetchError(f"{host} could not be resolved")
        if not self.fetcher.allow_private_addresses:
            private = [address for address in addresses if not is_public_address(address)]
            if private:
                log.warning("refused to fetch from %s: it resolves to %s", host, private[0])
                raise VodFetchRefused(
                    f"{host} resolves to a private or loopback address "
                    "(VOD_ALLOW_PRIVATE_ADDRESSES is off)"
                )
        return str(addresses[0])

    async def _read_limited(self, response: httpx.Response, url: httpx.URL) -> bytes:
        """The (decoded) body, refused as soon as it grows past the size cap."""
        limit = self.fetcher.max_bytes
        declared = response.headers.get("content-length", "")
        too_large = f"the playlist from {_netloc(url)} is larger than {limit} bytes"
        if declared.isdigit() and int(declared) > limit:
            raise VodFetchError(too_large)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise VodFetchError(too_large)
                chunks.append(chunk)
        except httpx.HTTPError as failure:
            raise VodFetchError(
                f"reading the playlist from {_netloc(url)} failed ({type(failure).__name__})"
            ) from None
        return b"".join(chunks)


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise VodFetchRefused("the recording's URL is not a valid URL") from None
    if not parsed.raw_host:
        raise VodFetchRefused("the recording's URL has no host")
    return parsed


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return current.join(location)
    except (httpx.InvalidURL, ValueError):
        raise VodFetchError(f"{_netloc(current)} redirected to an invalid URL") from None


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _netloc(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or "the VOD host"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "the VOD host"
