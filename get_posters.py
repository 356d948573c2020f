#!/usr/bin/env python3
"""Stage 1: download movie posters from impawards.com and make thumbnails."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from posters_cnn import cli
except ModuleNotFoundError as exc:  # run with a Python that lacks the requirements
    sys.exit(f"{sys.argv[0]}: the Python package {exc.name!r} is missing: run `make setup`, then "
             f"`. .venv/bin/activate` (or run this script with .venv/bin/python)")

EXAMPLES = """\
examples:
  # every poster from 1995 and 1996, into data/
  python get_posters.py --range 1995-1996 --out-dir data

  # a first try: 50 posters, gently (2 downloads in flight, at most 5 requests/s)
  python get_posters.py --range 2016-2016 --limit 50 --jobs 2 --rate 5

  # a first look at twenty years: 600 posters spread over them (--limit 600 would take the first years')
  python get_posters.py --range 1996-2016 --sample 600

  # map your own collection instead (title from the file name, year from a YYYY folder)
  python get_posters.py --from-dir ~/Pictures/posters --out-dir data-mine

Writes OUT/posters/YEAR/NAME.jpg (bytes as served), OUT/thumbs/YEAR/NAME.jpg and
OUT/posters.csv (one row per poster, status ok or failed, with the error).
Re-running resumes: posters already on disk are not downloaded again.
"""


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="get_posters.py", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("--range", default="1920-2016", metavar="FIRST-LAST",
                        help="inclusive range of years to scrape (default: %(default)s)")
    parser.add_argument("--base-url", default="http://www.impawards.com/",
                        help="root of the poster archive (default: %(default)s)")
    parser.add_argument("--out-dir", default="data", help="where everything is written (default: %(default)s)")
    parser.add_argument("--jobs", type=cli.positive_int, default=4,
                        help="downloads in flight at once (default: %(default)s)")
    parser.add_argument("--rate", type=cli.non_negative_float, default=0.0, metavar="PER_SECOND",
                        help="at most this many requests per second; 0 = no cap beyond --jobs (default: 0)")
    parser.add_argument("--thumb-size", type=cli.positive_int, default=256, metavar="PIXELS",
                        help="longest side of the thumbnails (default: %(default)s)")
    parser.add_argument("--timeout", type=cli.non_negative_float, default=30.0, metavar="SECONDS",
                        help="the most one request may take, answer and body together (default: %(default)s)")
    parser.add_argument("--retries", type=cli.non_negative_int, default=4,
                        help="retries on timeouts, 429 and 5xx, with exponential backoff (default: %(default)s)")
    first = parser.add_mutually_exclusive_group()
    first.add_argument("--limit", type=cli.positive_int, default=None, metavar="N",
                       help="the first N posters of the range (with --from-dir: the first N images by name)")
    first.add_argument("--sample", type=cli.positive_int, default=None, metavar="N",
                       help="N posters spread over the years of --range, for a first try that shows them all")
    parser.add_argument("--xlg", action="store_true",
                        help="also fetch the extra-large version when a poster page links one")
    parser.add_argument("--from-dir", metavar="DIR",
                        help="index a local folder of images instead of scraping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def body(args) -> int:
    from posters_cnn.scrape import stage as scrape

    try:
        years = scrape.parse_years(args.range)
    except ValueError as exc:
        raise cli.UsageError(f"--range: {exc}") from None
    if args.timeout == 0:
        raise cli.UsageError("--timeout: must be more than 0")
    if args.from_dir is None:
        from urllib.parse import urlsplit

        parts = urlsplit(args.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise cli.UsageError(f"--base-url: give a full address with http:// or https://, such as "
                                 f"http://{args.base_url.split('://')[-1].lstrip('/') or '127.0.0.1:8000/'}, "
                                 f"got {args.base_url!r}")
    manifest = Path(args.out_dir) / "posters.csv"
    if args.from_dir is not None:
        if not Path(args.from_dir).is_dir():
            raise cli.UsageError(f"--from-dir: no such folder: {args.from_dir}")
        with cli.OutputLock(manifest):
            summary = scrape.index_folder(args.from_dir, args.out_dir, thumb_size=args.thumb_size,
                                          jobs=args.jobs, limit=args.limit, progress=not args.no_progress)
        if not summary.found:
            raise cli.StageError(f"no image found under --from-dir {args.from_dir} (it looks for "
                                 f"{', '.join(scrape.IMAGE_EXTENSIONS)} files, hidden folders left out)")
        print(f"indexed {summary.downloaded}, failed {summary.failed} -> {manifest}")
        return 0  # the job ran; each unreadable image is a failed row of the manifest
    scraper = scrape.Scraper(base_url=args.base_url, out_dir=args.out_dir, years=years, jobs=args.jobs,
                             rate=args.rate, thumb_size=args.thumb_size, timeout=args.timeout,
                             retries=args.retries, limit=args.limit, sample=args.sample, xlg=args.xlg,
                             progress=not args.no_progress)
    with cli.OutputLock(manifest):
        summary = scraper.run()
    if not summary.found:
        raise cli.StageError(f"no poster found for --range {args.range} at --base-url {args.base_url} "
                             f"({summary.years_failed} of {len(years)} year indexes could not be read): check "
                             f"both (impawards.com has the years 1920 to today)")
    print(f"{summary.line()} in {summary.seconds:.1f}s -> {manifest}")
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
