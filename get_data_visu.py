#!/usr/bin/env python3
"""Stage 3: PCA then t-SNE to 2-D, clusters, similar posters, closest pairs, and data.json for the map."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

try:
    from posters_cnn import cli
    from posters_cnn.mapping import similarity
except ModuleNotFoundError as exc:  # run with a Python that lacks the requirements
    sys.exit(f"{sys.argv[0]}: the Python package {exc.name!r} is missing: run `make setup`, then "
             f"`. .venv/bin/activate` (or run this script with .venv/bin/python)")

EXAMPLES = """\
examples:
  # the defaults: every poster mapped with openTSNE into web/data.json
  python get_data_visu.py -i data/features.h5 --posters data/posters.csv -o web/data.json

  # the original's 3,000-poster sample, one version per movie, with the grid layout too
  python get_data_visu.py -i data/features.h5 -o web/data.json --n-sample 3000 --one-per-movie --grid

  # bigger clusters only (at least 40 posters each), or none at all
  python get_data_visu.py -i data/features.h5 -o web/data.json --min-cluster-size 40
  python get_data_visu.py -i data/features.h5 -o web/data.json --clusters 0

  # after scraping a new year and computing its features: add the new posters to the map without
  # moving the others (refuses, in one line, when a full run is needed; =auto then makes it in full)
  python get_data_visu.py -i data/features.h5 -o web/data.json --update
  python get_data_visu.py -i data/features.h5 -o web/data.json --update=auto

  # your own columns: a CSV with poster_id (or file: the image's file name) and, say, genre,studio;
  # the page then colours by, filters by and exports each (a folder of images has "folder" already)
  python get_data_visu.py -i data-mine/features.h5 -o web/data.json --metadata data-mine/about.csv

  # the original's flag spellings still work
  python get_data_visu.py --input_file data/features.h5 --output_file web/data.json --n_sample 3000 -t sklearn

Writes beside the output: pairs.json (the closest pairs, not versions of one
movie), clusters.csv (poster_id,cluster; -1 for a poster in no cluster),
assets/maps/STEM/tiles/ (the map's imagery, a pyramid of 256-px tiles),
assets/maps/STEM/pairs/ (each pair side by side) and assets/posters/ and
assets/thumbs/ (links to the images shown). Open the map with: python -m http.server -d web, then
http://127.0.0.1:8000/index.html?data.json
"""


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="get_data_visu.py", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("-i", "--input", "--input_file", dest="input", default="data/features.h5",
                        metavar="FEATURES_H5", help="features written by get_features_from_cnn.py "
                                                    "(default: %(default)s)")
    parser.add_argument("--posters", default=None, metavar="POSTERS_CSV",
                        help="manifest written by get_posters.py (default: posters.csv beside the features)")
    parser.add_argument("-o", "--output", "--output_file", dest="output", default="web/data.json",
                        metavar="DATA_JSON", help="the map's data file (default: %(default)s)")
    parser.add_argument("--n-sample", "--n_sample", dest="n_sample", type=cli.non_negative_int, default=0,
                        metavar="N", help="map a seeded random sample of N posters (the original mapped 3000); "
                                          "0, the default, maps every poster")
    parser.add_argument("--one-per-movie", action="store_true",
                        help="keep one version of each movie (the lowest _verN)")
    parser.add_argument("--pca-components", "--pca_components", dest="pca_components", type=cli.positive_int,
                        default=50, metavar="N",
                        help="PCA components before t-SNE (default: %(default)s, as openTSNE advises; the "
                             "original whitened 1000, which mostly adds noise and time)")
    parser.add_argument("--perplexity", type=float, default=30.0,
                        help="t-SNE perplexity; lowered with a warning when too large for the sample "
                             "(default: %(default)s)")
    parser.add_argument("-t", "--tsne", choices=["opentsne", "multicore", "sklearn"], default="opentsne",
                        help="t-SNE backend (default: %(default)s)")
    parser.add_argument("--n-jobs", "--n_jobs", dest="n_jobs", type=cli.positive_int, default=None, metavar="N",
                        help="threads for t-SNE and image work (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same map (default: %(default)s)")
    parser.add_argument("--neighbors", type=cli.non_negative_int, default=8, metavar="K",
                        help="similar posters listed for each poster (default: %(default)s)")
    parser.add_argument("--similar-recall", type=cli.share, default=similarity.TARGET_RECALL, metavar="R",
                        help="above 5,000 posters similar posters come from the nearest lists of an inverted file, "
                             "more lists probed until they hold this share of the true ones on 1,000 tuning "
                             "posters (default: %(default)s); "
                             "lower is faster where similar posters are hard to tell apart, 0 takes the "
                             "narrowest search")
    parser.add_argument("--pairs", type=cli.non_negative_int, default=200, metavar="N",
                        help="closest pairs overall to write to pairs.json (default: %(default)s)")
    parser.add_argument("--grid", action="store_true",
                        help="also compute a grid layout: t-SNE positions snapped to a square grid")
    parser.add_argument("--no-pair-images", action="store_true",
                        help="skip the side-by-side images of the closest pairs")
    parser.add_argument("--clusters", choices=["auto", "0"], default="auto",
                        help="find the clusters of look-alike posters on the map, and the regions they "
                             "make (HDBSCAN's tree of the t-SNE positions), and write them to data.json and "
                             "clusters.csv; 0 skips both (default: %(default)s)")
    parser.add_argument("--min-cluster-size", type=cli.int_at_least(2), default=None, metavar="N",
                        help="the fewest posters a cluster may have (default: one poster in 300, at least 5)")
    parser.add_argument("--update", nargs="?", const="only", choices=["only", "auto"], default=None,
                        metavar="auto",
                        help="add the posters that the features file has and the map lacks, and remove those that "
                             "left, without moving any other poster (openTSNE places the new ones into the saved "
                             "embedding; only the tiles they touch are drawn again). It keeps the map's settings, "
                             "and refuses, in one line, what needs a full run: more new posters than a fifth of "
                             "the map, features made otherwise, other settings, a map with --grid or --n-sample. "
                             "--update=auto makes the map in full instead of refusing")
    parser.add_argument("--metadata", metavar="CSV", default=None,
                        help="more columns for the map, one row per poster, joined on its poster_id or file "
                             "column (the image's file name); each column with a few values becomes a category "
                             "the page colours and filters by (README: categories)")
    parser.add_argument("--force", action="store_true",
                        help="with --update: place the new posters even when they are many or far from the map")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def given_settings(argv) -> dict:
    """The map-shaping flags passed on the command line (not left at their defaults), as the map's state
    keeps them (posters_cnn.mapping.update.KEPT_SETTINGS: each flag and its key)."""
    from posters_cnn.mapping.update import KEPT_SETTINGS

    shaping = {flag[2:].replace("-", "_"): key for flag, key in KEPT_SETTINGS}  # argparse's dest -> key
    parser = build_parser()
    for action in parser._actions:  # argparse's documented way to leave an absent flag out of the namespace
        if action.dest in shaping:
            action.default = argparse.SUPPRESS
    explicit = vars(parser.parse_known_args(argv)[0])
    out = {}
    for dest, key in shaping.items():
        if dest in explicit:
            value = explicit[dest]
            if dest == "no_pair_images":
                value = not value
            elif dest == "clusters":
                value = value == "auto"
            out[key] = value
    return out


def body(args, argv=None) -> int:
    if args.force and not args.update:
        raise cli.UsageError("--force goes with --update")
    if not args.perplexity > 0:
        raise cli.UsageError(f"--perplexity: must be more than 0, got {args.perplexity}")
    from posters_cnn.mapping import stage as visu

    visu.check_output(args.output)  # before the lock makes its folder
    from tqdm import tqdm

    bars = []  # stage 3 makes its bar once it knows its steps (after reading): closed here, even on error

    def bar(total):
        bars.append(tqdm(total=total, desc="map", unit="step", leave=False,
                         bar_format="{desc}: {n}/{total} steps{postfix} [{elapsed}]"))
        return bars[-1]

    with cli.OutputLock(args.output), contextlib.ExitStack() as closing:  # one run per map at a time
        closing.callback(lambda: [b.close() for b in bars])
        if args.update:
            from posters_cnn.mapping import update

            try:
                done = update.update_map(args.input, args.posters, args.output, given=given_settings(argv),
                                         force=args.force, n_jobs=args.n_jobs, metadata=args.metadata)
            except update.NeedsFullRun as exc:
                if args.update != "auto":
                    raise
                cli.log.warning("making the map in full: %s", exc)
            else:
                if done["changed"]:
                    print(f"updated the map: {done['added']} posters added, {done['removed']} removed, "
                          f"{done['count']} now; {done['drawn']} of {done['tiles']} tiles drawn again, in "
                          f"{done['seconds']:.1f}s -> {args.output}")
                    if done["left_out"]:
                        print(left_out_line(done["left_out"], args.output))
                elif done["relabelled"]:
                    print(f"the map's posters are up to date ({done['count']}); its categories were read again "
                          f"-> {args.output}")
                else:
                    print(f"the map is up to date ({done['count']} posters): nothing to add or remove")
                print(view_hint(Path(args.output)))
                return 0
        summary = visu.make_map(args.input, args.posters, args.output, n_sample=args.n_sample,
                                one_per_movie=args.one_per_movie, pca_components=args.pca_components,
                                perplexity=args.perplexity, tsne=args.tsne, n_jobs=args.n_jobs, seed=args.seed,
                                neighbors=args.neighbors, similar_recall=args.similar_recall, pairs=args.pairs,
                                grid=args.grid,
                                pair_images=not args.no_pair_images, clusters=args.clusters == "auto",
                                min_cluster_size=args.min_cluster_size, metadata=args.metadata,
                                progress=None if args.no_progress else bar)
    found = "" if summary["clusters"] is None else f"{summary['clusters']} clusters, "
    resumed = f" (resumed: {', '.join(summary['resumed'])} from a stopped run)" if summary["resumed"] else ""
    print(f"mapped {summary['count']} posters (trustworthiness {summary['trustworthiness']:.3f}), {found}"
          f"{summary['pairs']} pairs, {summary['tiles']} tiles in {summary['seconds']:.1f}s{resumed} -> {args.output}")
    if summary["left_out"]:
        print(left_out_line(summary["left_out"], args.output))
    print(view_hint(Path(args.output)))
    return 0


def left_out_line(left_out: dict, output) -> str:
    """One line for the posters of the features file that are not on the map, and where their ids are."""
    total = sum(reason["count"] for reason in left_out.values())
    why = "; ".join(f"{reason} {got['count']}" for reason, got in left_out.items())
    posters = "poster" if total == 1 else "posters"
    return f"left out {total} {posters} ({why}): their ids are in {output}'s meta.selection.left_out"


def view_hint(output: Path) -> str:
    """How to look at the map: `make serve`'s address for a map under web/, else a server on a free port."""
    from posters_cnn.mapping import stage as visu

    folder = output.resolve().parent
    if folder == visu.WEB_DIR or visu.WEB_DIR in folder.parents:
        rel = folder.relative_to(visu.WEB_DIR).as_posix()
        page = "index.html" if rel == "." else f"{rel}/index.html"
        return f"view it: `make serve` (it serves web/), then open http://127.0.0.1:8000/{page}?{output.name}"
    port = free_port()
    return (f"view it: python3 -m http.server {port} --bind 127.0.0.1 --directory {shlex.quote(str(folder))}\n"
            f"then open http://127.0.0.1:{port}/index.html?{output.name}")


def free_port(first: int = 8000, tries: int = 100) -> int:
    """The first port from ``first`` that nothing listens on (8000 is often `make serve`'s)."""
    import socket

    for port in range(first, first + tries):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return first


def main(argv=None) -> int:
    return cli.run(build_parser(), lambda args: body(args, argv), argv,
                   interrupted="the earlier map is kept as it was (a run switches to its new map only when "
                               "it is complete); running again starts after the long steps this run finished "
                               "(PCA, similar posters, t-SNE)")


if __name__ == "__main__":
    sys.exit(main())
