"""A tiny impawards-like site, generated on disk, and a real HTTP server for it.

The site has loose markup (unquoted attributes with spaces around ``=``,
upper-case tags, every poster linked twice, navigation links) and every bad
file a scraper meets. ``FaultyServer`` serves it on loopback with optional
503s (first request of chosen paths) and 429s (chosen paths, N times).
"""

from __future__ import annotations

import collections
import functools
import io
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, ImageDraw

GOOD = {
    # name: (title, pillow mode)
    "apollo_13": ("Apollo 13", "RGB"),
    "balto": ("Balto", "RGB"),
    "balto_ver2": ("Balto", "RGB"),
    "casino": ("Casino & <b>Co</b>", "L"),
    "old_palette": ("Old Palette", "P"),
    "four_colours": ("Four Colours", "CMYK"),
    "see_through": ("See Through", "RGBA"),
    "moved_poster": ("Moved Poster", "RGB"),  # image not at the derived address
}
BAD = {
    "lost_reel": "404",
    "error_page": "html-not-image",
    "torn_film": "truncated-jpeg",
    "empty_can": "empty-file",
    "giant_canvas": "decompression-bomb",
}


def poster_bytes(seed: int, mode: str = "RGB", size=(120, 180), fmt: str | None = None) -> bytes:
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10 + seed % 40, size[0] - 10, size[1] // 2], fill=(255 - seed % 256, 40, 90))
    draw.ellipse([20, size[1] // 2, size[0] - 20, size[1] - 10], fill=(30, 200 - seed % 100, 60 + seed % 150))
    out = io.BytesIO()
    if mode == "P":
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(out, format="GIF")
    elif mode == "RGBA":
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.new("L", size, 128))
        rgba.save(out, format="PNG")
    else:
        image.convert(mode).save(out, format=fmt or "JPEG", quality=90)
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def _bomb_bytes() -> bytes:
    # A real PNG whose header says more pixels than Pillow's limit allows.
    out = io.BytesIO()
    Image.new("1", (12000, 16000)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Site:
    root: Path
    years: list[int]
    good: dict = field(default_factory=dict)    # poster_id -> bytes served
    titles: dict = field(default_factory=dict)  # poster_id -> title
    bad: dict = field(default_factory=dict)     # poster_id -> why


def make_site(root: Path, years=(1995, 1996), missing_years=()) -> Site:
    site = Site(root, list(years))
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<html><body>archive</body></html>")
    (root / "outside.html").write_text("<html><body>outside</body></html>")
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    (root / "tmp" / "escape_artist.html").write_text('<img src="../outside.jpg">')
    (root / "outside.jpg").write_bytes(poster_bytes(999))
    bomb = _bomb_bytes()
    for year_index, year in enumerate(years):
        folder = root / str(year)
        (folder / "posters").mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (name, (title, mode)) in enumerate(GOOD.items()):
            pid = f"{year}/{name}"
            data = poster_bytes(year_index * 100 + i, mode)
            site.good[pid], site.titles[pid] = data, title
            image_name = f"{name}.jpg" if name != "moved_poster" else "elsewhere_moved.jpg"
            (folder / "posters" / image_name).write_bytes(data)
            (folder / f"{name}.html").write_text(
                f'<HTML><BODY><H3>{title}</H3>\n<A HREF = posters/{image_name}>'
                f'<IMG SRC = "posters/{image_name}" ALT = "{title} Movie Poster"></A>\n'
                + (f'<p>other sizes: <a href = {name}_xlg.html>big</a></p>' if name == "apollo_13" else "")
                + "</BODY></HTML>")
            if name == "apollo_13":
                (folder / "posters" / f"{name}_xlg.jpg").write_bytes(poster_bytes(500 + i, size=(300, 450)))
                (folder / f"{name}_xlg.html").write_text(f'<img src="posters/{name}_xlg.jpg">')
        for name, why in BAD.items():
            name = f"{name}_{year}"
            pid = f"{year}/{name}"
            site.bad[pid] = why
            site.titles[pid] = name.replace("_", " ").title()
            target = folder / "posters" / f"{name}.jpg"
            if why == "html-not-image":
                target.write_text("<!DOCTYPE html><html><body>Not found</body></html>")
            elif why == "truncated-jpeg":
                target.write_bytes(poster_bytes(7)[:400])
            elif why == "empty-file":
                target.write_bytes(b"")
            elif why == "decompression-bomb":
                target.write_bytes(bomb)
            (folder / f"{name}.html").write_text(f'<img src="posters/{name}.jpg">')
        # The index: loose markup, each poster twice (text + thumbnail), navigation links.
        rows.append('<A NAME="top"></A><DIV class=nav><a href="../index.html">Home</a> '
                    '<a href=alpha1.html>A-Z</a> <a href = std.html>All</a> '
                    '<a href="http://www.imdb.com/">IMDb</a> <a href="#top">top</a> '
                    '<a href="mailto:x@example.org">mail</a></DIV><TABLE>')
        for name, (title, _) in GOOD.items():
            if name.endswith("_ver2"):
                continue
            escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            extra = f' <a href = {name}_ver2.html>v2</a>' if f"{name}_ver2" in GOOD else ""
            rows.append(f'<TR><TD>{escaped}</TD><TD><A HREF = {name}.html>poster</A>{extra} '
                        f'<a href="{name}.html"><img src=thumbs/{name}.jpg></a></TD></TR>')
        for name in BAD:
            title = f"{name}_{year}".replace("_", " ").title()
            rows.append(f'<tr><td>{title}</td><td><a href="{name}_{year}.html">poster</a></td></tr>')
        rows.append('<tr><td>Escape Artist</td><td><a href="../../../../tmp/escape_artist.html">poster</a>'
                    ' <a href="%2e%2e/%2e%2e/outside.html">poster</a></td></tr></TABLE>')
        if year not in missing_years:
            (folder / "std.html").write_text("<html><body>" + "\n".join(rows) + "</body></html>")
    return site


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        with server.lock:
            server.counts[self.path] += 1
            server.log.append(self.path)
            server.times.append((time.monotonic(), self.path))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            count = server.counts[self.path]
        try:
            if server.latency:
                time.sleep(server.latency)
        finally:
            # Counted out before any byte of the answer is sent: a client that has the whole answer
            # (and may start its next request) is never still counted in flight.
            with server.lock:
                server.in_flight -= 1
        if self.path in server.special:
            server.special[self.path](self)
            return
        if self.path in server.broken:
            self.send_error(server.broken[self.path], "broken")
            return
        if self.path in server.flaky and count == 1:
            self.send_error(server.flaky_code, "busy")
            return
        if server.limited.get(self.path, 0) >= count:
            with server.lock:
                server.limited_at.append(time.monotonic())
            self.send_response(429)
            self.send_header("Retry-After", server.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/robots.txt" and server.robots is not None:
            body = server.robots.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def guess_type(self, path):
        if str(path).endswith(".jpg"):
            return "image/jpeg"  # whatever the file holds, like a misconfigured server
        return super().guess_type(path)


class FaultyServer:
    """A static server over ``root`` with faults a test sets on ``httpd``.

    ``flaky``: paths whose first request gets ``flaky_code``; ``limited``: path ->
    how many first requests get a 429 with ``Retry-After: retry_after``;
    ``broken``: path -> a status always answered; ``robots``: the text of
    /robots.txt (None: 404); ``special``: path -> a function of the request
    handler that answers it (see ``hostile.py`` for the answers a hostile site gives). ``times`` holds (monotonic time, path) of each
    request's arrival and ``limited_at`` when each 429 was sent.
    """

    def __init__(self, root: Path, latency: float = 0.0):
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.lock = threading.Lock()
        self.httpd.counts = collections.Counter()
        self.httpd.log = []
        self.httpd.in_flight = self.httpd.max_in_flight = 0
        self.httpd.latency = latency
        self.httpd.flaky = set()
        self.httpd.flaky_code = 503
        self.httpd.limited = {}
        self.httpd.retry_after = "0"
        self.httpd.limited_at = []
        self.httpd.broken = {}
        self.httpd.robots = None
        self.httpd.special = {}
        self.httpd.times = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    @property
    def counts(self):
        return self.httpd.counts

    @property
    def log(self):
        return self.httpd.log

    def reset(self):
        with self.httpd.lock:
            self.httpd.counts.clear()
            self.httpd.log.clear()
            self.httpd.times.clear()

    def image_requests(self):
        return [p for p in self.httpd.log if p.endswith(".jpg")]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
