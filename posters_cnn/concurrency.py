"""Bounded, ordered parallel map: at most ``window`` items in flight or waiting."""

from __future__ import annotations

import collections
import concurrent.futures as cf
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(pool: cf.Executor, fn: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    """Like ``pool.map`` but submits lazily, so memory stays bounded for any input length.

    Results come back in input order. Abandoning the iterator cancels what has
    not started.
    """
    queue: collections.deque[cf.Future] = collections.deque()
    source = iter(items)
    try:
        for item in source:
            queue.append(pool.submit(fn, item))
            if len(queue) >= window:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    finally:
        for future in queue:
            future.cancel()
