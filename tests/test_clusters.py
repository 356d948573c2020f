"""Stage 3's clusters and regions: found on generated groups with known truth, written to data.json and clusters.csv."""

import csv

import jsonschema
import numpy as np
import pytest

from groups import hard_groups, no_group_island, score, write_stage2
from mapdata import read_map
from posters_cnn.mapping import clusters, layout, stage as visu

import get_data_visu


def run(*args):
    return get_data_visu.main([*map(str, args)])


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """Stage 3 run as a user runs it on 3,000 posters in 12 groups of sizes 25x apart, 3% in none."""
    folder = tmp_path_factory.mktemp("groups")
    features, truth = hard_groups(n=3000, seed=0)
    ids = write_stage2(folder, features)
    out = folder / "web" / "data.json"
    assert run("-i", folder / "features.h5", "-o", out, "--n-sample", 0, "--no-pair-images", "-q") == 0
    data = read_map(out)
    truth_of = dict(zip(ids, truth.tolist()))
    return out, data, truth_of, features


def read_clusters_csv(out, column="cluster"):
    with open(out.parent / "clusters.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {row["poster_id"]: int(row[column]) for row in rows}, list(rows[0].keys()) if rows else []


def test_clusters_csv_finds_the_true_groups(grouped):
    out, data, truth_of, _ = grouped
    found, header = read_clusters_csv(out)
    assert header == ["poster_id", "cluster", "region"]
    assert set(found) == set(truth_of)
    ids = sorted(found)
    ari, left_out = score([truth_of[i] for i in ids], [found[i] for i in ids])
    assert ari >= 0.9, ari
    assert left_out <= 0.10, left_out


def test_the_same_data_defeats_hdbscan_on_the_pca_space(grouped):
    """What makes the test hard: the naive choice, HDBSCAN on the 50-d PCA space, scores below 0.5."""
    from sklearn.cluster import HDBSCAN

    _, _, truth_of, features = grouped
    reduced, _, _ = layout.pca(features, 50, 0)
    labels = HDBSCAN(min_cluster_size=clusters.default_min_size(len(features)), copy=True).fit_predict(reduced)
    ari, _ = score(list(truth_of.values()), labels)
    assert ari < 0.5, ari


def test_meta_clusters_agree_with_the_csv_and_the_column(grouped):
    out, data, _, _ = grouped
    jsonschema.validate(data, visu.load_schema())
    found, _ = read_clusters_csv(out)
    column = dict(zip(data["columns"]["id"], data["columns"]["cluster"]))
    assert column == found
    listed = data["meta"]["clusters"]
    assert listed, "no cluster found"
    sizes = [c["size"] for c in listed]
    assert sizes == sorted(sizes, reverse=True)
    assert [c["id"] for c in listed] == list(range(len(listed)))
    year_of = dict(zip(data["columns"]["id"], data["columns"]["year"]))
    for c in listed:
        members = [pid for pid, label in found.items() if label == c["id"]]
        assert len(members) == c["size"]
        assert found[c["face"]] == c["id"] and c["examples"][0] == c["face"]
        assert len(c["examples"]) == 4 and all(found[pid] == c["id"] for pid in c["examples"])
        assert c["years"] == [min(year_of[p] for p in members), max(year_of[p] for p in members)]
        assert len(c["outline"]) >= 3
    meta = data["meta"]["clustering"]
    assert meta["count"] == len(listed)
    assert meta["unclustered"] == sum(1 for label in found.values() if label < 0)
    assert meta["min_cluster_size"] == clusters.default_min_size(3000)
    assert meta["seed"] == data["meta"]["seed"] and meta["chosen"]["scale"] in clusters.SCALES


def test_regions_hold_their_clusters_in_every_file(grouped):
    """The two levels agree: the CSV, the columns and meta; each cluster lies inside its region."""
    out, data, _, _ = grouped
    found, _ = read_clusters_csv(out)
    region, _ = read_clusters_csv(out, "region")
    cols = data["columns"]
    assert dict(zip(cols["id"], cols["region"])) == region
    regions, listed = data["meta"]["regions"], data["meta"]["clusters"]
    assert regions and [r["id"] for r in regions] == list(range(len(regions)))
    assert data["meta"]["clustering"]["regions"] == len(regions)
    sizes = [r["size"] for r in regions]
    assert sizes == sorted(sizes, reverse=True)
    for c in listed:
        members = [pid for pid, label in found.items() if label == c["id"]]
        assert {region[pid] for pid in members} == {c["region"]}, c["id"]
    for r in regions:
        members = [pid for pid, label in region.items() if label == r["id"]]
        assert len(members) == r["size"] and region[r["face"]] == r["id"]
        assert r["clusters"] == [c["id"] for c in listed if c["region"] == r["id"]]
        assert r["clusters"], "a region without a cluster"
        assert sum(c["size"] for c in listed if c["region"] == r["id"]) <= r["size"]
    # A poster in no region is in no cluster.
    assert all(found[pid] < 0 for pid, label in region.items() if label < 0)


def test_outline_holds_every_member_and_the_centroid(grouped):
    from matplotlib.path import Path as Polygon

    _, data, _, _ = grouped
    cols = data["columns"]
    xy = np.column_stack([cols["x"], cols["y"]])
    label = np.array(cols["cluster"])
    for c in data["meta"]["clusters"]:
        polygon = Polygon(np.array(c["outline"]))
        inside = polygon.contains_points(xy[label == c["id"]], radius=1e-4) | \
            polygon.contains_points(xy[label == c["id"]], radius=-1e-4)
        assert inside.all(), c["id"]
        assert polygon.contains_point(c["centroid"])


def test_clusters_0_writes_no_clusters_and_removes_an_old_csv(tmp_path):
    features, _ = hard_groups(n=200, groups=3, dim=256, seed=1)
    write_stage2(tmp_path, features)
    out = tmp_path / "web" / "data.json"
    assert run("-i", tmp_path / "features.h5", "-o", out, "--no-pair-images", "-q") == 0
    assert (out.parent / "clusters.csv").exists()
    assert run("-i", tmp_path / "features.h5", "-o", out, "--no-pair-images", "--clusters", "0", "-q") == 0
    data = read_map(out)
    jsonschema.validate(data, visu.load_schema())
    assert "cluster" not in data["columns"] and "clusters" not in data["meta"]
    assert not (out.parent / "clusters.csv").exists()


def test_min_cluster_size_is_honoured(tmp_path):
    features, _ = hard_groups(n=400, groups=4, dim=256, seed=2)
    write_stage2(tmp_path, features)
    out = tmp_path / "data-big.json"
    assert run("-i", tmp_path / "features.h5", "-o", out, "--no-pair-images", "--min-cluster-size", 60, "-q") == 0
    data = read_map(out)
    assert data["meta"]["clustering"]["min_cluster_size"] == 60
    assert all(c["size"] >= 60 for c in data["meta"]["clusters"])
    assert (tmp_path / "clusters-big.csv").exists()  # named after the map, as pairs-big.json is


@pytest.mark.parametrize("args, message", [
    (["--min-cluster-size", "1"], "must be 2 or more"),
    (["--min-cluster-size", "0"], "must be 2 or more"),
    (["--min-cluster-size", "-3"], "must be 2 or more"),
    (["--min-cluster-size", "ten"], "expected a whole number"),
    (["--min-cluster-size", "2.5"], "expected a whole number"),
    (["--clusters", "7"], "invalid choice"),
])
def test_bad_cluster_flags_get_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        run("-i", tmp_path / "missing.h5", "-o", tmp_path / "data.json", *args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "data.json").exists()


def test_too_few_points_for_a_cluster_are_all_left_out():
    found = clusters.find(np.zeros((3, 2)), 5)
    assert found.labels.tolist() == [-1, -1, -1] and found.regions.tolist() == [-1, -1, -1]
    assert len(found.region_of) == 0


def _disc(rng, centre, radius, count):
    r = radius * np.sqrt(rng.uniform(0, 1, count))
    t = rng.uniform(0, 2 * np.pi, count)
    return np.column_stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_even_island_is_not_cut_at_its_ripples(seed):
    """A map that is one even disc has no cluster to show: its density tree splits only at ripples.
    (HDBSCAN's leaves cut it into dozens.)"""
    disc = _disc(np.random.default_rng(seed), (0, 0), 1.0, 3000)
    assert clusters.find(disc, 10).labels.max() < 0


@pytest.mark.parametrize("count, seed", [(300, 0), (800, 1), (2000, 2)])
def test_islands_that_touch_stay_apart_and_each_lies_in_one_region(count, seed):
    """Two islands a few posters apart, far from two others: four clusters, whatever the islands' size;
    each cluster lies in one region, and the two close ones in the same region."""
    rng = np.random.default_rng(seed)
    spacing = np.sqrt(np.pi / count)  # between neighbouring posters inside an island of radius 1
    centres = [(0, 0), (2 + 4 * spacing, 0), (12, 0), (12, 12)]
    points = np.concatenate([_disc(rng, c, 1.0, count) for c in centres])
    truth = np.repeat(np.arange(4), count)
    found = clusters.find(points, clusters.default_min_size(len(points)))
    ari, left_out = score(truth, found.labels)
    assert ari >= 0.95 and left_out <= 0.05, (ari, left_out)
    assert found.labels.max() == 3
    for k in range(4):
        assert set(found.regions[found.labels == k]) == {found.region_of[k]}
    pair = {found.labels[truth == 0][0], found.labels[truth == 1][0]}
    assert len({found.region_of[k] for k in pair}) == 1


def _three_islands(rng, count=400):
    points = np.concatenate([_disc(rng, c, 1.0, count) for c in [(0, 0), (5, 0), (0, 5)]])
    truth = np.repeat(np.arange(3), count)
    return points, truth


def test_an_island_whose_posters_look_like_nothing_in_particular_is_no_cluster(caplog):
    """Three islands on the map; the posters of two look like each other (their similar posters lie in
    their own island), those of the third like posters anywhere on the map (as t-SNE gathers posters that
    look like no other). The third is left out, said in the log and in the choice; without similar
    posters it stays a cluster."""
    rng = np.random.default_rng(5)
    points, truth = _three_islands(rng)
    similar = np.empty((len(points), 8), dtype=np.int64)
    for i, island in enumerate(truth):
        pool = np.flatnonzero(truth == island) if island < 2 else np.arange(len(points))
        similar[i] = rng.choice(pool[pool != i], 8, replace=False)
    with caplog.at_level("INFO", logger="posters_cnn.mapping.clusters"):
        found = clusters.find(points, 25, similar)
    assert (found.labels[truth == 2] == -1).all()
    for island in (0, 1):
        assert len(set(found.labels[truth == island])) == 1 and found.labels[truth == island][0] >= 0
    assert found.labels.max() == 1 and len(found.region_of) == 2
    assert set(found.regions[truth == 2]) == {-1}
    [island] = found.choice["left_out"]
    assert island["size"] == 400 and island["odds"] < clusters.LOOKALIKE_ODDS
    assert any("an island of 400 posters left out" in r.getMessage() for r in caplog.records)
    assert clusters.find(points, 25).labels.max() == 2
    assert clusters.find(points, 25, similar[:, :0]).labels.max() == 2


def test_posters_of_no_group_make_no_cluster_through_stage_3(tmp_path):
    """Stage 3 as a user runs it on 1,500 posters in 10 groups, 10% in no group (each looks like no other):
    t-SNE gathers those into an island of their own, which no cluster of clusters.csv is made of."""
    features, truth = no_group_island()
    ids = write_stage2(tmp_path, features)
    out = tmp_path / "web" / "data.json"
    assert run("-i", tmp_path / "features.h5", "-o", out, "--n-sample", 0, "--no-pair-images", "-q") == 0
    found, _ = read_clusters_csv(out)
    truth_of = dict(zip(ids, truth.tolist()))
    for label in set(found.values()) - {-1}:
        members = [truth_of[pid] for pid, k in found.items() if k == label]
        assert sum(t < 0 for t in members) < len(members) / 2, (label, len(members))
    ari, left_out = score([truth_of[i] for i in ids], [found[i] for i in ids])
    assert ari >= 0.95 and left_out <= 0.05, (ari, left_out)
    meta = read_map(out)["meta"]["clustering"]
    assert "lookalike_rule" in meta and all(i["odds"] < clusters.LOOKALIKE_ODDS for i in meta["left_out"])
    # The island t-SNE made of them was seen and left out: most of the 150 posters of no group are on it.
    assert sum(i["size"] for i in meta["left_out"]) >= 75, meta["left_out"]


def test_lookalike_odds_against_chance():
    """A cluster of 4 of 10 posters: a member's similar poster lies in it by chance with probability 3/9."""
    labels = np.array([0, 0, 0, 0, -1, -1, -1, -1, -1, -1])
    inside = [[1, 2], [0, 2], [3, 0], [2, 1]]  # every similar poster inside: odds infinite
    half = [[1, 5], [0, 6], [3, 7], [2, 8]]  # half inside: odds 1 against chance's 3/6
    rest = [[0, 1]] * 6
    assert clusters.lookalike_odds(labels, np.array(inside + rest)).tolist() == [np.inf]
    assert clusters.lookalike_odds(labels, np.array(half + rest)) == pytest.approx([2.0])


def test_the_choice_and_its_reason_are_logged(caplog):
    rng = np.random.default_rng(3)
    points = np.concatenate([_disc(rng, c, 1.0, 400) for c in [(0, 0), (5, 0), (0, 5)]])
    with caplog.at_level("INFO", logger="posters_cnn.mapping.clusters"):
        found = clusters.find(points, 25)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("clusters: 3 in"))
    chosen = found.choice["chosen"]
    assert f"density over {chosen['scale']} neighbours" in line and f"at most {chosen['valley']:g}" in line
    assert "agreed most with the others" in line
    assert [(c["scale"], c["valley"]) for c in found.choice["candidates"]] == [
        (scale, valley) for scale in (5, 10, 25) for valley in clusters.VALLEYS]


@pytest.mark.parametrize("n, min_size, scales", [
    (30, 5, [5]),  # a tiny map: no more than its smallest cluster
    (500, 5, [5]),
    (999, 5, [5, 9]),  # one neighbour more per 100 posters beside the finest,
    (1000, 5, [5, 10]),  # and from 1,000 posters never under 10 beside it: alone, 5 neighbours split at ripples
    (3000, 10, [5, 10]),
    (10_000, 33, [5, 10, 25]),
    (300_000, 1000, [5, 10, 25]),
    (10_000, 8, [5, 10]),  # a smaller minimum asked for: the coarser scales follow it, but not under 10
])
def test_the_density_scales_follow_the_map(n, min_size, scales):
    assert clusters.density_scales(n, min_size) == scales


def test_regions_are_whole_branches_cut_from_the_top():
    """A split is cut only after the one above it: a valley below that rounding makes a hair deeper than the
    one above (three islands about equally far apart) does not part every island at once."""
    from posters_cnn.mapping.clusters import _region_tops

    # 0 splits into 1 and 2; 2 splits into 3 and 4, a hair deeper. Three clusters: about sqrt(3), 2 regions.
    splits = {0: (0.5, [1, 2]), 2: (0.4999, [3, 4])}
    assert _region_tops([1, 3, 4], splits) == [1, 2, 2]
    # Nine clusters under a top split and two below it: three regions, each a whole branch.
    splits = {0: (0.3, [1, 2]), 1: (0.1, [10, 11]), 2: (0.2, [20, 21]),
              10: (0.5, [100, 101, 102]), 11: (0.5, [110, 111]), 20: (0.6, [200, 201]), 21: (0.7, [210, 211])}
    leaves = [100, 101, 102, 110, 111, 200, 201, 210, 211]
    assert _region_tops(leaves, splits) == [10, 10, 10, 11, 11, 2, 2, 2, 2]
    # A map of one cluster, or clusters that never split, is one region.
    assert _region_tops([5], {}) == [5]
