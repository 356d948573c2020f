"""Answers a hostile or broken web server gives, for ``FaultyServer.httpd.special``.

Each is a function of the request handler that writes the whole answer. The
pauses in them are the server's own pace (a byte a second), not waits of a test.
"""

from __future__ import annotations

import gzip
import time


def _head(handler, status=200, headers=()):
    handler.send_response(status)
    for key, value in headers:
        handler.send_header(key, value)
    handler.end_headers()


def drip(pause: float = 0.2, total: int = 10_000):
    """A body sent a byte at a time, ``pause`` seconds apart: every socket read is quick, the whole is not."""
    def answer(handler):
        _head(handler, headers=[("Content-Type", "text/html"), ("Content-Length", str(total))])
        try:
            for _ in range(total):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:  # the client gave up: what it should do
            pass
    return answer


def endless(chunk: bytes = b"<tr><td>again</td></tr>" * 2000):
    """A page that never ends (no Content-Length, the connection closes only when the client does)."""
    def answer(handler):
        _head(handler, headers=[("Content-Type", "text/html")])
        handler.close_connection = True
        try:
            while True:
                handler.wfile.write(chunk)
        except OSError:
            pass
    return answer


def gzip_bomb(expanded: int = 200 * 1024 * 1024):
    """A small gzip body (about 200 KB) that expands to ``expanded`` bytes of zeros."""
    body = gzip.compress(b"\0" * expanded, compresslevel=9)

    def answer(handler):
        _head(handler, headers=[("Content-Type", "image/jpeg"), ("Content-Encoding", "gzip"),
                                ("Content-Length", str(len(body)))])
        try:
            handler.wfile.write(body)
        except OSError:
            pass
    answer.size = len(body)
    return answer


def cut_short(data: bytes, keep: int):
    """Says ``len(data)`` bytes, sends ``keep`` of them, and closes the connection."""
    def answer(handler):
        _head(handler, headers=[("Content-Type", "image/jpeg"), ("Content-Length", str(len(data)))])
        handler.wfile.write(data[:keep])
        handler.wfile.flush()
        handler.close_connection = True
    return answer


def bad_gzip(data: bytes):
    """Content-Encoding: gzip over bytes that are not gzip."""
    def answer(handler):
        _head(handler, headers=[("Content-Type", "image/jpeg"), ("Content-Encoding", "gzip"),
                                ("Content-Length", str(len(data)))])
        handler.wfile.write(data)
    return answer


def redirect(location: str, status: int = 302):
    def answer(handler):
        _head(handler, status, headers=[("Location", location), ("Content-Length", "0")])
    return answer


def text(body: str | bytes, status: int = 200, content_type: str = "text/plain"):
    data = body.encode() if isinstance(body, str) else body

    def answer(handler):
        _head(handler, status, headers=[("Content-Type", content_type), ("Content-Length", str(len(data)))])
        try:
            handler.wfile.write(data)
        except OSError:
            pass
    return answer


def retry_after(value: str, times: int = 1):
    """``times`` 503s with ``Retry-After: value``, then the file as usual (``None``: fall through)."""
    seen = {"n": 0}

    def answer(handler):
        seen["n"] += 1
        if seen["n"] > times:
            from http.server import SimpleHTTPRequestHandler
            SimpleHTTPRequestHandler.do_GET(handler)
            return
        _head(handler, 503, headers=[("Retry-After", value), ("Content-Length", "0")])
    return answer
