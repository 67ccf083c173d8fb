"""SSRF-safe link fetching, against real local HTTP servers that count their hits."""

import ipaddress
import socket

import pytest

from datasets.ingestion import links
from datasets.ingestion.links import (
    LinkFetchFailed, LinkFetchTransient, LinkRefused, check_url, fetch_page, is_public_address,
)


def _forms(port: int) -> list[str]:
    """Every way of writing "this machine" that must be refused."""
    return [
        f"http://127.0.0.1:{port}/page",
        f"http://localhost:{port}/page",
        f"http://LOCALHOST.:{port}/page",
        f"http://2130706433:{port}/page",  # decimal
        f"http://0x7f.1:{port}/page",  # hex + short form
        f"http://0x7f000001:{port}/page",
        f"http://017700000001:{port}/page",  # octal
        f"http://0177.0.0.1:{port}/page",
        f"http://127.1:{port}/page",
        f"http://0.0.0.0:{port}/page",  # unspecified: Linux connects it to localhost
        f"http://0:{port}/page",
        f"http://[::1]:{port}/page",
        f"http://[::ffff:127.0.0.1]:{port}/page",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:1]:{port}/page",
        f"http://[::]:{port}/page",
        f"https://127.0.0.1:{port}/page",
    ]


def test_every_form_of_loopback_is_refused_and_never_reaches_the_server(web):
    for url in _forms(web.port):
        with pytest.raises(LinkRefused, match="not a public address"):
            fetch_page(url)
        with pytest.raises(LinkRefused):
            check_url(url)
    assert web.hits == []


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1", "172.16.5.4", "192.168.1.1",  # private
        "169.254.169.254", "fe80::1",  # link-local, the cloud metadata service
        "100.64.0.1", "100.127.255.254",  # CGNAT
        "224.0.0.1", "ff02::1",  # multicast
        "240.0.0.1", "255.255.255.255",  # reserved, broadcast
        "0.0.0.0", "::",  # unspecified
        "fd00::1", "fc00::5",  # IPv6 unique local
        "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo whose client is 10.0.0.1
        "192.0.2.1", "2001:db8::1",  # documentation
    ],
)
def test_non_public_addresses(address):
    assert not is_public_address(ipaddress.ip_address(address))
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(LinkRefused):
        check_url(f"http://{literal}/")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "javascript:alert(1)", "example.com/page",
     "//example.com/x", "", "   ", "http://", "http://user:pw@example.com/", "http://example.com:99999/"],
)
def test_only_plain_http_urls(url):
    with pytest.raises(LinkRefused):
        fetch_page(url)


@pytest.fixture
def fake_dns(monkeypatch):
    """Names resolved by a table (each call recorded), everything else as before."""
    table: dict[str, list] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host in table:
            answers = table[host]
            current = answers.pop(0) if len(answers) > 1 else answers[0]
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in current
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table, calls


@pytest.fixture
def loopback_counts_as_public(monkeypatch):
    """The test server on 127.0.0.1 plays "a public web server"; every other address is judged
    by the real rule."""
    real = links.is_public_address
    monkeypatch.setattr(links, "is_public_address", lambda ip: str(ip) == "127.0.0.1" or real(ip))


def test_a_name_resolving_to_a_private_address_is_refused(web, fake_dns):
    table, _ = fake_dns
    table["intranet.example.com"] = [["10.1.2.3"]]
    table["sneaky.example.com"] = [["127.0.0.1"]]
    for name in ("intranet.example.com", "sneaky.example.com"):
        with pytest.raises(LinkRefused, match=f"{name} resolves to"):
            fetch_page(f"http://{name}:{web.port}/page")
    assert web.hits == []


def test_every_resolved_address_is_checked(web, fake_dns, loopback_counts_as_public):
    table, _ = fake_dns
    table["mixed.example.com"] = [["127.0.0.1", "169.254.169.254"]]
    with pytest.raises(LinkRefused, match="169.254.169.254"):
        fetch_page(f"http://mixed.example.com:{web.port}/page")
    assert web.hits == []


def test_connection_goes_to_the_checked_address_no_dns_rebinding(web, fake_dns, loopback_counts_as_public):
    table, calls = fake_dns
    # First answer: the (checked) address; any later lookup would get an internal one.
    table["rebind.example.com"] = [["127.0.0.1"], ["10.255.255.1"]]
    page = fetch_page(f"http://rebind.example.com:{web.port}/page")
    assert page.content.startswith(b"<html>") and page.content_type.startswith("text/html")
    assert page.url == f"http://rebind.example.com:{web.port}/page"
    assert calls.count("rebind.example.com") == 1  # resolved once
    assert web.hits == [("/page", f"rebind.example.com:{web.port}")]  # Host header keeps the name


def test_redirect_to_a_private_address_is_refused(web, second_web, fake_dns, loopback_counts_as_public):
    table, _ = fake_dns
    table["inside.example.com"] = [["127.0.0.2"]]
    targets = [
        second_web.url("/page"),  # 127.0.0.2
        f"http://2130706434:{second_web.port}/page",  # 127.0.0.2 in decimal
        f"http://inside.example.com:{second_web.port}/page",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ]
    for target in targets:
        with pytest.raises(LinkRefused):
            fetch_page(web.url(f"/redirect?to={target}"))
    assert len(web.hits) == len(targets)  # the public first hop was fetched…
    assert second_web.hits == []  # …the internal target never


def test_redirects_are_followed_and_limited(web):
    page = fetch_page(web.url("/redirect?to=/page"), allow_private=True)
    assert page.url == web.url("/page") and b"Public page" in page.content
    with pytest.raises(LinkFetchFailed, match="more than 5 redirects"):
        fetch_page(web.url("/loop"), allow_private=True)
    assert [p for p, _ in web.hits].count("/loop") == 6  # the first request + 5 redirects


def test_size_limit_with_and_without_content_length(web):
    with pytest.raises(LinkFetchFailed, match="larger than"):
        fetch_page(web.url("/big?n=2000000"), allow_private=True, max_bytes=1_000_000)
    with pytest.raises(LinkFetchFailed, match="larger than"):
        fetch_page(web.url("/stream?n=5000000"), allow_private=True, max_bytes=1_000_000)
    assert len(fetch_page(web.url("/big?n=1000"), allow_private=True, max_bytes=1000).content) == 1000


def test_time_limit(web):
    with pytest.raises(LinkFetchFailed, match="too long"):
        fetch_page(web.url("/slow"), allow_private=True, timeout=0.3)


def test_bad_status_and_unreachable(web):
    with pytest.raises(LinkFetchFailed, match="HTTP 404"):
        fetch_page(web.url("/missing"), allow_private=True)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(LinkFetchFailed, match="could not connect"):
        fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    with pytest.raises(LinkFetchFailed, match="cannot resolve"):
        fetch_page("http://no-such-host.invalid/", allow_private=True)


def test_allow_private_fetches_the_local_server(web):
    page = fetch_page(web.url("/page"), allow_private=True)
    assert page.content == b"<html><body><nav>menu</nav><h1>Hello</h1><p>Public page.</p></body></html>"
    assert page.content_type == "text/html; charset=utf-8"
    assert web.hits == [("/page", f"127.0.0.1:{web.port}")]


@pytest.fixture
def https_web(monkeypatch):
    """An HTTPS server on 127.0.0.1 with a certificate for secure.example.com only, signed by a
    throwaway CA that the fetcher is told to trust."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("secure.example.com")
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append((self.path, self.headers.get("Host"), self.connection.server_hostname))
            body = b"<p>over TLS</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    seen_sni = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    monkeypatch.setattr(links, "TLS_VERIFY", client_ctx)
    yield httpd.server_address[1], hits, seen_sni
    httpd.shutdown()
    httpd.server_close()


def test_https_pinned_address_keeps_sni_and_certificate_check(https_web, fake_dns):
    port, hits, seen_sni = https_web
    table, calls = fake_dns
    table["secure.example.com"] = [["127.0.0.1"], ["10.255.255.1"]]
    table["other.example.com"] = [["127.0.0.1"]]
    page = fetch_page(f"https://secure.example.com:{port}/doc", allow_private=True)
    assert page.content == b"<p>over TLS</p>"
    assert seen_sni == ["secure.example.com"]  # SNI names the host, not the pinned IP
    assert hits[0][:2] == ("/doc", f"secure.example.com:{port}")
    assert calls.count("secure.example.com") == 1
    # The certificate is still checked against the name: same address, wrong name → refused.
    with pytest.raises(LinkFetchFailed):
        fetch_page(f"https://other.example.com:{port}/doc", allow_private=True)
    assert len(hits) == 1


# --- which failures are worth retrying (the reading task retries LinkFetchTransient) -------


@pytest.mark.parametrize("code", [500, 502, 503, 504, 429, 408])
def test_server_errors_and_too_many_requests_are_transient(web, code):
    with pytest.raises(LinkFetchTransient, match=f"HTTP {code}"):
        fetch_page(web.url(f"/status?code={code}"), allow_private=True)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 451])
def test_other_client_errors_are_final(web, code):
    with pytest.raises(LinkFetchFailed, match=f"HTTP {code}") as raised:
        fetch_page(web.url(f"/status?code={code}"), allow_private=True)
    assert not isinstance(raised.value, LinkFetchTransient)


def test_timeouts_and_unreachable_servers_are_transient_limits_are_final(web):
    with pytest.raises(LinkFetchTransient, match="too long"):
        fetch_page(web.url("/slow"), allow_private=True, timeout=0.3)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(LinkFetchTransient, match="could not connect"):
        fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    for url, kwargs in ((web.url("/big?n=2000"), {"max_bytes": 1000}), (web.url("/loop"), {})):
        with pytest.raises(LinkFetchFailed) as raised:
            fetch_page(url, allow_private=True, **kwargs)
        assert not isinstance(raised.value, LinkFetchTransient)
