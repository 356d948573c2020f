"""All HTTP goes through here: one session, a retry policy, a rate limit, robots.txt.

``PoliteClient.get`` retries connection errors, timeouts, 408, 429 and every
5xx (a CDN in front of a slow origin answers 520-524) with exponential
backoff and jitter, honours ``Retry-After`` (and makes every thread wait, not
only the one that was told), and never retries a 404 or any other 4xx.
``--jobs`` bounds the requests in flight because the caller runs at most that
many workers; the connection pool is sized to match so that keep-alive
connections are reused.

Every request is bounded, whatever the server does:

* in time: ``timeout`` is a deadline for the whole request, headers and body,
  not only for each read (a page sent a byte a second ends at the deadline);
* in size: a body is read in chunks, after decompression, and refused past
  ``max_bytes`` (an endless page or a gzip bomb ends there, not in MemoryError);
* in redirects: at most ``MAX_REDIRECTS``, over http(s) only, each target
  checked against its own host's robots.txt before it is requested.

robots.txt (RFC 9309) is read once per host, before the first request to it,
and matched with Protego (Scrapy's parser): ``*`` and ``$`` in paths, the
longest matching rule wins, a group naming our product token before ``*``.
At most ``ROBOTS_MAX_BYTES`` of it are read (RFC 9309 allows a crawler to stop
at 500 KiB); a UTF-8 byte-order mark is ignored. A path it disallows is never
requested (``FetchError`` with ``kind="robots"``), and its ``Crawl-delay``
becomes the least interval between requests unless the rate cap is stricter.
A Crawl-delay over ``MAX_CRAWL_DELAY_S`` (or not a number) cannot be honoured
by a run that ends: the host counts as disallowed, with a message that says
so. A missing robots.txt (any 4xx) allows everything; one that cannot be read
(5xx or timeouts after every retry) disallows everything on that host for this
run, as RFC 9309 asks.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import logging
import math
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from protego import Protego
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .. import USER_AGENT

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 120.0
MAX_CRAWL_DELAY_S = 60.0  # a site asking for more would take days per thousand posters
MAX_BYTES = 64 * 1024 * 1024  # the largest body read: posters are a few MB, xlg ones rarely 20
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 2.5: a crawler may stop parsing at 500 KiB
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


def is_transient(status: int) -> bool:
    """Worth asking again: 408 (request timeout), 429 (too many requests) and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599


class FetchError(Exception):
    """A request that failed for good. ``status`` is the HTTP status or None.

    ``kind`` is the short reason stage 1 records: ``transient`` (worth trying
    again on a later run), ``http-NNN``, ``too-large``, ``redirect`` or
    ``robots`` (robots.txt disallows it).
    """

    def __init__(self, url: str, message: str, status: int | None = None, transient: bool = False,
                 kind: str | None = None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.transient = transient
        self.kind = kind or ("transient" if transient else f"http-{status}")


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    bytes: int = 0


@dataclass
class Page:
    """A 2xx answer, its body read whole (and bounded): what ``PoliteClient.get`` returns."""

    url: str  # after redirects
    status: int
    content: bytes
    headers: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace").lstrip("\ufeff")


class RateLimiter:
    """Spaces request starts at least ``1/rate`` seconds apart, across threads.

    ``pause_until`` is how a 429's ``Retry-After`` slows every thread down.
    """

    def __init__(self, rate: float = 0.0, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def pause_until(self, when: float) -> None:
        with self._lock:
            self._next = max(self._next, when)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), at most
    ``MAX_RETRY_AFTER_S``; None when it says nothing usable (``nan``, ``inf``, garbage)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def product_token(user_agent: str) -> str:
    """``movie-posters-convnet/1.0 (+url)`` -> ``movie-posters-convnet``: what robots.txt groups name."""
    return user_agent.split("/")[0].split()[0].lower()


class _Robots:
    """The robots.txt rules of one host: parsed rules, allow-all, or refused (disallow-all, with why)."""

    def __init__(self, url: str, parser: Protego | None, unreachable: str = "", refused: str = ""):
        self.url, self.parser, self.unreachable, self.refused = url, parser, unreachable, refused

    def check(self, url: str, user_agent: str) -> None:
        if self.unreachable:
            raise FetchError(url, f"not requested: {self.url} could not be read ({self.unreachable}), so every "
                                  f"path of the host counts as disallowed for this run", transient=True)
        if self.refused:
            raise FetchError(url, f"not requested: {self.refused}", kind="robots")
        if self.parser is not None and not self.parser.can_fetch(url, product_token(user_agent)):
            raise FetchError(url, f"disallowed by {self.url}: {url}", kind="robots")


# -- the deadline of a request ----------------------------------------------------------------------
# requests' timeout bounds each socket read; a server that sends a byte a second never trips it. Each
# request therefore has a deadline, and one watchdog thread shuts down the socket of the connection
# carrying a request whose deadline passes (the pool's connection classes below say which one that is).
_current = threading.local()


class _Deadline:
    """The deadline of one request; ``with deadline:`` around it (see ``_WATCHDOG``)."""

    def __init__(self, seconds: float):
        self.when = time.monotonic() + seconds
        self.connection = None
        self.sock = None
        self.expired = False
        self.finished = False

    def expire(self) -> None:
        self.expired = True
        # The connection forgets its socket once an HTTP/1.0 answer starts (the answer keeps reading it).
        sock = self.sock or getattr(self.connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "_Deadline":
        _current.deadline = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc) -> None:
        self.finished = True
        _current.deadline = None


class _Watchdog:
    """One thread for every deadline of the process: it sleeps until the nearest one and expires the
    requests still running then. (A timer thread per request cost 150 us a request.)"""

    def __init__(self):
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._count = 0
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            self._count += 1
            heapq.heappush(self._heap, (deadline.when, self._count, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                when, _, deadline = self._heap[0]
                if deadline.finished:
                    heapq.heappop(self._heap)
                    continue
                wait = when - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if deadline.finished:
                    continue
            deadline.expire()


_WATCHDOG = _Watchdog()


class _WatchedMixin:
    def request(self, *args, **kwargs):
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = self
        super().request(*args, **kwargs)
        if deadline is not None:
            deadline.sock = self.sock


class _HTTPConnection(_WatchedMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _read_body(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """The body, decompressed, in chunks; (first ``limit`` bytes, True) when there is more."""
    chunks, total = [], 0
    for chunk in response.iter_content(CHUNK):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


class PoliteClient:
    def __init__(self, *, jobs: int = 4, timeout: float = 30.0, retries: int = 4, rate: float = 0.0,
                 backoff: float = 0.5, user_agent: str = USER_AGENT, robots: bool = True,
                 max_bytes: int = MAX_BYTES):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.rate = rate
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.limiter = RateLimiter(rate)
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self.robots = robots
        self._robots: dict[str, _Robots] = {}
        self._robots_lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        adapter = _Adapter(pool_connections=4, pool_maxsize=max(jobs, 4), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def _count(self, **delta) -> None:
        with self._stats_lock:
            for key, value in delta.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)

    def _backoff_delay(self, attempt: int) -> float:
        return self.backoff * (2 ** attempt) * (0.5 + random.random())

    def robots_for(self, url: str, *, first_contact: bool = False) -> _Robots:
        """The robots.txt rules of ``url``'s host, read on first use (other threads wait for it).

        With ``first_contact``, a host that cannot be reached at all (no HTTP
        answer) raises FetchError with ``status`` None instead, and nothing is
        remembered: the caller says the site cannot be reached.
        """
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            known = self._robots.get(origin)
            if known is not None:
                return known
            robots_url = f"{origin}/robots.txt"
            try:
                page = self._fetch(robots_url, max_bytes=ROBOTS_MAX_BYTES, truncate=True, check_robots=False)
            except FetchError as exc:
                if exc.status is None and first_contact and exc.kind == "transient":
                    raise
                if exc.status is not None and 400 <= exc.status < 500 and not is_transient(exc.status):
                    rules = _Robots(robots_url, None)  # no robots.txt: everything is allowed
                else:
                    log.warning("%s could not be read (%s): nothing on %s is requested in this run",
                                robots_url, exc, origin)
                    rules = _Robots(robots_url, None, unreachable=str(exc))
            else:
                rules = self._rules(robots_url, page.text)
            self._robots[origin] = rules
            return rules

    def _rules(self, robots_url: str, text: str) -> _Robots:
        parser = Protego.parse(text)
        delay = parser.crawl_delay(product_token(self.user_agent))
        if delay is None:
            # Protego skips values it cannot use; a site that asks for "inf" still asks for a pause.
            asked = [line.split(":", 1)[1].strip() for line in text.splitlines()
                     if line.split("#", 1)[0].strip().lower().startswith("crawl-delay:")]
            if any(value.lower() in ("inf", "infinity", "+inf") for value in asked):
                delay = math.inf
        if delay is not None and not delay <= MAX_CRAWL_DELAY_S:
            message = (f"{robots_url} asks for {delay:g} s between requests (Crawl-delay), more than the "
                       f"{MAX_CRAWL_DELAY_S:g} s a run can honour: nothing on that host is requested")
            log.info("%s", message)  # each refused request says it again, where it is recorded
            return _Robots(robots_url, parser, refused=message)
        if delay:
            if delay > self.limiter.interval:
                log.info("%s asks for %.2gs between requests (Crawl-delay); honoured", robots_url, delay)
                self.limiter.interval = delay
            else:
                log.info("%s asks for %.2gs between requests; --rate %g is stricter", robots_url,
                         delay, self.rate)
        return _Robots(robots_url, parser)

    def get(self, url: str) -> Page:
        """GET ``url`` and return its 2xx answer with the body read, or raise FetchError.

        Redirects are followed (at most ``MAX_REDIRECTS``); every address asked
        for, the first and each redirect's, is checked against its host's
        robots.txt first, and one it disallows is not requested (FetchError
        with ``kind="robots"``).
        """
        return self._fetch(url, max_bytes=self.max_bytes)

    def _fetch(self, url: str, *, max_bytes: int, truncate: bool = False, check_robots: bool = True) -> Page:
        for _ in range(MAX_REDIRECTS + 1):
            if check_robots and self.robots:
                self.robots_for(url).check(url, self.user_agent)
            answer = self._get(url, max_bytes=max_bytes, truncate=truncate)
            if isinstance(answer, Page):
                return answer
            url = answer
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects, the last to {url}", kind="redirect")

    def _exchange(self, url: str, max_bytes: int, truncate: bool):
        """One request: a Page, a redirect's target (str), or a FetchError to raise or retry."""
        response = self.session.get(url, timeout=self.timeout, stream=True, allow_redirects=False)
        try:
            status = response.status_code
            if 200 <= status < 300:
                body, more = _read_body(response, max_bytes)
                if more and not truncate:
                    return FetchError(url, f"more than {max_bytes // (1024 * 1024)} MB: {url}", status=status,
                                      kind="too-large")
                self._count(bytes=len(body))
                return Page(response.url or url, status, body, dict(response.headers))
            if status in _REDIRECTS and response.headers.get("Location"):
                target = urljoin(url, response.headers["Location"].strip())
                if urlsplit(target).scheme not in ("http", "https"):
                    return FetchError(url, f"redirected to {target!r}, not a web address", kind="redirect")
                return target
            error = FetchError(url, f"HTTP {status} for {url}", status=status, transient=is_transient(status))
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return error
        finally:
            response.close()

    def _get(self, url: str, *, max_bytes: int, truncate: bool = False) -> Page | str:
        attempt = 0
        while True:
            self.limiter.wait()
            self._count(requests=1)
            deadline = _Deadline(self.timeout)
            try:
                with deadline:
                    answer = self._exchange(url, max_bytes, truncate)
                if deadline.expired:  # the body may have looked complete when its socket was shut
                    raise requests.Timeout()
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError, urllib3.exceptions.HTTPError) as exc:
                if deadline.expired:
                    reason = f"took longer than {self.timeout:g} s"
                elif isinstance(exc, requests.Timeout):
                    reason = "timed out"
                elif isinstance(exc, requests.exceptions.ContentDecodingError):
                    reason = "a body that does not decompress"
                elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    reason = "connection closed before the whole body came"
                else:
                    reason = "connection failed"
                error = FetchError(url, f"{reason}: {url}", transient=True)
                delay = self._backoff_delay(attempt)
            except requests.RequestException as exc:
                raise FetchError(url, f"bad request for {url}: {exc}") from None
            else:
                if not isinstance(answer, FetchError):
                    return answer
                error = answer
                if not error.transient:
                    raise error
                retry_after = getattr(error, "retry_after", None)
                delay = retry_after if retry_after is not None else self._backoff_delay(attempt)
                if error.status == 429:
                    self.limiter.pause_until(time.monotonic() + delay)
            if attempt >= self.retries:
                error.args = (f"{error.args[0]} (gave up after {attempt + 1} tries)",)
                raise error
            attempt += 1
            self._count(retries=1)
            log.debug("retry %d/%d in %.2fs: %s", attempt, self.retries, delay, error)
            time.sleep(delay)
