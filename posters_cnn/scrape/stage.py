"""Stage 1: find posters on impawards.com, download them, make thumbnails.

For each year the index ``{base}{year}/std.html`` links poster pages
``NAME.html`` / ``NAME_verN.html`` in the same folder. The image is derived as
``{base}{year}/posters/NAME.jpg``; when that answers 404 the poster page is
read for its ``<img src="posters/...">``.

Writes, under ``out_dir`` only:

* ``posters/YEAR/NAME.jpg``: the bytes exactly as served;
* ``thumbs/YEAR/NAME.jpg``: an RGB JPEG thumbnail, aspect kept;
* ``posters.csv``: one row per poster (see :mod:`posters_cnn.contracts.manifest`), written whole when
  the run ends; every 10 s the rows finished since go to ``posters.csv.journal``, which a stopped run
  leaves for the next one (and the later stages) to read;
* ``scrape_stats.json``: counts, duration and the errors seen.

Resuming: a poster whose thumbnail exists is done (the thumbnail is written
after the image, both atomically), so a re-run makes no request for it. A
failure that will not change (404, a bad file) is remembered in the manifest
and not asked for again; transient ones (timeouts, 5xx, 429) are retried.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import logging
import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup
from tqdm import tqdm

from .. import images
from ..cli import StageError
from ..contracts.manifest import MANIFEST_NAME, Journal, PosterRecord, read_records
from ..fsutil import remove_stale_temporaries, safe_join, write_bytes_atomic, write_json_atomic
from ..names import movie_key, version_of
from .http import FetchError, PoliteClient

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://www.impawards.com/"
# Failures asked about again on the next run: transient ones, and robots.txt refusals (the rules
# may have changed; a path still disallowed is refused again without a request).
TRANSIENT_KINDS = frozenset({"transient", "robots", ""})
NO_XLG = "none"  # xlg_url of a poster whose page links no extra-large version: not asked again
CHECKPOINT_EVERY_S = 10.0

# A poster page's file name: letters (any script), digits, "_", "-" and "."; it is a single
# path component after normalisation, so it cannot climb out of --out-dir.
_NAME_RE = re.compile(r"(\w[\w\-.]*?)\.html?", re.IGNORECASE)
_NOT_A_POSTER = re.compile(r"(std|alpha|index)[0-9_]*|.*_x+lg", re.IGNORECASE)  # navigation pages, xlg pages
_GENERIC_LINK_TEXT = re.compile(
    r"(posters?|v(er(sion)?)?\.?\s*#?\d+|#?\d+|xx?lg|large|more|click here|view|details?)?", re.IGNORECASE)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class IndexEntry:
    year: int
    name: str
    title: str
    page_url: str

    @property
    def poster_id(self) -> str:
        return f"{self.year}/{self.name}"

    @property
    def version(self) -> int:
        return version_of(self.name)


@dataclass
class Summary:
    found: int = 0
    downloaded: int = 0
    reused: int = 0
    failed: int = 0
    years_failed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    seconds: float = 0.0

    def line(self) -> str:
        text = (f"found {self.found}, downloaded {self.downloaded}, reused {self.reused}, "
                f"failed {self.failed}")
        if self.errors.get("robots"):
            text += f" (disallowed by robots.txt {self.errors['robots']})"
        if self.years_failed:
            text += f", year indexes failed {self.years_failed}"
        return text


def humanize(name: str) -> str:
    return re.sub(r"[_\-]+", " ", movie_key(name)).strip().title()


def parse_years(text: str) -> list[int]:
    """``"1995-2000"`` or ``"1995"`` to an inclusive list of years; ValueError if bad."""
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", text or "")
    if not match:
        raise ValueError(f"expected FIRST-LAST years such as 1995-2000, got {text!r}")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if last < first:
        raise ValueError(f"the range {text!r} runs backwards; did you mean {last}-{first}?")
    return list(range(first, last + 1))


def spread_sample(entries: list, n: int) -> list:
    """``n`` of ``entries`` spread over their years, in their order: for a first try that shows the range.

    Each year gives an equal share (a year with fewer posters gives all it has, and the rest is shared
    by the others), picked at even intervals through its index, so that not only its first posters
    (often one letter of the alphabet) come.
    """
    by_year: dict[int, list] = collections.defaultdict(list)
    for entry in entries:
        by_year[entry.year].append(entry)
    quota = dict.fromkeys(by_year, 0)
    left, active = n, [year for year in by_year if by_year[year]]
    while left > 0 and active:
        share = max(1, left // len(active))
        for year in list(active):
            take = min(share, len(by_year[year]) - quota[year], left)
            quota[year] += take
            left -= take
            if quota[year] == len(by_year[year]):
                active.remove(year)
            if not left:
                break
    chosen = set()
    for year, count in quota.items():
        group = by_year[year]
        chosen.update(id(group[int((k + 0.5) * len(group) / count)]) for k in range(count))
    return [entry for entry in entries if id(entry) in chosen]


def _same_folder_target(href: str, page_url: str) -> tuple[str, str] | None:
    """(folder path, file name) of ``href`` when it stays on the page's host, else None.

    Percent-escapes are decoded *before* the path is normalised, so
    ``%2e%2e/`` counts as ``../``.
    """
    href = (href or "").strip()
    if not href or href.startswith(("#", "mailto:", "javascript:", "data:")):
        return None
    target = urlsplit(urljoin(page_url, href))
    base = urlsplit(page_url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        return None
    path = posixpath.normpath(unquote(target.path))
    return posixpath.dirname(path), posixpath.basename(path)


def poster_name(href: str, index_url: str) -> str | None:
    """The poster NAME an index link points to, or None for anything else.

    Only ``NAME.html`` in the index's own folder counts: navigation pages,
    other folders and hosts, anchors, ``mailto:`` and paths that climb out
    (``../``, ``%2e%2e/``) are not posters.
    """
    target = _same_folder_target(href, index_url)
    if target is None:
        return None
    folder, filename = target
    if folder != posixpath.dirname(unquote(urlsplit(index_url).path)):
        return None
    match = _NAME_RE.fullmatch(filename)
    if not match or _NOT_A_POSTER.fullmatch(match.group(1)):
        return None
    return match.group(1)


def _text(node) -> str:
    return " ".join(node.get_text(" ").split())


def _container(link):
    for parent in link.parents:
        if parent.name in ("tr", "li"):
            return parent
        if parent.name in ("table", "body", "html", "ul", "ol"):
            break
    return link.parent


def _title_text(text: str) -> str | None:
    return text if text and not _GENERIC_LINK_TEXT.fullmatch(text) else None


def _title_for(link, name: str, names_in: dict, row_link_title: dict) -> str:
    """The poster's title from its index row: the row's text outside links,
    else a link text that is not 'poster' or 'v2', else an image's alt text,
    else the text just before the link, else the name made readable.

    ``row_link_title`` caches each row's first such link text, so that a row
    of thousands of links is read once, not once per link.
    """
    row = _container(link)
    if row is not None and row.name not in ("body", "html", "[document]"):
        if len(names_in.get(id(row), ())) <= 1:
            outside = " ".join(
                s.strip() for s in row.find_all(string=True)
                if s.strip() and not any(p.name == "a" for p in s.parents))
            outside = " ".join(outside.split())
            if outside:
                return outside
        own = _title_text(_text(link))
        if own:
            return own
        if id(row) not in row_link_title:
            row_link_title[id(row)] = next(
                (text for text in map(_title_text, map(_text, row.find_all("a"))) if text), None)
        if row_link_title[id(row)]:
            return row_link_title[id(row)]
    image = link.find("img", alt=True)
    if image is not None and image["alt"].strip():
        return re.sub(r"\s+movie poster$", "", image["alt"].strip(), flags=re.IGNORECASE)
    before = link.previous_sibling
    if isinstance(before, str) and before.strip() and not _GENERIC_LINK_TEXT.fullmatch(before.strip()):
        return " ".join(before.split())
    return humanize(name)


def parse_year_index(html: str | bytes, index_url: str, year: int) -> list[IndexEntry]:
    """The posters an index page links, each once, in page order."""
    soup = BeautifulSoup(html, "html.parser")
    links = []
    names_in: dict[int, set] = collections.defaultdict(set)
    for link in soup.find_all("a", href=True):
        name = poster_name(link["href"], index_url)
        if name:
            links.append((link, name))
            names_in[id(_container(link))].add(movie_key(name).lower())
    entries: dict[str, IndexEntry] = {}
    folder = urljoin(index_url, ".")
    row_link_title: dict[int, str | None] = {}
    for link, name in links:
        title = _title_for(link, name, names_in, row_link_title)
        known = entries.get(name)
        if known is None:
            entries[name] = IndexEntry(year, name, title, urljoin(folder, f"{name}.html"))
        elif known.title == humanize(name) and title != known.title:
            entries[name] = IndexEntry(year, name, title, known.page_url)  # a better title later on
    return list(entries.values())


def find_image_url(html: str | bytes, page_url: str, name: str) -> str | None:
    """The poster image a poster page shows: ``<img src="posters/...">``.

    Prefers the image named after the page in a ``posters/`` folder, then any
    image in a ``posters/`` folder, then an image named after the page
    elsewhere on the same host.
    """
    soup = BeautifulSoup(html, "html.parser")
    candidates = []
    for tag in soup.find_all(["img", "a"]):
        src = tag.get("src") if tag.name == "img" else tag.get("href")
        target = _same_folder_target(src, page_url)
        if target is None:
            continue
        folder, filename = target
        stem = filename.rsplit(".", 1)[0]
        in_posters = posixpath.basename(folder) == "posters"
        if not filename.lower().endswith(IMAGE_EXTENSIONS) or not (in_posters or stem == name):
            continue
        url = urljoin(page_url, src.strip())
        candidates.append((not in_posters, stem != name, stem.endswith("_xlg"), url))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[:3])[3]


def find_xlg_page(html: str | bytes, page_url: str, name: str) -> str | None:
    """The extra-large page a poster page links (``NAME_xlg.html``), if any."""
    soup = BeautifulSoup(html, "html.parser")
    for link in soup.find_all("a", href=True):
        target = _same_folder_target(link["href"], page_url)
        if target and target[1].lower() == f"{name}_xlg.html".lower():
            return urljoin(page_url, link["href"].strip())
    return None


class Scraper:
    """One scraping job. ``run()`` returns a Summary; see the module docstring."""

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, out_dir: str | Path = "data",
                 years: list[int], jobs: int = 4, rate: float = 0.0, thumb_size: int = 256,
                 timeout: float = 30.0, retries: int = 4, limit: int | None = None,
                 xlg: bool = False, progress: bool = True, backoff: float = 0.5, sample: int | None = None):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.out_dir = Path(out_dir)
        self.years = years
        self.jobs = jobs
        self.thumb_size = thumb_size
        self.limit = limit
        self.sample = sample
        self.xlg = xlg
        self.progress = progress
        self.client = PoliteClient(jobs=jobs, timeout=timeout, retries=retries, rate=rate, backoff=backoff)

    # -- paths -------------------------------------------------------------
    def _image_rel(self, year: int, name: str, suffix: str = "") -> str:
        return f"posters/{year}/{name}{suffix}.jpg"

    def _thumb_rel(self, year: int, name: str) -> str:
        return f"thumbs/{year}/{name}.jpg"

    def _abs(self, rel: str) -> Path:
        return safe_join(self.out_dir, *rel.split("/"))

    # -- the job -----------------------------------------------------------
    def run(self) -> Summary:
        started = time.monotonic()
        summary = Summary()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        manifest_path = self.out_dir / MANIFEST_NAME
        previous = read_records(manifest_path)
        remove_stale_temporaries(self.out_dir, ("posters", "thumbs"))
        try:
            self._check_reachable()
            entries, year_rows = self._read_indexes(summary, previous)
            if self.sample is not None:
                entries = spread_sample(entries, self.sample)
            if self.limit is not None:
                entries = entries[: self.limit]
            summary.found = len(entries)
            done: dict[str, PosterRecord] = {}
            fresh: list[PosterRecord] = []  # done since the last checkpoint
            journal = Journal(manifest_path)
            try:
                self._process(entries, previous, done, fresh, summary, journal)
            finally:
                self._write(entries, previous, done, year_rows, journal, fresh)
                summary.seconds = time.monotonic() - started
                self._write_stats(summary)
        finally:
            self.client.close()
        return summary

    def _check_reachable(self) -> None:
        """Read the site's robots.txt first: it tells whether the site answers at all, and its rules."""
        try:
            robots = self.client.robots_for(self.base_url, first_contact=True)
        except FetchError as exc:
            raise StageError(f"cannot reach {self.base_url}: {exc}") from None
        if robots.unreachable:
            raise StageError(f"{robots.url} could not be read ({robots.unreachable}); until it can, every path "
                             f"counts as disallowed (RFC 9309), so nothing was downloaded: try again later")
        if robots.refused:
            raise StageError(robots.refused)

    def _read_indexes(self, summary: Summary, previous: dict) -> tuple[list[IndexEntry], list[PosterRecord]]:
        entries: list[IndexEntry] = []
        year_rows: list[PosterRecord] = []
        seen: set[str] = set()

        def fetch(year: int):
            url = f"{self.base_url}{year}/std.html"
            try:
                return year, url, parse_year_index(self.client.get(url).content, url, year), None
            except FetchError as exc:
                return year, url, None, exc

        with cf.ThreadPoolExecutor(self.jobs) as pool:
            results = pool.map(fetch, self.years)
            for year, url, found, error in tqdm(results, total=len(self.years), desc="year indexes",
                                                unit="year", disable=not self.progress):
                if error is not None:
                    summary.years_failed += 1
                    kind = error.kind
                    summary.errors[f"index {kind}"] += 1
                    log.warning("year %d: index not read: %s", year, error)
                    year_rows.append(PosterRecord(
                        poster_id=f"{year}/std.html", title=f"{year} index", year=year, version=1,
                        page_url=url, status="failed", error=f"year index: {error}", error_kind=kind))
                    # Keep what earlier runs found for that year: nothing is lost to a bad day.
                    for record in previous.values():
                        if record.year == year and record.poster_id not in seen and not \
                                record.poster_id.endswith("/std.html"):
                            seen.add(record.poster_id)
                            entries.append(IndexEntry(year, record.name, record.title, record.page_url))
                    continue
                if not found:
                    log.warning("year %d: the index lists no posters (%s)", year, url)
                for entry in found:
                    if entry.poster_id not in seen:
                        seen.add(entry.poster_id)
                        entries.append(entry)
        return entries, year_rows

    def _process(self, entries, previous, done, fresh, summary, journal) -> None:
        last_checkpoint = time.monotonic()
        bar = tqdm(total=len(entries), desc="posters", unit="poster", disable=not self.progress)
        pool = cf.ThreadPoolExecutor(self.jobs)
        pending: set[cf.Future] = set()
        queue = iter(entries)
        try:
            while True:
                while len(pending) < self.jobs * 2:
                    entry = next(queue, None)
                    if entry is None:
                        break
                    pending.add(pool.submit(self._one, entry, previous.get(entry.poster_id)))
                if not pending:
                    break
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    record, how = future.result()
                    done[record.poster_id] = record
                    fresh.append(record)
                    if record.status == "ok":
                        summary.downloaded += how == "downloaded"
                        summary.reused += how == "reused"
                    else:
                        summary.failed += 1
                        summary.errors[record.error_kind or "error"] += 1
                        if how != "remembered":
                            log.warning("%s failed: %s", record.poster_id, record.error)
                    bar.update(1)
                if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY_S:
                    journal.append(fresh)  # what it adds, not the whole manifest again
                    fresh.clear()
                    last_checkpoint = time.monotonic()
        finally:
            # On Ctrl-C: drop what has not started, let running downloads finish
            # (each writes atomically), then the caller saves the manifest.
            pool.shutdown(wait=True, cancel_futures=True)
            for future in pending:
                if future.done() and not future.cancelled() and future.exception() is None:
                    record, _ = future.result()
                    done[record.poster_id] = record
                    fresh.append(record)
            bar.close()

    def _write(self, entries, previous, done, year_rows, journal, fresh) -> None:
        rows = [done[e.poster_id] for e in entries if e.poster_id in done]
        listed = {r.poster_id for r in rows} | {r.poster_id for r in year_rows}
        # Rows of earlier runs not handled now (another range, --limit, Ctrl-C) are kept.
        rows += [r for pid, r in previous.items() if pid not in listed]
        rows += year_rows
        journal.finish(fresh, rows)

    def _write_stats(self, summary: Summary) -> None:
        stats = {
            "found": summary.found, "downloaded": summary.downloaded, "reused": summary.reused,
            "failed": summary.failed, "years_failed": summary.years_failed,
            "errors": dict(summary.errors.most_common(50)), "seconds": round(summary.seconds, 3),
            "requests": self.client.stats.requests, "retries": self.client.stats.retries,
            "bytes": self.client.stats.bytes, "base_url": self.base_url,
            "years": [self.years[0], self.years[-1]] if self.years else [],
        }
        write_json_atomic(self.out_dir / "scrape_stats.json", stats, indent=1)

    # -- one poster --------------------------------------------------------
    def _one(self, entry: IndexEntry, before: PosterRecord | None) -> tuple[PosterRecord, str]:
        record = PosterRecord(
            poster_id=entry.poster_id, title=entry.title, year=entry.year, version=entry.version,
            page_url=entry.page_url, image_url=f"{self.base_url}{entry.year}/posters/{entry.name}.jpg",
            image_path=self._image_rel(entry.year, entry.name),
            thumb_path=self._thumb_rel(entry.year, entry.name))
        if before is not None and before.image_url:
            record.image_url = before.image_url
        image_file, thumb_file = self._abs(record.image_path), self._abs(record.thumb_path)
        try:
            if thumb_file.exists() and image_file.exists():
                how = "reused"
                if before is not None and before.status == "ok" and before.width:
                    record.width, record.height = before.width, before.height
                else:  # its header is enough: the thumbnail beside it says it was decoded whole before
                    size = images.header_size(image_file)
                    if size is None:
                        raise images.BadImage("unreadable", f"cannot read the header of {image_file}")
                    record.width, record.height = size
            elif image_file.exists():
                how = "reused"
                self._store(record, image_file.read_bytes(), write_image=False)
            elif before is not None and before.status == "failed" and \
                    before.error_kind not in TRANSIENT_KINDS:
                before.title = entry.title
                return before, "remembered"
            else:
                how = "downloaded"
                data = self._download(record, entry)
                self._store(record, data, write_image=True)
            if self.xlg:
                self._fetch_xlg(record, entry, before)
        except FetchError as exc:
            record.status, record.error, record.error_kind = "failed", str(exc), exc.kind
            return record, "failed"
        except images.BadImage as exc:
            record.status, record.error, record.error_kind = "failed", str(exc), exc.kind
            return record, "failed"
        except OSError as exc:
            record.status, record.error, record.error_kind = "failed", f"cannot save: {exc}", "transient"
            return record, "failed"
        record.status, record.error, record.error_kind = "ok", record.error, ""
        return record, how

    def _download(self, record: PosterRecord, entry: IndexEntry) -> bytes:
        try:
            return self.client.get(record.image_url).content
        except FetchError as exc:
            if exc.status != 404:
                raise
            derived_error = exc
        # The derived address is wrong for this poster: ask its page.
        page = self.client.get(entry.page_url).content
        url = find_image_url(page, entry.page_url, entry.name)
        if url is None:
            raise FetchError(record.image_url, f"{derived_error}; the poster page shows no image",
                             status=404)
        if url == record.image_url:
            raise derived_error
        record.image_url = url
        return self.client.get(url).content

    def _store(self, record: PosterRecord, data: bytes, *, write_image: bool) -> None:
        image = images.decode(data)
        record.width, record.height = images.upright_size(image)  # as the thumbnail and the map show it
        thumb = images.jpeg_bytes(images.thumbnail(image, self.thumb_size))
        if write_image:
            write_bytes_atomic(self._abs(record.image_path), data)
        write_bytes_atomic(self._abs(record.thumb_path), thumb)  # written last: marks the poster done

    def _fetch_xlg(self, record: PosterRecord, entry: IndexEntry, before: PosterRecord | None) -> None:
        rel = self._image_rel(entry.year, entry.name, "_xlg")
        if self._abs(rel).exists():
            record.xlg_path = rel
            record.xlg_url = before.xlg_url if before is not None else ""
            return
        if before is not None and before.xlg_url == NO_XLG:
            record.xlg_url = NO_XLG  # an earlier run read the page: it links no extra-large version
            return
        try:
            page_url = find_xlg_page(self.client.get(entry.page_url).content, entry.page_url, entry.name)
            if page_url is None:
                record.xlg_url = NO_XLG
                return
            url = find_image_url(self.client.get(page_url).content, page_url, f"{entry.name}_xlg")
            if url is None:
                raise FetchError(page_url, f"the extra-large page shows no image: {page_url}")
            data = self.client.get(url).content
            images.decode(data)
        except (FetchError, images.BadImage) as exc:
            record.error = f"xlg: {exc}"
            log.warning("%s: extra-large version failed: %s", record.poster_id, exc)
            return
        write_bytes_atomic(self._abs(rel), data)
        record.xlg_url, record.xlg_path = url, rel


def _thumb_is_current(thumb_file: Path, source: Path, before: PosterRecord | None, record: PosterRecord) -> bool:
    """True when ``thumb_file`` was made from ``source`` as it is now: same file, and not older than it."""
    if before is None or before.status != "ok" or before.image_url != record.image_url:
        return False
    try:
        return thumb_file.stat().st_mtime >= source.stat().st_mtime
    except FileNotFoundError:
        return False


_YEAR_IN_NAME = re.compile(r"\s*[\(\[]((?:18|19|20)\d\d)[\)\]]\s*")
_YEAR_AT_END = re.compile(r"(?<=\w)[._ \-]+((?:18|19|20)\d\d)$")  # Star.Wars.1977, Heat_1995


def split_year(stem: str) -> tuple[str, int | None]:
    """(the name without its year, the year) of a file name that carries one, else (name, None).

    A year counts in parentheses or brackets anywhere (``Alien (1979)``), or as the last word after a
    title (``Star.Wars.1977``, ``Heat_1995``), when it is between 1880 and next year: ``Blade Runner
    2049`` keeps its number, and a file named only ``1984`` is the film of that name.
    """
    match = _YEAR_IN_NAME.search(stem)
    if match:
        return (stem[: match.start()] + " " + stem[match.end():]).strip(), int(match.group(1))
    match = _YEAR_AT_END.search(stem)
    if match and 1880 <= int(match.group(1)) <= time.gmtime().tm_year + 1:
        return stem[: match.start()], int(match.group(1))
    return stem, None


def title_and_year(stem: str) -> tuple[str, int | None]:
    """A title, and its year when the file name has one (:func:`split_year`), as people name films.

    ``Alien (1979)`` -> ("Alien", 1979); ``Star.Wars.1977`` -> ("Star Wars", 1977);
    ``Blade_Runner`` -> "Blade Runner"; ``E.T._the_Extra-Terrestrial`` -> "E.T. the Extra-Terrestrial"
    (a dot after a single letter, or before a separator, belongs to the title); ``The.Matrix`` ->
    "The Matrix"; ``_verN`` is dropped; a name all in lower case gets capitals (``air_america`` ->
    "Air America"), one with any capital keeps its own.
    """
    name, year = split_year(movie_key(stem))
    out = []
    for i, char in enumerate(name):
        if char == ".":
            before = name[max(0, i - 2): i]
            after = name[i + 1: i + 2]
            single_letter = len(before) >= 1 and before[-1].isalpha() and (len(before) == 1 or not before[0].isalnum())
            if single_letter or after in ("", "_", " "):
                out.append(".")
            else:
                out.append(" ")
        else:
            out.append(" " if char == "_" else char)
    title = " ".join("".join(out).split())
    if not any(char.isupper() for char in title):
        title = " ".join(word[:1].upper() + word[1:] for word in title.split(" "))
    return title, year


def _slug(text: str) -> str:
    """A file-name-safe id part that keeps letters of any script: "été 2020" -> "été_2020"."""
    return re.sub(r"\W+", "_", text.lower()).strip("_") or "poster"


def index_folder(src_dir: str | Path, out_dir: str | Path, *, thumb_size: int = 256, jobs: int = 4,
                 limit: int | None = None, progress: bool = True) -> Summary:
    """Stage 1 for a local folder of images instead of impawards.

    Each image becomes a row whose ``poster_id`` is ``FOLDER/NAME``: the title
    comes from the file name, the year from its folder's name when that is a
    year; its ``folder`` is the folder it lies in under ``src_dir`` (a category
    on the map). The image is hard-linked (or copied) to ``out_dir/posters/`` so the
    manifest's contract holds; thumbnails are upright (EXIF orientation
    applied) and large JPEGs are decoded at reduced scale for them.
    """
    from ..concurrency import bounded_map
    from ..fsutil import link_or_copy

    started = time.monotonic()
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    files = sorted(p for p in src_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(src_dir).parts))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    previous = read_records(manifest_path)  # refuses, rather than drops, a manifest it cannot read
    remove_stale_temporaries(out_dir, ("posters", "thumbs"))
    out_resolved = out_dir.resolve()
    files = [p for p in files if out_resolved not in p.resolve().parents]  # never index our own output
    if limit is not None:
        files = files[:limit]
    summary = Summary(found=len(files))
    # An image keeps the id an earlier run gave it (found by its file), so adding FOO.gif beside
    # Foo.jpg gives the new file a new id instead of taking the old one's; the ids of every earlier
    # row (a scrape's too) are taken, and those rows are kept in the manifest.
    earlier_id = {record.image_url: pid for pid, record in previous.items() if record.image_url}
    taken: set[str] = set(previous)
    planned = []
    for path in files:
        folder = path.parent.name
        title, year_in_name = title_and_year(path.stem)
        folder_year = int(folder) if re.fullmatch(r"(18|19|20)\d\d", folder) else None
        year = folder_year if folder_year is not None else year_in_name
        group = str(folder_year) if folder_year is not None else (
            _slug(folder) if path.parent != src_dir else "local")
        name = _slug(split_year(path.stem)[0])
        uri = Path(os.path.abspath(path)).as_uri()
        where = path.parent.relative_to(src_dir).as_posix()
        planned.append((path, uri, group, name, title, year, "" if where == "." else where))
    chosen = {uri: earlier_id[uri] for _, uri, *_ in planned if uri in earlier_id}
    jobs_list = []
    for path, uri, group, name, title, year, where in planned:
        pid = chosen.get(uri)
        if pid is None:
            base, n = name, 2
            while f"{group}/{name}" in taken:
                name, n = f"{base}_{n}", n + 1
            pid = f"{group}/{name}"
            taken.add(pid)
        before = previous.get(pid)
        jobs_list.append((path, before, PosterRecord(
            poster_id=pid, title=title or pid.rsplit("/", 1)[-1], year=year, version=version_of(path.stem),
            page_url="", image_url=uri, image_path=f"posters/{pid}{path.suffix.lower()}",
            thumb_path=f"thumbs/{pid}.jpg", folder=where)))

    def one(item):
        path, before, record = item
        try:
            thumb_file = safe_join(out_dir, *record.thumb_path.split("/"))
            if _thumb_is_current(thumb_file, path, before, record) and before.width and before.height:
                # Done by an earlier run, stopped or not: the image is not decoded again.
                record.width, record.height = before.width, before.height
            else:
                image = images.load(path, reduce_to=thumb_size)
                record.width, record.height = images.upright_size(image)
                write_bytes_atomic(thumb_file, images.jpeg_bytes(images.thumbnail(image, thumb_size)))
            image_file = safe_join(out_dir, *record.image_path.split("/"))
            if before is not None and before.image_path and before.image_path != record.image_path:
                with contextlib.suppress(FileNotFoundError, ValueError):  # another extension now
                    safe_join(out_dir, *before.image_path.split("/")).unlink()
            link_or_copy(path, image_file)
            record.status = "ok"
        except images.BadImage as exc:
            record.error, record.error_kind = str(exc), exc.kind
        except OSError as exc:
            record.error, record.error_kind = f"cannot read or save: {exc}", "io"
        return record

    records: list[PosterRecord] = []
    journal, journaled, last_checkpoint = Journal(manifest_path), 0, time.monotonic()
    try:
        # Submitted a few at a time (a million futures at once would hold memory, and Ctrl-C would wait
        # for every one of them): stopping cancels what has not started.
        with cf.ThreadPoolExecutor(jobs) as pool:
            for record in tqdm(bounded_map(pool, one, jobs_list, 4 * jobs), total=len(jobs_list), desc="images",
                               unit="image", disable=not progress):
                records.append(record)
                if record.status == "ok":
                    summary.downloaded += 1
                else:
                    summary.failed += 1
                    summary.errors[record.error_kind] += 1
                    log.warning("%s failed: %s", record.poster_id, record.error)
                if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY_S:
                    journal.append(records[journaled:])
                    journaled, last_checkpoint = len(records), time.monotonic()
    finally:  # on Ctrl-C too: what was done is kept
        unsaved = records[journaled:]
        listed = {record.poster_id for record in records}
        records += [record for pid, record in previous.items() if pid not in listed]  # nothing is dropped
        journal.finish(unsaved, records)
    summary.seconds = time.monotonic() - started
    return summary
