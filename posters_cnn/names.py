"""Poster names: ``NAME_verN`` versions and the movie they belong to."""

from __future__ import annotations

import re

_VERSION_RE = re.compile(r"_ver(\d+)$", re.IGNORECASE)


def version_of(name: str) -> int:
    """The N of ``NAME_verN``; 1 when there is no suffix."""
    match = _VERSION_RE.search(name)
    return int(match.group(1)) if match else 1


def movie_key(name: str) -> str:
    """The name without its ``_verN`` suffix: all versions of a movie share it."""
    return _VERSION_RE.sub("", name)


def movie_of(poster_id: str) -> str:
    """``1995/rob_roy_ver2`` -> ``1995/rob_roy``: the key versions of one movie share."""
    folder, _, name = poster_id.rpartition("/")
    return f"{folder}/{movie_key(name)}"
