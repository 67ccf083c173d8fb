"""Fetching a web page for a link collection without opening an SSRF hole.

* http(s) only, no credentials in the URL;
* the host is resolved ONCE per hop (numeric forms such as `2130706433`, `0x7f.1` or
  `017700000001` are read the way `inet_aton` reads them, as the resolver would) and every
  address it resolves to must be public: loopback, private, link-local (169.254.169.254, the
  cloud metadata service), CGNAT 100.64/10, multicast, reserved, unspecified, IPv6 ULA and
  documentation ranges are refused, and so are IPv6 addresses that embed an IPv4 one
  (IPv4-mapped, 6to4, Teredo, NAT64) when the embedded address is not public;
* the TCP connection goes to the address that was checked (the URL is rewritten to the IP; the
  Host header and TLS SNI/certificate check keep the name), so DNS cannot answer differently
  between the check and the connection (DNS rebinding);
* redirects are followed by hand, at most 5, each target checked the same way;
* a failure that waiting may cure (5xx, 429, 408, a timeout, no connection, DNS "try again")
  is a LinkFetchTransient, which the reading task retries with backoff; any other is final;
* the body is streamed and the fetch stops past `max_bytes` (decoded) and past the total
  `timeout`; proxies from the environment are ignored (they would bypass the checks).

`allow_private=True` (the LINK_FETCH_ALLOW_PRIVATE setting, for intranet deployments) skips
the address check only.
"""

import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 20.0
TLS_VERIFY: bool | ssl.SSLContext = True  # certificates checked against the system CAs (tests swap in their CA)
USER_AGENT = "Mozilla/5.0 (compatible; fastgpt-django link reader)"

_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class LinkRefused(Exception):
    """Not http(s), or the host resolves to a non-public address (the API answers 400)."""


class LinkFetchFailed(Exception):
    """Network error, too large, too slow, or a bad status (the collection goes to error)."""


class LinkFetchTransient(LinkFetchFailed):
    """A failure worth trying again later: the server answered 5xx, 429 or 408, took too long,
    could not be reached, or DNS failed for now. Other failures (4xx, too large, too many
    redirects) will not change by waiting."""


# Statuses that say "not now" rather than "no": server errors, too many requests, timeout.
TRANSIENT_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


@dataclass
class FetchedPage:
    url: str  # final URL after redirects
    content_type: str
    content: bytes


def fetch_page(
    url: str, *, allow_private: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT
) -> FetchedPage:
    """GET `url` safely (see the module docstring); raises LinkRefused or LinkFetchFailed."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        target = _Target.parse(url)
        addresses = target.resolve(allow_private=allow_private)
        # A client per hop: a pooled TLS connection opened for one name (SNI, certificate) must
        # never carry a request for another name that resolved to the same address.
        with httpx.Client(trust_env=False, follow_redirects=False, verify=TLS_VERIFY) as client:
            response_or_redirect = _get(client, target, addresses, deadline=deadline, max_bytes=max_bytes)
        if isinstance(response_or_redirect, FetchedPage):
            return response_or_redirect
        url = urljoin(url, response_or_redirect)
    raise LinkFetchFailed(f"more than {MAX_REDIRECTS} redirects")


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Validate a link before accepting it (scheme, host, every address); raises LinkRefused.
    The API can call it to answer 400 at once; fetch_page checks again at fetch time."""
    _Target.parse(url).resolve(allow_private=allow_private)


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address (embedded IPv4 addresses checked too)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour]
        if ip.teredo:
            embedded += list(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return is_public_address(ip.ipv4_mapped)
        if any(e is not None and not is_public_address(e) for e in embedded):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback)


@dataclass
class _Target:
    scheme: str
    host: str  # as in the URL, lowercased, IPv6 without brackets
    port: int
    path: str  # path + query, never empty
    url: str

    @classmethod
    def parse(cls, url: str) -> "_Target":
        if not isinstance(url, str) or not url.strip():
            raise LinkRefused("the link is empty")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise LinkRefused(f"the link is not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise LinkRefused(f"only http and https links can be read, not {scheme or 'a link without a scheme'}")
        if parts.username is not None or parts.password is not None:
            raise LinkRefused("links with credentials (user:password@) are not accepted")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise LinkRefused("the link has no host")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(scheme, host, port or (443 if scheme == "https" else 80), path, url.strip())

    def resolve(self, *, allow_private: bool) -> list[str]:
        """Every address of the host, each checked; the connection will use these, not DNS again."""
        literal = _literal_address(self.host)
        if literal is not None:
            ips = [literal]
        else:
            try:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                failure = LinkFetchTransient if exc.errno == socket.EAI_AGAIN else LinkFetchFailed
                raise failure(f"cannot resolve {self.host}: {exc}") from exc
            except (UnicodeError, OSError) as exc:
                raise LinkFetchFailed(f"cannot resolve {self.host}: {exc}") from exc
            ips = []
            for info in infos:
                ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
                if ip not in ips:
                    ips.append(ip)
            if not ips:
                raise LinkFetchFailed(f"cannot resolve {self.host}")
        if not allow_private:
            for ip in ips:
                if not is_public_address(ip):
                    what = f"{self.host} resolves to {ip}, which" if literal is None or str(literal) != self.host else str(ip)
                    raise LinkRefused(f"{what} is not a public address; links to internal networks are refused")
        return [str(ip) for ip in ips]


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a numeric host stands for, read as inet_aton reads it (so `2130706433`,
    `0x7f.1` and `0177.0.0.1` are all 127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _get(client: httpx.Client, target: _Target, addresses: list[str], *, deadline: float, max_bytes: int):
    """One hop to a checked address: a FetchedPage, or the Location of a redirect."""
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != (443 if target.scheme == "https" else 80):
        host_header += f":{target.port}"
    last_error: Exception | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LinkFetchTransient("the page took too long to answer")
        netloc = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
        pinned = urlunsplit((target.scheme, netloc, target.path, "", ""))
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.5"},
            # TLS: SNI and the certificate check use the name, while TCP goes to the address.
            extensions={"sni_hostname": target.host, "timeout": httpx.Timeout(remaining).as_dict()},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
            continue  # the next checked address of the same host
        except httpx.TimeoutException as exc:
            raise LinkFetchTransient("the page took too long to answer") from exc
        except httpx.HTTPError as exc:
            raise LinkFetchTransient(f"could not fetch {target.url}: {exc}") from exc
        try:
            return _read(response, target, deadline=deadline, max_bytes=max_bytes)
        finally:
            response.close()
    raise LinkFetchTransient(f"could not connect to {target.host}: {last_error}")


def _read(response: httpx.Response, target: _Target, *, deadline: float, max_bytes: int):
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers.get("location")
        if not location:
            raise LinkFetchFailed(f"HTTP {response.status_code} redirect without a Location")
        return location
    if response.status_code in TRANSIENT_STATUSES:
        raise LinkFetchTransient(f"the page answered HTTP {response.status_code}")
    if response.status_code >= 400 or response.status_code < 200:
        raise LinkFetchFailed(f"the page answered HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise LinkFetchFailed(f"the page is larger than the {max_bytes:,}-byte limit")
    body = bytearray()
    try:
        for piece in response.iter_bytes():
            body += piece
            if len(body) > max_bytes:
                raise LinkFetchFailed(f"the page is larger than the {max_bytes:,}-byte limit")
            if time.monotonic() > deadline:
                raise LinkFetchTransient("the page took too long to download")
    except httpx.TimeoutException as exc:
        raise LinkFetchTransient("the page took too long to download") from exc
    except httpx.HTTPError as exc:
        raise LinkFetchTransient(f"the download of {target.url} failed: {exc}") from exc
    return FetchedPage(url=target.url, content_type=response.headers.get("content-type", ""), content=bytes(body))
