"""A local HTTP server that counts its hits: link fetching tests prove refused links never reach it."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class CountingServer:
    """Routes: /page (html), /big?n= (n bytes, with Content-Length), /stream?n= (n bytes, no
    length), /redirect?to= (302), /loop (302 to itself), /missing (404), /slow (sleeps 3 s),
    /status?code= (that status, a short text body)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.hits: list[tuple[str, str]] = []  # (path, Host header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server.hits.append((self.path, self.headers.get("Host", "")))
                path, _, query = self.path.partition("?")
                args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                if path == "/page":
                    body = b"<html><body><nav>menu</nav><h1>Hello</h1><p>Public page.</p></body></html>"
                    self._send(200, body, "text/html; charset=utf-8")
                elif path == "/big":
                    self._send(200, b"a" * int(args["n"]), "text/plain")
                elif path == "/stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    left = int(args["n"])
                    try:
                        while left > 0:
                            self.wfile.write(b"b" * min(left, 65536))
                            left -= 65536
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                elif path == "/redirect":
                    from urllib.parse import unquote

                    self.send_response(302)
                    self.send_header("Location", unquote(args["to"]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/status":
                    self._send(int(args["code"]), b"status as asked", "text/plain")
                elif path == "/slow":
                    time.sleep(3)
                    self._send(200, b"late", "text/plain")
                else:
                    self._send(404, b"not here", "text/plain")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (time limit)
                    pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/page") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web():
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture
def second_web():
    """Another server on another loopback address (127.0.0.2): an "internal" redirect target."""
    server = CountingServer("127.0.0.2")
    yield server
    server.close()
