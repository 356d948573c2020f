"""All HTTP goes through here: one session, a retry policy, a rate limit.

``PoliteClient.get`` retries connection errors, timeouts, 429 and 5xx with
exponential backoff and jitter, honours ``Retry-After`` (and makes every
thread wait, not only the one that was told), and never retries a 404 or any
other 4xx. ``--jobs`` bounds the requests in flight because the caller runs
at most that many workers; the connection pool is sized to match so that
keep-alive connections are reused.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from . import USER_AGENT

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 120.0


class FetchError(Exception):
    """A request that failed for good. ``status`` is the HTTP status or None."""

    def __init__(self, url: str, message: str, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.url = url
        self.status = status
        self.transient = transient  # worth trying again on a later run


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


class PoliteClient:
    def __init__(self, *, jobs: int = 4, timeout: float = 30.0, retries: int = 4, rate: float = 0.0,
                 backoff: float = 0.5, user_agent: str = USER_AGENT):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.limiter = RateLimiter(rate)
        self.stats = Stats()
        self._stats_lock = threading.Lock()
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

    def get(self, url: str) -> requests.Response:
        """GET ``url`` and return a 2xx response with its body read, or raise FetchError."""
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
                if status not in RETRY_STATUS:
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
