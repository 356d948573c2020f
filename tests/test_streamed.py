"""Stage 3's unit rows past their memory budget go to a file beside the map's checkpoints: the same similar
posters as when they are held, and no file left behind, whether the run ends, fails or is stopped."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mapdata import make_mapdata, read_map
from posters_cnn.contracts import store
from posters_cnn.contracts.store import FeatureWriter
from posters_cnn.mapping import similarity, stage as visu, streamed

import get_data_visu


def clustered(n, dim=256, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (5, dim))
    return np.maximum(centres[rng.integers(0, 5, n)] + rng.normal(0, 1, (n, dim)), 0).astype(np.float32)


def features_file(path, rows):
    writer = FeatureWriter(path, rows.shape[1], {"weights": "random(seed=0)"})
    writer.append([f"a/{i}" for i in range(len(rows))], rows)
    writer.close()
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.rglob(f".{streamed.SPILL_NAME}.*"))


def test_rows_on_disk_find_the_same_similar_posters_as_rows_held(tmp_path, monkeypatch):
    rows = clustered(600)
    path = features_file(tmp_path / "f.h5", rows)
    monkeypatch.setattr(streamed, "FLOAT32_MAX_BYTES", 1)  # held in float16, as the file keeps them
    held, _ = streamed.read(path, np.arange(600), spill=tmp_path / "spill")
    assert isinstance(held.unit, np.ndarray) and held.unit.dtype == np.float16
    monkeypatch.setattr(streamed, "MEMORY_MAX_BYTES", 1)
    spilled, finite = streamed.read(path, np.arange(600), spill=tmp_path / "spill")
    assert finite.all() and isinstance(spilled.unit, streamed.RowsOnDisk)
    assert len(leftovers(tmp_path / "spill")) == 1
    assert np.array_equal(spilled.unit[:], held.unit) and np.array_equal(spilled.unit[[5, 3]], held.unit[[5, 3]])
    assert (spilled.n, spilled.dim) == (600, 256) and np.array_equal(spilled.gram, held.gram)

    monkeypatch.setattr(similarity, "EXACT_MAX", 100)  # the inverted file's search, as above 5,000 posters
    groups = np.arange(600) // 2
    want = similarity.neighbours_and_pairs(held.unit, k=5, n_pairs=20, groups=groups, normalized=True)
    got = similarity.neighbours_and_pairs(spilled.unit, k=5, n_pairs=20, groups=groups, normalized=True)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2]
    exact = similarity.neighbours_and_pairs(rows, k=5, n_pairs=0)[0]
    assert np.mean(got[0] == exact) > 0.95
    assert similarity.recall(spilled.unit, got[0], normalized=True) == similarity.recall(held.unit, want[0],
                                                                                       normalized=True)
    spilled.drop_unit_rows()
    assert spilled.unit is None and spilled.n == 600 and leftovers(tmp_path / "spill") == []


def test_rows_on_disk_read_the_rows_an_array_holds_for_every_way_the_search_selects_them(tmp_path):
    rows = np.random.default_rng(3).normal(size=(300, 16)).astype(np.float16)
    path = tmp_path / "rows.f16"
    rows.tofile(path)
    spilled = streamed.RowsOnDisk(path, *rows.shape)
    keys = [slice(0, 128), slice(250, 400), slice(5, 5), slice(None, None, 7), slice(299, 0, -3), 4, -1,
            np.array([9, 3, 9, -2]), np.array([[1, 2, 3], [299, 0, 1]]), np.arange(10),
            (np.array([4, 8]), slice(None), None), (slice(10, 20), slice(2, 5)), np.array([], np.int64)]
    for key in keys:
        got = spilled[key]
        assert got.dtype == np.float16 and np.array_equal(got, rows[key]), key
    for bad in (np.array([300]), np.array([-301]), np.array([0.5])):
        with pytest.raises(IndexError):
            spilled[bad]


def test_a_stop_while_reading_leaves_no_rows_file(tmp_path, monkeypatch):
    path = features_file(tmp_path / "f.h5", clustered(300))
    monkeypatch.setattr(streamed, "MEMORY_MAX_BYTES", 1)
    real = store.iter_rows

    def stopped(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 1:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(store, "iter_rows", stopped)
    with pytest.raises(KeyboardInterrupt):
        streamed.read(path, np.arange(300), block=100, spill=tmp_path / "spill")
    assert (tmp_path / "spill").is_dir() and leftovers(tmp_path / "spill") == []


def test_stage3_with_its_rows_on_disk_makes_the_map_it_makes_with_them_held(tmp_path, monkeypatch):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    monkeypatch.setattr(streamed, "FLOAT32_MAX_BYTES", 1)
    held = tmp_path / "held" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "-o", str(held), "-q"]) == 0
    monkeypatch.setattr(streamed, "MEMORY_MAX_BYTES", 1)
    seen = []
    real = visu.similar_posters

    def watched(features, *args, **kwargs):
        seen.append(type(features.unit))
        seen.extend(leftovers(tmp_path / "disk"))  # the rows' file, where the map's checkpoints go
        return real(features, *args, **kwargs)

    monkeypatch.setattr(visu, "similar_posters", watched)
    disk = tmp_path / "disk" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "-o", str(disk), "-q"]) == 0
    assert seen[0] is streamed.RowsOnDisk and len(seen) == 2
    assert leftovers(tmp_path / "disk") == []
    columns = [read_map(path)["columns"] for path in (held, disk)]
    for name in ("id", "neighbors", "similarity", "x", "y"):
        assert columns[0][name] == columns[1][name], name


def test_a_search_answer_short_of_candidates_is_filled_never_with_the_row_itself():
    found = np.array([[0, 3, -1, -1], [2, 1, 0, 3], [-1, -1, -1, -1]])  # -1: nothing more found
    out = similarity.without_self(found, np.array([0, 1, 2]), 3)
    assert out.tolist() == [[3, 1, 2], [2, 0, 3], [0, 1, 3]]


def test_the_lists_and_so_the_similar_posters_are_the_same_on_any_number_of_threads():
    from threadpoolctl import threadpool_limits

    unit = similarity.normalize_rows(clustered(3000, dim=64, seed=3))
    found = []
    for threads in (1, 2, 1):
        with threadpool_limits(threads):
            found.append(similarity.list_candidates(unit, 16, block=700))
    assert found[0][2] == found[1][2] == found[2][2]  # the same width chosen
    for got in found[1:]:  # the same posters; their cosines to the last bits a BLAS's threads may change
        assert np.array_equal(got[0], found[0][0]) and np.allclose(got[1], found[0][1], rtol=0, atol=1e-6)
    index, sims = found[0][:2]
    assert not (index == np.arange(3000)[:, None]).any()
    # The cosines given are the candidates' own, most similar first.
    assert np.allclose(sims, np.einsum("rd,rmd->rm", unit, unit[index]), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 0).all()


def test_float16_unit_rows_are_widened_to_the_very_values_numpys_cast_gives():
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = every[np.isfinite(every)]  # zeros of both signs, subnormals, normals up to 65,504
    got = similarity._as_float32(finite)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got.view(np.uint32), finite.astype(np.float32).view(np.uint32))  # -0.0 stays -0.0
    # As the search selects rows: a strided slice, a gather with a trailing axis.
    rows = np.random.default_rng(0).choice(finite, (40, 16))
    for view in (rows[::3, 1::2], rows[[4, 1, 9], :, None]):
        assert np.array_equal(similarity._as_float32(view), view.astype(np.float32))
    same = np.ones((3, 4), np.float32)
    assert similarity._as_float32(same) is same  # float32 rows are used as they are

    # The search on float16 unit rows gives the cosines of the float16 values themselves.
    unit = similarity.normalize_rows(clustered(3000, dim=64, seed=3)).astype(np.float16)
    index, sims, _ = similarity.list_candidates(unit, 16, block=700)
    wide = unit.astype(np.float32)
    assert np.allclose(sims, np.einsum("rd,rmd->rm", wide, wide[index]), rtol=0, atol=1e-6)
    assert np.array_equal(similarity.exact_neighbours(unit, np.arange(0, 3000, 11), 8),
                          similarity.exact_neighbours(wide, np.arange(0, 3000, 11), 8))


def test_the_lists_cut_the_rows_round_their_centres_and_a_poster_probing_every_list_gets_its_exact_nearest():
    unit = similarity.normalize_rows(clustered(2000, dim=32, seed=6))
    centres = similarity.inverted_file(unit)
    assert len(centres) == similarity.list_count(2000) == 45
    assert np.allclose(np.linalg.norm(centres, axis=1), 1, atol=1e-5)
    home = similarity.nearest_lists(unit, centres, 1)[:, 0]
    assert np.array_equal(home, np.argmax(unit @ centres.T, axis=1))
    assert np.bincount(home, minlength=45).max() < 2000 / 3  # cut, not one list holding most rows
    lists = similarity._Lists(home, len(centres))
    assert sorted(np.concatenate([lists.members(c) for c in range(45)]).tolist()) == list(range(2000))
    rows = np.arange(0, 2000, 7)
    everywhere, sims = similarity._scan(unit, rows, similarity.nearest_lists(unit[rows], centres, 45), lists, 10)
    assert np.array_equal(everywhere[:, :8], similarity.exact_neighbours(unit, rows, 8))
    assert np.allclose(sims, np.einsum("rd,rmd->rm", unit[rows], unit[everywhere]), atol=1e-5)


def test_a_round_of_the_lists_k_means_moves_each_centre_to_the_mean_direction_of_the_rows_nearest_it(monkeypatch):
    unit = similarity.normalize_rows(clustered(2000, dim=32, seed=6))
    unit[:300] = unit[0]  # copies of one poster: the centres started on them are one, and all but the first get none
    sample = unit[::2000 // (45 * similarity.TRAIN_PER_LIST)]  # the documented sample: evenly spaced rows
    start = sample[np.linspace(0, len(sample) - 1, 45).round().astype(int)]  # started from evenly spaced rows
    nearest = np.argmax(sample @ start.T, axis=1)
    monkeypatch.setattr(similarity, "KMEANS_ROUNDS", 1)
    moved = similarity.inverted_file(unit)
    for c in range(45):
        members = sample[nearest == c]
        expected = start[c] if not len(members) else members.sum(axis=0) / np.linalg.norm(members.sum(axis=0))
        assert np.allclose(moved[c], expected, atol=1e-5), c
    assert len(np.unique(nearest)) < 45  # lists left empty keep their centres: that case is checked too


def test_a_poster_whose_lists_hold_fewer_rows_than_its_candidates_gets_them_all_ranked_by_exact_cosine(
        monkeypatch):
    monkeypatch.setattr(similarity, "PROBES_FIRST", 1)
    monkeypatch.setattr(similarity, "PROBES_MOST", 1)  # one list of about 14 rows: 40 candidates cannot be there
    unit = similarity.normalize_rows(clustered(200, dim=16, seed=2))
    index, sims, width = similarity.list_candidates(unit, 40, k=5)
    assert width["width"] == 1 and index.shape == sims.shape == (200, 40)
    assert not (index == np.arange(200)[:, None]).any() and (index >= 0).all()
    assert all(len(set(row)) == 40 for row in index.tolist())
    assert np.allclose(sims, np.einsum("rd,rmd->rm", unit, unit[index]), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 0).all()


def noise(n, dim, seed=0):
    """Unit rows of isotropic noise: every row nearly as far from every other, the hardest case for a search."""
    return similarity.normalize_rows(np.random.default_rng(seed).normal(0, 1, (n, dim)).astype(np.float32))


def test_the_search_probes_more_lists_until_it_finds_the_target_share_of_the_true_neighbours(monkeypatch, caplog):
    caplog.set_level(logging.INFO, "posters_cnn")
    monkeypatch.setattr(similarity, "EXACT_MAX", 100)
    monkeypatch.setattr(similarity, "TUNING_SAMPLE", 300)
    unit = noise(4000, 128)
    monkeypatch.setattr(similarity, "CANDIDATES", 8)
    monkeypatch.setattr(similarity, "PROBES_FIRST", 1)  # one list holds too few of a row's nearest
    narrow = similarity.list_candidates(unit, 8, k=5)[2]
    assert narrow["width"] > 1 and narrow["recall"] >= similarity.TARGET_RECALL and narrow["lists"] == 63
    assert "widening" in caplog.text and f"probing {narrow['width']} of 63 lists (recall@5" in caplog.text
    # What the map reports, on posters other than those tuned on, holds the target too.
    search = {}
    index, _, _ = similarity.neighbours_and_pairs(unit, k=5, n_pairs=0, normalized=True, search_info=search)
    assert search == narrow
    assert similarity.recall(unit, index, sample=1000, normalized=True)["recall"] >= similarity.TARGET_RECALL - 0.02


def test_the_width_chosen_is_at_most_about_root_two_times_the_narrowest_that_reaches_the_target():
    # The search's cost grows with its width: a rule that doubles would take 16 lists where 10 suffice.
    for narrowest in range(1, 70):
        tried = []

        def recall_at(width, narrowest=narrowest, tried=tried):
            tried.append(width)
            return 0.99 if width >= narrowest else 0.5

        width, got = similarity.first_width(4, 64, 0.95, recall_at)
        assert tried == sorted(set(tried)) and tried[0] == 4 and width == tried[-1]
        if narrowest <= 64:
            assert got == 0.99 and narrowest <= width <= max(4, 1.5 * narrowest)
        else:
            assert width == 64 and got == 0.5
    widths = []
    similarity.first_width(4, 64, 1.0, lambda w: widths.append(w) or 0.0)
    assert widths == [4, 6, 8, 11, 16, 23, 32, 45, 64]
    widths.clear()
    similarity.first_width(1, 7, 1.0, lambda w: widths.append(w) or 0.0)
    assert widths == [1, 2, 3, 4, 5, 6, 7]  # never the same width twice, never past the widest


def test_the_search_stays_narrow_where_that_finds_the_neighbours_and_says_when_even_the_widest_does_not(
        monkeypatch, caplog):
    caplog.set_level(logging.INFO, "posters_cnn")
    monkeypatch.setattr(similarity, "TUNING_SAMPLE", 300)
    rng = np.random.default_rng(1)  # 300 tight groups of 10: a poster's nearest are its group's, in its list
    easy = rng.normal(0, 1, (300, 64)).repeat(10, axis=0) + rng.normal(0, 0.01, (3000, 64))
    width = similarity.list_candidates(similarity.normalize_rows(easy.astype(np.float32)), 16, k=5)[2]
    assert width["width"] == similarity.PROBES_FIRST and width["recall"] >= similarity.TARGET_RECALL
    monkeypatch.setattr(similarity, "PROBES_FIRST", 1)
    monkeypatch.setattr(similarity, "PROBES_MOST", 2)
    hard = similarity.list_candidates(noise(4000, 128), 2, k=2)[2]
    assert hard["width"] == 2 and hard["recall"] < similarity.TARGET_RECALL
    assert "even probing 2 of 63 lists" in caplog.text


def test_tsne_neighbours_from_the_lists_are_the_true_nearest_with_exact_distances_and_never_the_point_itself():
    from posters_cnn.mapping import layout

    rng = np.random.default_rng(4)
    points = rng.normal(0, 1, (3000, 20)).astype(np.float32)
    points[1] = points[0]  # a copy: each must find the other, never itself
    index, distance = layout.nearest(points, 30)
    assert index.shape == distance.shape == (3000, 30)
    assert not (index == np.arange(3000)[:, None]).any()
    assert index[0, 0] == 1 and index[1, 0] == 0 and distance[0, 0] == 0
    exact = np.sqrt(((points[index] - points[:, None, :]) ** 2).sum(axis=2))
    assert np.allclose(distance, exact, atol=1e-4) and (np.diff(distance, axis=1) >= 0).all()
    full = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(full, np.inf)
    truth = np.argsort(full, axis=1)[:, :30]
    assert similarity._share(truth, index) >= 0.99


def test_tsne_neighbours_from_the_lists_are_the_same_on_any_number_of_threads_and_probe_only_some_lists(
        monkeypatch, caplog):
    import faiss

    from posters_cnn.mapping import layout

    rng = np.random.default_rng(8)
    points = np.concatenate([rng.normal(c, 1, (2500, 10)) for c in (0, 3, 7)]).astype(np.float32)
    monkeypatch.setitem(layout.KNN_LISTS, "recall", 0.5)  # met by 8 of 87 lists: what is found depends on them
    found = []
    with caplog.at_level(logging.INFO, logger="posters_cnn.mapping.layout"):
        for threads in (1, 2, 1):
            faiss.omp_set_num_threads(threads)
            found.append(layout.nearest(points, 20))
    faiss.omp_set_num_threads(2)
    for index, distance in found[1:]:
        assert np.array_equal(index, found[0][0]) and np.array_equal(distance, found[0][1])
    assert "(8 of 87 lists probed)" in caplog.text


def test_tsne_affinities_from_given_neighbours_are_opentsnes_own_matrix():
    """joint_affinities makes, in less memory, the very matrix openTSNE's MultiscaleMixture makes from the
    same neighbours, whatever its block size."""
    from openTSNE.affinity import MultiscaleMixture
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    from posters_cnn.mapping import layout

    rng = np.random.default_rng(5)
    points = np.concatenate([rng.normal(c, 1, (700, 10)) for c in (0, 4, 9)]).astype(np.float32)
    index, distance = layout.nearest(points, 45)
    theirs = MultiscaleMixture(perplexities=15, knn_index=PrecomputedNeighbors(index.astype(np.int64), distance)).P
    for block in (65_536, 333):
        ours = layout.joint_affinities(index, distance, 15, block=block).P
        assert ours.shape == theirs.shape and ours.nnz == theirs.nnz
        assert (ours.indptr == theirs.indptr).all() and (ours.indices == theirs.indices).all()
        assert np.array_equal(ours.data, theirs.data)
    assert abs(ours.sum() - 1) < 1e-9 and abs(ours - ours.T).max() == 0  # joint: symmetric, summing to 1


def test_a_map_past_exact_neighbours_takes_tsne_neighbours_from_the_lists(tmp_path, monkeypatch):
    from posters_cnn.mapping import layout

    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    monkeypatch.setattr(layout, "EXACT_KNN_MAX", 30)
    asked = []
    real = layout.nearest
    monkeypatch.setattr(layout, "nearest", lambda points, k, **kw: asked.append(k) or real(points, k, **kw))
    out = tmp_path / "m" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "-o", str(out), "-q", "--perplexity", "5"]) == 0
    tsne = read_map(out)["meta"]["tsne"]
    assert asked == [15] and tsne["neighbors"] == "lists" and tsne["neighbor_lists"] == layout.KNN_LISTS
    assert read_map(out)["meta"]["trustworthiness"] > 0.8


def test_a_lower_recall_asked_for_keeps_the_search_narrow_and_the_map_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(similarity, "EXACT_MAX", 100)
    monkeypatch.setattr(similarity, "PROBES_FIRST", 1)
    monkeypatch.setattr(similarity, "CANDIDATES", 8)
    monkeypatch.setattr(similarity, "TUNING_SAMPLE", 300)
    unit = noise(4000, 128)
    widened, narrow = {}, {}
    similarity.neighbours_and_pairs(unit, k=5, n_pairs=0, normalized=True, search_info=widened)
    similarity.neighbours_and_pairs(unit, k=5, n_pairs=0, normalized=True, search_info=narrow, target=0.5)
    assert narrow["width"] < widened["width"] and narrow["target"] == 0.5 and narrow["recall"] >= 0.5
    # On the command line: a share from 0 to 1, in the meta's description, and in the checkpoint's key.
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    out = tmp_path / "m" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "-o", str(out), "-q", "--similar-recall", "0.25"]) == 0
    assert "reached 0.25" in read_map(out)["meta"]["similarity_search"]
    assert similarity.search_settings(0.25) != similarity.search_settings()
    with pytest.raises(SystemExit) as stop:
        get_data_visu.main(["-i", str(feats), "-o", str(out), "--similar-recall", "1.5"])
    assert stop.value.code == 2 and "must be 1 or less" in capsys.readouterr().err


def test_the_read_the_projection_and_the_search_tell_how_far_they_are_block_by_block(tmp_path):
    rows = clustered(3000, dim=64, seed=3)
    rows[7] = np.nan  # a row left out still counts as read
    path = features_file(tmp_path / "f.h5", rows)
    told = []
    features, finite = streamed.read(path, np.arange(3000), block=1000, progress=lambda *at: told.append(at))
    assert told == [(1000, 3000), (2000, 3000), (3000, 3000)] and not finite[7]
    told.clear()  # a last block of NaN rows only is read too
    streamed.read(path, np.array([0, 1, 2, 3, 4, 5, 7]), block=6, progress=lambda *at: told.append(at))
    assert told == [(6, 7), (7, 7)]
    told.clear()  # the PCA's projection, a second pass over the file: the rows read, 2,999 of them
    streamed.project(features, np.zeros(64), np.eye(2, 64), block=1000, progress=lambda *at: told.append(at))
    assert told == [(1000, 2999), (2000, 2999), (2999, 2999)]

    told.clear()
    unit = similarity.normalize_rows(clustered(3000, dim=64, seed=3))
    similarity.list_candidates(unit, 16, block=700, progress=lambda *at: told.append(at))
    assert told == [(700, 3000), (1400, 3000), (2100, 3000), (2800, 3000), (3000, 3000)]
