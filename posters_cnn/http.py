"""All HTTP goes through here: one session, a retry policy, a rate limit, robots.txt.

``PoliteClient.get`` retries connection errors, timeouts, 408, 429 and every
5xx (a CDN in front of a slow origin answers 520-524) with exponential
backoff and jitter, honours ``Retry-After`` (and makes every thread wait, not
only the one that was told), and never retries a 404 or any other 4xx.
``--jobs`` bounds the requests in flight because the caller runs at most that
many workers; the connection pool is sized to match so that keep-alive
connections are reused.

robots.txt is read once per host, before the first request to it, with the
standard library's ``urllib.robotparser``: a path it disallows for our
User-Agent is never requested (``FetchError`` with ``kind="robots"``), and its
``Crawl-delay`` becomes the least interval between requests unless the rate
cap is stricter. A missing robots.txt (any 4xx) allows everything; one that
cannot be read (5xx or timeouts after every retry) disallows everything on
that host for this run, as RFC 9309 asks.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import USER_AGENT

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 120.0


def is_transient(status: int) -> bool:
    """Worth asking again: 408 (request timeout), 429 (too many requests) and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599


class FetchError(Exception):
    """A request that failed for good. ``status`` is the HTTP status or None.

    ``kind`` is the short reason stage 1 records: ``transient`` (worth trying
    again on a later run), ``http-NNN``, or ``robots`` (robots.txt disallows it).
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
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def crawl_delay(robots_txt: str, user_agent: str) -> float | None:
    """The ``Crawl-delay`` of the robots.txt group that applies to ``user_agent``, in seconds.

    The standard library's parser keeps whole seconds only, and sites write
    ``Crawl-delay: 0.5`` too. Groups are matched as ``urllib.robotparser``
    does: a group naming our product token first, else the ``*`` group.
    """
    token = user_agent.split("/")[0].lower()
    groups: list[tuple[list[str], float | None]] = []
    agents: list[str] = []
    delay: float | None = None
    in_rules = False
    for raw in robots_txt.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                groups.append((agents, delay))
                agents, delay, in_rules = [], None, False
            agents.append(value.lower())
        elif key in ("allow", "disallow", "crawl-delay", "request-rate", "sitemap"):
            in_rules = True
            if key == "crawl-delay":
                try:
                    delay = max(0.0, float(value))
                except ValueError:
                    pass
    if agents:
        groups.append((agents, delay))
    for names, value in groups:
        if any(name != "*" and name in token for name in names):
            return value
    for names, value in groups:
        if "*" in names:
            return value
    return None


class _Robots:
    """The robots.txt rules of one host: parsed rules, allow-all, or unreachable (disallow-all)."""

    def __init__(self, url: str, parser: urllib.robotparser.RobotFileParser | None, unreachable: str = ""):
        self.url, self.parser, self.unreachable = url, parser, unreachable

    def check(self, url: str, user_agent: str) -> None:
        if self.unreachable:
            raise FetchError(url, f"not requested: {self.url} could not be read ({self.unreachable}), so every "
                                  f"path of the host counts as disallowed for this run", transient=True)
        if self.parser is not None and not self.parser.can_fetch(user_agent, url):
            raise FetchError(url, f"disallowed by {self.url}: {url}", kind="robots")


class PoliteClient:
    def __init__(self, *, jobs: int = 4, timeout: float = 30.0, retries: int = 4, rate: float = 0.0,
                 backoff: float = 0.5, user_agent: str = USER_AGENT, robots: bool = True):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.rate = rate
        self.user_agent = user_agent
        self.limiter = RateLimiter(rate)
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self.robots = robots
        self._robots: dict[str, _Robots] = {}
        self._robots_lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(jobs, 4), max_retries=0)
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
                text = self._get(robots_url).text
            except FetchError as exc:
                if exc.status is None and first_contact:
                    raise
                if exc.status is not None and 400 <= exc.status < 500 and not is_transient(exc.status):
                    rules = _Robots(robots_url, None)  # no robots.txt: everything is allowed
                else:
                    log.warning("%s could not be read (%s): nothing on %s is requested in this run",
                                robots_url, exc, origin)
                    rules = _Robots(robots_url, None, unreachable=str(exc))
            else:
                parser = urllib.robotparser.RobotFileParser(robots_url)
                parser.parse(text.splitlines())
                parser.modified()  # "read now"
                rules = _Robots(robots_url, parser)
                delay = crawl_delay(text, self.user_agent)
                if delay:
                    if delay > self.limiter.interval:
                        log.info("%s asks for %.2gs between requests (Crawl-delay); honoured", robots_url, delay)
                        self.limiter.interval = delay
                    else:
                        log.info("%s asks for %.2gs between requests; --rate %g is stricter", robots_url,
                                 delay, self.rate)
            self._robots[origin] = rules
            return rules

    def get(self, url: str) -> requests.Response:
        """GET ``url`` and return a 2xx response with its body read, or raise FetchError.

        A path that the host's robots.txt disallows is not requested: FetchError
        with ``kind="robots"``.
        """
        if self.robots:
            self.robots_for(url).check(url, self.user_agent)
        return self._get(url)

    def _get(self, url: str) -> requests.Response:
        attempt = 0
        while True:
            self.limiter.wait()
            self._count(requests=1)
            try:
                response = self.session.get(url, timeout=self.timeout)
                body = response.content  # read the body inside the try: it may time out too
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                error = FetchError(url, f"{reason}: {url}", transient=True)
                delay = self._backoff_delay(attempt)
            except requests.RequestException as exc:
                raise FetchError(url, f"bad request for {url}: {exc}") from None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._count(bytes=len(body))
                    return response
                if not is_transient(status):
                    raise FetchError(url, f"HTTP {status} for {url}", status=status)
                error = FetchError(url, f"HTTP {status} for {url}", status=status, transient=True)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self._backoff_delay(attempt)
                if status == 429:
                    self.limiter.pause_until(time.monotonic() + delay)
            if attempt >= self.retries:
                error.args = (f"{error.args[0]} (gave up after {attempt + 1} tries)",)
                raise error
            attempt += 1
            self._count(retries=1)
            log.debug("retry %d/%d in %.2fs: %s", attempt, self.retries, delay, error)
            time.sleep(delay)
