"""Debian's Chromium driven by Playwright, and a real HTTP server for a web folder."""

from __future__ import annotations

import functools
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from posters_cnn.mapping.stage import PAGE_FILES, VENDOR_FILES  # noqa: E402  (the page's files, as stage 3 copies them)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def copy_page(web_dir: Path) -> None:
    """Put the page's own files (and the d3 and Arrow that `make` placed) into ``web_dir``."""
    missing = [name for name in VENDOR_FILES if not (ROOT / "web" / "vendor" / name).exists()]
    if missing:
        raise RuntimeError(f"web/vendor/{missing[0]} is missing: run `make test` (or `make setup`) first")
    web_dir.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copy(ROOT / "web" / name, web_dir / name)
    (web_dir / "vendor").mkdir(exist_ok=True)
    for name in VENDOR_FILES:
        shutil.copy(ROOT / "web" / "vendor" / name, web_dir / "vendor" / name)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser that closed the page: not news
            super().handle_error(request, client_address)


class _Held(_Quiet):
    """Answers a request whose path ends with one of the server's ``held`` suffixes only once ``release`` is set."""

    def do_GET(self):
        server = self.server
        if any(self.path.split("?")[0].endswith(suffix) for suffix in server.held):
            server.release.wait(60)
        super().do_GET()


class StaticServer:
    """A folder over HTTP on loopback; requests for files ending in ``held`` wait for ``release.set()``."""

    def __init__(self, folder: Path, held: tuple[str, ...] = ()):
        self.httpd = _Server(("127.0.0.1", 0), functools.partial(_Held, directory=str(folder)))
        self.httpd.held = held
        self.httpd.release = self.release = threading.Event()
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_text(page, selector: str, text: str, *, start: bool = False, timeout: float = 10_000) -> None:
    """Wait until ``selector``'s text is ``text`` (or starts with it): a title is filled in once its tile's
    titles file is read. An AssertionError says what it showed instead."""
    from playwright.sync_api import TimeoutError as Timeout

    test = "t.startsWith(want)" if start else "t === want"
    try:
        page.wait_for_function(
            f"([s, want]) => {{ const t = document.querySelector(s)?.textContent ?? ''; return {test}; }}",
            arg=[selector, text], timeout=timeout)
    except Timeout:
        raise AssertionError(f"{selector} shows {page.text_content(selector)!r}, not {text!r}") from None


class PageWatch:
    """Collects console errors, page errors and failed requests of a Playwright page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.responses: list = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: self.responses.append(r) if r.status >= 400 else None)

    def assert_clean(self):
        assert not self.errors, self.errors
        assert not self.failed, self.failed
        assert not self.responses, [f"{r.status} {r.url}" for r in self.responses]
