"""Clusters of look-alike posters, and the regions they make, found on the map itself.

The clusters are found on the map's own 2-D t-SNE positions, so a cluster is a group a
person sees as one island of the map: in the 50-d PCA space that t-SNE starts from, the
density that a density-based method looks for is flattened out (on generated groups,
HDBSCAN there scored an adjusted Rand index of 0.12 against 0.98 on the map).

**The density tree.** HDBSCAN (the ``hdbscan`` package, for its public condensed tree and its
2-D speed: 13 s at 300,000 posters against minutes for scikit-learn's) estimates each poster's
density from its distance to its ``scale``-th neighbour and builds the condensed tree: how the
map falls apart into parts of at least the minimum cluster size as the density level rises.

**Where the map really splits: valleys.** At each split of the tree the density at the split
(the valley) is compared with the typical density on each side (the median level at which that
side's posters leave the tree). A side stands out when the valley is at most ``valley`` times its
typical density. The clusters are what the splits where every side stands out leave:
- every side stands out: the parts are separate clusters (or split further);
- one side stands out: the tree goes on as that side; the other, flatter side (a fringe, or a
  sparse spread of unrelated posters) belongs to no cluster;
- no side stands out: the part is one cluster, whatever happens inside it.
HDBSCAN's own choice, "excess of mass", compares areas under the density instead, and joins two
islands whenever their pair lies far from the rest of the map: on a long tail of group sizes it
found 8 of 24 islands. Its other choice, the leaves, splits one large island at every ripple.

**Which valley depth and scale: the one the others agree with.** Three density scales (5, 10 and
25 neighbours; see ``density_scales`` for small maps and small clusters) and three valley depths
(0.4, 0.5, 0.6 of the density on each side) give up to nine clusterings; the one with the highest
mean agreement (adjusted Rand index) with the others is kept. No single setting was right on every
collection tried; the agreed one is stable where one setting alone flips between two readings of
the map. The density over 5 neighbours is noisy (see ``density_scales``): alone it splits islands at
their ripples, but as one reading among several it is outvoted there, and it is the one that sees
islands of a few dozen posters on a map of a thousand. ``bench/bench_cluster_family.py`` measures
the rule on collections of 1,000 to 300,000 posters and 5 to 60 groups.

**Islands of posters that look like nothing in particular are no cluster.** t-SNE lays posters that
look like no other side by side (on most generated collections with 5-10% of posters in no group,
those made an island of their own), and the density tree sees an island. A cluster is a set of posters that
look alike, so the posters its members look most like (their similar posters, from the features,
as the page shows them) should lie inside it far more often than chance would put them there: a
cluster where the odds are less than LOOKALIKE_ODDS (2) times chance's (its share of the map) is left
out, its posters in no cluster. On the generated collections of up to 30,000 posters (87 maps), the 30
islands made mostly of posters of no group scored 0.82-1.87, the 1,568 clusters that match a true
group 4.8 and up; where the map has no similar posters (``similar`` not given) nothing is left out.

**Regions.** The real splits form a tree of the clusters. It is cut from its top, each time at the
deepest valley among the splits of the regions so far, until it falls into about sqrt(K) regions for
K clusters (150 clusters: 13 regions), so that each level of the Clusters panel is a list a person
can scan. Neighbouring clusters, parted by shallow valleys, share a region; each region is a whole
branch of the tree, and each cluster lies in exactly one. A region's posters are those of its clusters.

A cluster or a region is described by its size, its face (the member nearest the middle of it in
the PCA space, its most typical poster), its most central members, its years, and a centroid and
a convex outline in map coordinates.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

EXAMPLES = 4
# The smallest cluster: one poster in 300, and at least 5. Over sizes 3,000 to 30,000, and group
# sizes 25x apart, that kept the smallest true groups and did not split big islands (bench_clusters.py).
MIN_SIZE_SHARE = 300
MIN_SIZE_FLOOR = 5
SCALES = (5, 10, 25)
SCALE_FLOOR = 10
VALLEYS = (0.4, 0.5, 0.6)
LOOKALIKE_ODDS = 2.0


def default_min_size(n: int) -> int:
    return max(MIN_SIZE_FLOOR, round(n / MIN_SIZE_SHARE))


def density_scales(n: int, min_size: int) -> list[int]:
    """The neighbours each density is estimated over: SCALES, but no more than the minimum cluster size
    (a density over more neighbours than a small cluster has members blurs it away), and, but for the
    finest, never fewer than SCALE_FLOOR on a map of 100 x SCALE_FLOOR posters or more: a density over
    k neighbours varies by about 1/sqrt(k) (45% at 5), enough to make an island's ripples look like
    valleys, so the finest reading is one among coarser ones on a map of 600 posters or more, or with a
    minimum cluster size over 5; a smaller map has that density alone."""
    cap = max(min_size, min(SCALE_FLOOR, n // 100))
    return sorted({min(scale, cap, n - 1) for scale in SCALES})


@dataclass
class Clustering:
    """The clusters and regions of a map.

    ``labels``: each poster's cluster, numbered 0, 1, ... largest first, -1 for none;
    ``region_of``: each cluster's region (indexed by cluster); ``regions``: each poster's region (its
    cluster's), numbered largest first, -1 for none; ``choice``: how the setting was chosen, for the meta.
    """

    labels: np.ndarray
    region_of: np.ndarray
    regions: np.ndarray
    choice: dict = field(default_factory=dict)


def find(coords: np.ndarray, min_size: int, similar: np.ndarray | None = None) -> Clustering:
    """The clusters and regions of the map positions ``coords`` (n x 2), none smaller than ``min_size``.
    ``similar`` (n x k rows of the map), each poster's similar posters in the features: a cluster whose
    members' similar posters lie in it at less than LOOKALIKE_ODDS times the odds of chance is left out."""
    coords = np.asarray(coords, dtype=np.float64)
    n = coords.shape[0]
    if n < max(2, min_size) or n < 3:
        return _nothing(n, "too few posters to cluster")
    candidates = []
    for scale in density_scales(n, min_size):
        tree = Tree.of(coords, min_size, scale)
        for valley in VALLEYS:
            labels, leaves, splits = tree.clusters(valley)
            candidates.append({"scale": scale, "valley": valley, "labels": labels, "leaves": leaves,
                               "splits": splits})
    agree = np.zeros(len(candidates))
    for a in range(len(candidates)):
        for b in range(a + 1, len(candidates)):
            value = agreement(candidates[a]["labels"], candidates[b]["labels"])
            agree[a] += value
            agree[b] += value
    agree /= max(1, len(candidates) - 1)
    best = candidates[int(np.argmax(agree))]  # ties: the first, the finer scale and the deeper valley
    if best["labels"].max(initial=-1) < 0:
        return _nothing(n, "no part of the map stands out from the rest")
    raw, leaves, left_out = _look_alike(best["labels"], best["leaves"], similar)
    if raw.max(initial=-1) < 0:
        return _nothing(n, "no island's posters look alike more than chance says")
    labels, order = _by_size(raw)
    leaves = [leaves[old] for old in order]
    tops = np.array(_region_tops(leaves, best["splits"]), dtype=np.int64)
    regions, order = _by_size(np.where(labels >= 0, tops[np.maximum(labels, 0)], -1))
    number = {top: i for i, top in enumerate(order)}
    region_of = np.array([number[int(top)] for top in tops], dtype=np.int32)
    choice = {
        "cluster_rule": "valleys: a split where every side's typical density is at least 1/valley times the density "
                "at the split; of the candidate settings, the one agreeing most with the others",
        "candidates": [{"scale": c["scale"], "valley": c["valley"], "clusters": int(len(c["leaves"])),
                        "agreement": round(float(a), 4)} for c, a in zip(candidates, agree)],
        "chosen": {"scale": best["scale"], "valley": best["valley"]},
        "lookalike_rule": f"an island is left out when its posters' similar posters lie in it at less than "
                          f"{LOOKALIKE_ODDS:g} times the odds of chance (its share of the map)",
        "left_out": left_out,
        "region_rule": "the clusters' tree cut from its top, each time at the deepest valley among the splits of "
                       "the regions so far, into about the square root of the number of clusters",
    }
    log.info("clusters: %d in %d regions; density over %d neighbours, valleys at most %g of the density on "
             "each side, the setting of %d that agreed most with the others (adjusted Rand index %.3f)",
             int(labels.max()) + 1, int(region_of.max()) + 1, best["scale"], best["valley"], len(candidates),
             float(agree.max()))
    return Clustering(labels.astype(np.int32), region_of, regions.astype(np.int32), choice)


def lookalike_odds(labels: np.ndarray, similar: np.ndarray) -> np.ndarray:
    """For each cluster of ``labels`` (-1: none): the odds that a member's similar poster (``similar``, n x k
    rows) lies in the cluster, over the odds chance gives (a poster drawn from the rest of the map lands in
    it with probability (size - 1) / (n - 1)). inf where every similar poster lies inside."""
    labels = np.asarray(labels, dtype=np.int64)
    similar = np.asarray(similar, dtype=np.int64)
    n, count = labels.shape[0], int(labels.max(initial=-1)) + 1
    members = labels >= 0
    inside = (labels[similar[members]] == labels[members, None]).sum(axis=1)
    size = np.bincount(labels[members], minlength=count)
    hit = np.bincount(labels[members], weights=inside, minlength=count) / np.maximum(size * similar.shape[1], 1)
    chance = (size - 1) / max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (hit / (1 - hit)) / (chance / (1 - chance))
    return np.where(hit >= 1, np.inf, np.nan_to_num(odds, nan=0.0, posinf=np.inf))


def _look_alike(raw: np.ndarray, leaves: list[int], similar: np.ndarray | None
                ) -> tuple[np.ndarray, list[int], list[dict]]:
    """The clusters whose posters look alike (see the module docstring): (labels, their leaves, and the
    islands left out: their size and odds)."""
    if similar is None or not np.asarray(similar).size:
        return raw, leaves, []
    odds = lookalike_odds(raw, similar)
    weak = odds < LOOKALIKE_ODDS
    if not weak.any():
        return raw, leaves, []
    sizes = np.bincount(raw[raw >= 0], minlength=len(leaves))
    left_out = [{"size": int(sizes[c]), "odds": round(float(odds[c]), 2)} for c in np.flatnonzero(weak)]
    for island in left_out:
        log.info("clusters: an island of %d posters left out: their similar posters lie in it at %.2f times the "
                 "odds of chance (at least %g for a cluster)", island["size"], island["odds"], LOOKALIKE_ODDS)
    number = np.cumsum(~weak) - 1
    number[weak] = -1
    return (np.where(raw >= 0, number[np.maximum(raw, 0)], -1), [leaf for leaf, w in zip(leaves, weak) if not w],
            left_out)


def _region_tops(leaves: list[int], splits: dict[int, tuple[float, list[int]]]) -> list[int]:
    """Each cluster's region, named by the top part of the clusters' tree it holds.

    The clusters' tree (``splits``) is cut from its top, each time at the deepest valley among the splits
    of the regions so far, until it falls into about the square root of the number of clusters: as many
    regions as a region has clusters. A split is cut only after the one above it, so that every region is
    a whole branch of the tree, and a cut adds the parts of one split: where two valleys are about as deep
    (three islands about equally far apart), rounding cannot make a split below be cut first, which would
    part the islands above it as well.
    """
    k = len(leaves)
    want = max(1, math.ceil(math.sqrt(k)))
    parent = {}
    for node, (_, kids) in splits.items():
        for kid in kids:
            parent[kid] = node
    cut: set[int] = set()

    def region_of_leaf(leaf):
        node = leaf
        while node in parent and parent[node] not in cut:
            node = parent[node]
        return node

    while len({region_of_leaf(leaf) for leaf in leaves}) < want:
        open_splits = [node for node in splits if node not in cut and (node not in parent or parent[node] in cut)]
        if not open_splits:
            break
        cut.add(min(open_splits, key=lambda node: (splits[node][0], node)))
    return [region_of_leaf(leaf) for leaf in leaves]


def _nothing(n: int, why: str) -> Clustering:
    log.info("clusters: none (%s)", why)
    return Clustering(np.full(n, -1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.full(n, -1, dtype=np.int32),
                      {"chosen": None, "why": why})


def _by_size(raw: np.ndarray) -> tuple[np.ndarray, list]:
    """Labels renumbered 0, 1, ... largest first (ties: the lower old label first), and the old label
    of each new one, in the new order."""
    labels = np.full(raw.shape[0], -1, dtype=np.int64)
    members = raw >= 0
    if not members.any():
        return labels, []
    old, inverse, counts = np.unique(raw[members], return_inverse=True, return_counts=True)
    order = np.lexsort((old, -counts))
    rank = np.empty(len(old), dtype=np.int64)
    rank[order] = np.arange(len(old))
    labels[members] = rank[inverse]
    return labels, old[order].tolist()


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two clusterings, each poster in no cluster counted as a group of its own."""
    from sklearn.metrics import adjusted_rand_score

    def apart(labels):
        labels = np.asarray(labels, dtype=np.int64).copy()
        out = labels < 0
        labels[out] = labels.max(initial=-1) + 1 + np.arange(out.sum())
        return labels

    return float(adjusted_rand_score(apart(a), apart(b)))


class Tree:
    """HDBSCAN's condensed tree of a map, and the selections made from it.

    Node ids are HDBSCAN's: posters are 0 .. n-1, the parts n, n+1, ... (the root is n, and a part's
    children have higher ids than it). ``birth[c]`` is the density level (lambda, 1 / distance) at
    which part c split from its parent.
    """

    def __init__(self, raw, n: int):
        parent = np.asarray(raw["parent"], dtype=np.int64)
        child = np.asarray(raw["child"], dtype=np.int64)
        level = np.asarray(raw["lambda_val"], dtype=np.float64)
        self.n = n
        self.root = n
        self.top = int(max(parent.max(initial=n), child.max(initial=n))) + 1
        part = child >= n
        self.kids: list[list[int]] = [[] for _ in range(self.top)]
        self.birth = np.zeros(self.top)
        for p, c, lam in zip(parent[part], child[part], level[part]):
            self.kids[p].append(int(c))
            self.birth[c] = lam
        # Each poster: the part it leaves the tree from, and the level at which it does.
        self.point = child[~part]
        self.point_part = parent[~part]
        self.point_level = level[~part]
        # Parts in depth-first order, so that a part's posters are one slice of the posters sorted by it.
        order, stack = [], [self.root]
        while stack:
            c = stack.pop()
            order.append(c)
            stack.extend(reversed(self.kids[c]))
        position = np.full(self.top, -1, dtype=np.int64)
        position[order] = np.arange(len(order))
        self.preorder = order
        last = position.copy()  # the last descendant's position, for each part
        for c in reversed(order):
            for k in self.kids[c]:
                last[c] = max(last[c], last[k])
        by = np.argsort(position[self.point_part], kind="stable")
        self.sorted_levels = self.point_level[by]
        keys = position[self.point_part][by]
        self.start = np.searchsorted(keys, position, side="left")
        self.stop = np.searchsorted(keys, last, side="right")
        self._typical: dict[int, float] = {}

    @classmethod
    def of(cls, coords: np.ndarray, min_size: int, scale: int) -> Tree:
        import hdbscan

        model = hdbscan.HDBSCAN(min_cluster_size=min_size, min_samples=scale, core_dist_n_jobs=1)
        model.fit(coords)
        return cls(model.condensed_tree_.to_numpy(), coords.shape[0])

    def typical(self, c: int) -> float:
        """The median level at which the posters of part c (and of its sub-parts) leave the tree."""
        if c not in self._typical:
            levels = self.sorted_levels[self.start[c]:self.stop[c]]
            self._typical[c] = float(np.median(levels)) if levels.size else math.inf
        return self._typical[c]

    def stands_out(self, c: int, valley: float) -> bool:
        # In 2-D, density goes as the square of the level (1 / distance).
        return self.birth[c] ** 2 <= valley * self.typical(c) ** 2

    def clusters(self, valley: float) -> tuple[np.ndarray, list[int], dict[int, tuple[float, list[int]]]]:
        """Each poster's cluster (the index into the returned parts, -1 for none), the parts, and the
        real splits: for each part that split, the depth of its valley (the density at the split over
        the typical density of its shallowest side) and the parts it split into."""
        none = -1
        owner = np.full(self.top, none, dtype=np.int64)  # the cluster-to-be each part belongs to
        owner[self.root] = self.root
        splits = {}
        for c in self.preorder:  # parents before children
            kids = self.kids[c]
            if not kids:
                continue
            if owner[c] == none:
                owner[kids] = none
                continue
            out = [k for k in kids if self.stands_out(k, valley)]
            if len(out) >= 2:
                depth = max((self.birth[k] / self.typical(k)) ** 2 for k in out)
                splits[int(owner[c])] = (float(depth), out)
                for k in kids:
                    owner[k] = k if k in out else none
            elif len(out) == 1:
                for k in kids:
                    owner[k] = owner[c] if k in out else none
            else:
                owner[kids] = owner[c]
        leaves = sorted({int(o) for o in owner[self.n:]} - set(splits) - {none, self.root})
        index = np.full(self.top, -1, dtype=np.int64)
        index[leaves] = np.arange(len(leaves))
        labels = np.full(self.n, -1, dtype=np.int64)
        part_owner = owner[self.point_part]
        inside = part_owner >= 0
        labels[self.point[inside]] = index[part_owner[inside]]
        return labels, leaves, splits


def describe(labels: np.ndarray, coords: np.ndarray, reduced: np.ndarray, ids: list[str], years: list) -> list[dict]:
    """One description per cluster (or region), in label order (largest first); posters are named by their ids."""
    out = []
    labels = np.asarray(labels)
    count = int(labels.max()) + 1 if labels.size else 0
    by = np.argsort(labels, kind="stable")  # each cluster's members, one slice each, in map order
    bounds = np.searchsorted(labels[by], np.arange(count + 1))
    for c in range(count):
        members = by[bounds[c]:bounds[c + 1]]
        points = reduced[members].astype(np.float64)
        distance = np.linalg.norm(points - points.mean(axis=0), axis=1)
        central = members[np.argsort(distance, kind="stable")[:EXAMPLES]]
        known = [int(years[i]) for i in members if _is_year(years[i])]
        xy = coords[members]
        out.append({
            "id": c, "size": int(len(members)), "face": ids[central[0]],
            "examples": [ids[i] for i in central],
            "years": [min(known), max(known)] if known else None,
            "centroid": [round(float(v), 5) for v in xy.mean(axis=0)],
            "outline": outline(xy),
        })
    return out


def outline(xy: np.ndarray) -> list[list[float]]:
    """The convex hull of the points, counter-clockwise, rounded to map precision."""
    pts = np.unique(np.round(np.asarray(xy, dtype=np.float64), 5), axis=0)
    if len(pts) < 3:
        return pts.tolist()
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(pts)
    except QhullError:  # all on a line
        ends = pts[[np.argmin(pts[:, 0] + pts[:, 1]), np.argmax(pts[:, 0] + pts[:, 1])]]
        return ends.tolist()
    return pts[hull.vertices].tolist()


def _is_year(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def csv_text(ids: list[str], labels: np.ndarray, regions: np.ndarray) -> str:
    """``poster_id,cluster,region`` for every poster of the map, in the map's order (-1: none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["poster_id", "cluster", "region"])
    writer.writerows(zip(ids, np.asarray(labels).tolist(), np.asarray(regions).tolist()))
    return buffer.getvalue()
