"""Stage 3 stopped after its long steps (PCA, similar posters, t-SNE) starts again from their checkpoints
and makes the map an unstopped run makes; a checkpoint made from other inputs or settings is not used."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from mapdata import make_mapdata, read_map
from posters_cnn.contracts import maptable
from posters_cnn.mapping import checkpoints, layout, similarity, stage as visu

import get_data_visu

STEPS = ("pca", "similar", "tsne")


def run(*args):
    return get_data_visu.main([*map(str, args), "-q"])


def the_map(out):
    """data.json without what differs between any two runs: times, the run's folder name."""
    data = read_map(out)
    meta = data["meta"]
    for key in ("created", "seconds", "timings", "peak_mib", "run", "state"):
        meta.pop(key)
    for pyramid in meta["tiles"].values():
        pyramid["path"] = pyramid["path"].split("/tiles/")[1]
    meta["pairs"]["file"] = None
    for key in maptable.TEMPLATES:
        if key in meta["table"]:
            meta["table"][key] = meta["table"][key].split("/table/")[1]
    return data


@pytest.fixture
def calls(monkeypatch):
    """How many times each long step really computed."""
    counted = {step: 0 for step in STEPS}

    def counting(step, fn):
        def wrapper(*args, **kwargs):
            counted[step] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(visu, "reduce", counting("pca", visu.reduce))
    monkeypatch.setattr(layout, "tsne", counting("tsne", layout.tsne))
    monkeypatch.setattr(visu, "neighbours_and_pairs", counting("similar", visu.neighbours_and_pairs))
    return counted


def stop_at(monkeypatch, owner, name, when=lambda *args, **kwargs: True):
    """Make the next run stop when it calls ``owner.name`` (with arguments for which ``when`` is true), as
    Ctrl-C there would; returns what undoes it."""
    real = getattr(owner, name)

    def interrupted(*args, **kwargs):
        if when(*args, **kwargs):
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    return lambda: monkeypatch.setattr(owner, name, real)


def calls_of(monkeypatch, owner, name):
    """The arguments of every call to ``owner.name`` from now on (a list that grows)."""
    made = []
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *args, **kwargs: made.append(args) or real(*args, **kwargs))
    return made


def stop_in_clusters(monkeypatch):
    """Make the next run stop in its clusters step, after the long ones."""
    return stop_at(monkeypatch, visu.clustering, "find")


@pytest.mark.parametrize("search", ["exact", "candidates"])
def test_a_stopped_run_resumes_after_its_long_steps_and_makes_the_same_map(tmp_path, monkeypatch, calls, capsys,
                                                                           search):
    if search == "candidates":  # similar posters from the inverted file, as above 5,000 posters
        monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole, "--grid") == 0

    resume = stop_in_clusters(monkeypatch)
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out, "--grid") == 130
    assert not out.exists()
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["pca.npz", "similar.npz", "tsne.npz"]

    resume()
    before = dict(calls)
    capsys.readouterr()
    assert run("-i", feats, "-o", out, "--grid") == 0
    assert calls == before  # nothing long was computed again
    said = capsys.readouterr().out
    assert "resumed: " in said and all(step in said.split("resumed: ")[1].split(" from")[0] for step in STEPS)
    assert the_map(out) == the_map(whole)  # the same map as a run never stopped
    assert not folder.exists()  # the map is written: nothing is left to resume


def test_a_checkpoint_of_other_settings_or_other_features_is_not_used(tmp_path, monkeypatch, calls):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=10, clusters=2)
    out = tmp_path / "web" / "data.json"
    resume = stop_in_clusters(monkeypatch)
    assert run("-i", feats, "-o", out) == 130
    assert calls == {"pca": 1, "similar": 1, "tsne": 1}

    # Another perplexity: only the t-SNE is made again (its key holds the perplexity; the others' do not).
    assert run("-i", feats, "-o", out, "--perplexity", 5) == 130
    assert calls == {"pca": 1, "similar": 1, "tsne": 2}

    # The features file changed since (stage 2 extended it, say): everything is made again.
    stat = feats.stat()
    os.utime(feats, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    resume()
    assert run("-i", feats, "-o", out, "--perplexity", 5) == 0
    assert calls == {"pca": 2, "similar": 2, "tsne": 3}


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_checkpoint_is_made_again(tmp_path, monkeypatch, calls, capsys, damage):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=10, clusters=2)
    out = tmp_path / "web" / "data.json"
    resume = stop_in_clusters(monkeypatch)
    assert run("-i", feats, "-o", out) == 130
    saved = out.parent / "assets" / "maps" / "data" / "checkpoints" / "tsne.npz"
    data = saved.read_bytes()
    saved.write_bytes(b"PK\x03\x04 not a zip" if damage == "garbage" else data[: len(data) // 2])
    resume()
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    assert calls == {"pca": 1, "similar": 1, "tsne": 2}
    warned = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line and "checkpoint" in line]
    assert len(warned) == 1 and "tsne.npz" in warned[0]  # said, in one line
    assert read_map(out)["meta"]["count"] == 20


@pytest.fixture
def searches(monkeypatch):
    """How many times the similar posters were searched for (each search starts by choosing its width)."""
    return calls_of(monkeypatch, similarity, "_widen")


def stop_after_the_search(monkeypatch):
    """Make the next run stop after its search for candidates, in the similar posters' re-ranking (their recall is
    measured once they are re-ranked: the last thing before their checkpoint)."""
    return stop_at(monkeypatch, visu, "recall")


def doctor_rows(folder, step, change):
    """Change a kept step's rows as one who knows the format would: ``change(records)`` on its rows, and
    their SHA-256 told again, so that only the check of what the rows hold can refuse them."""
    told = json.loads((folder / f"{step}.json").read_text())
    records = np.fromfile(folder / f"{step}.rows", np.dtype(eval(told["dtype"])))  # noqa: S307 (our own file)
    change(records)
    records.tofile(folder / f"{step}.rows")
    told["sha256"] = hashlib.sha256(records.tobytes()).hexdigest()
    (folder / f"{step}.json").write_text(json.dumps(told))


@pytest.mark.parametrize("doctored", [None, "no poster", "a byte changed"])
def test_a_run_stopped_after_the_search_resumes_from_its_candidates(tmp_path, monkeypatch, capsys, searches,
                                                                           doctored):
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)  # similar posters from the inverted file
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0
    assert len(searches) == 1

    resume = stop_after_the_search(monkeypatch)
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out) == 130
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["candidates.json", "candidates.rows"]
    if doctored == "no poster":  # a candidate that is no poster, under the right key: it must not reach the map
        doctor_rows(folder, "candidates", lambda records: records["found"].__setitem__((3, 1), 10**6))
    elif doctored == "a byte changed":
        data = bytearray((folder / "candidates.rows").read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / "candidates.rows").write_bytes(bytes(data))

    resume()
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    said = capsys.readouterr()
    if doctored:
        assert len(searches) == 3  # searched again, and said why
        why = "not among the 60 posters" if doctored == "no poster" else "changed since it was saved"
        assert any("candidates.rows" in line and why in line for line in said.err.splitlines())
    else:
        assert len(searches) == 2  # not searched again
        assert "(resumed: candidates from a stopped run)" in said.out
    assert the_map(out) == the_map(whole)
    assert not folder.exists()


def from_row(row):
    """A ``when`` for :func:`stop_at`: a call for posters from ``row`` on (its second argument: their rows)."""
    return lambda *args, **kwargs: len(args[1]) and args[1][0] == row


def from_block(count, size=16):
    """A ``when`` for :func:`stop_at`: the call for the ``count``-th block of ``size`` posters (its second
    argument: their rows), once ``count`` - 1 blocks are made."""
    seen = []
    return lambda *args, **kwargs: len(args[1]) == size and (seen.append(1) or len(seen) == count)


@pytest.mark.parametrize("killed", [False, True])
def test_a_run_stopped_part_way_through_the_search_goes_on_from_its_last_rows(tmp_path, monkeypatch, capsys, killed):
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)  # similar posters from the inverted file
    monkeypatch.setattr(similarity, "SEARCH_BLOCK", 16)
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0

    # The search goes in the order of its lists, 16 posters at a time.
    step, name = "candidates", "_scan"
    resume = stop_at(monkeypatch, similarity, name, from_block(3))  # after two blocks of 16
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out) == 130
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    rows = folder / f"{step}.rows"
    assert json.loads((folder / f"{step}.json").read_text())["rows"] == 32  # Ctrl-C keeps the rows made
    size = rows.stat().st_size
    resume()
    done = 32
    if killed:  # killed while appending: bytes past the rows the JSON counts, which must be cut off
        with open(rows, "ab") as fh:
            fh.write(b"\xff" * 100)
        resume = stop_at(monkeypatch, similarity, name, from_block(1, size=12))  # the last block: 48-59
        assert run("-i", feats, "-o", out) == 130
        assert json.loads((folder / f"{step}.json").read_text())["rows"] == 48
        assert rows.stat().st_size == size // 32 * 48  # the next rows follow the ones counted
        resume()
        done = 48

    calls = {"widen": calls_of(monkeypatch, similarity, "_widen"), name: calls_of(monkeypatch, similarity, name)}
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    said = capsys.readouterr().out
    assert f"{step} ({done} of 60 rows)" in said.split("resumed: ")[1]
    assert calls["widen"] == []  # the width the stopped run chose
    made = sorted(int(r) for a in calls[name] for r in a[1])  # only the rows not yet made, each once
    assert len(made) == len(set(made)) == 60 - done
    assert the_map(out) == the_map(whole)
    assert not folder.exists()


def test_similar_posters_that_are_no_posters_are_found_again(tmp_path, monkeypatch, calls, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=10, clusters=2)
    out = tmp_path / "web" / "data.json"
    resume = stop_in_clusters(monkeypatch)
    assert run("-i", feats, "-o", out) == 130
    saved = out.parent / "assets" / "maps" / "data" / "checkpoints" / "similar.npz"
    with np.load(saved) as held:
        arrays = dict(held)
    arrays["index"][0, 0] = -1  # under the right key: a doctored file, not another run's
    with open(saved, "wb") as fh:
        np.savez(fh, **arrays)
    resume()
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    assert calls == {"pca": 1, "similar": 2, "tsne": 1}
    assert any("similar.npz" in line and "not among the 20 posters" in line
               for line in capsys.readouterr().err.splitlines())
    assert all(0 <= j < 20 for j in read_map(out)["columns"]["neighbors"])  # the map lists posters only


def test_the_graph_an_older_version_kept_is_removed_when_the_search_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    out = tmp_path / "web" / "data.json"
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("graph.faiss", "graph.json"):
        (folder / name).write_bytes(b"kept by a version that searched a graph")
    seen = []
    real = similarity.list_candidates
    monkeypatch.setattr(similarity, "list_candidates",
                        lambda *a, **kw: seen.append(sorted(p.name for p in folder.iterdir())) or real(*a, **kw))
    monkeypatch.setattr(visu, "list_candidates", similarity.list_candidates)
    assert run("-i", feats, "-o", out) == 0
    assert seen and not any(name.startswith("graph.") for name in seen[0])


def test_kept_candidates_that_name_a_poster_twice_or_follow_other_lists_are_searched_again(tmp_path, monkeypatch,
                                                                                          capsys):
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    monkeypatch.setattr(similarity, "SEARCH_BLOCK", 16)
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0
    out = tmp_path / "web" / "data.json"
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    for doctor, why in [(lambda records: records["row"].__setitem__(1, records["row"][0]), "searched twice"),
                        (lambda records: records.__setitem__(slice(None), records[::-1]), "not the first of")]:
        resume = stop_at(monkeypatch, similarity, "_scan", from_block(3))
        assert run("-i", feats, "-o", out) == 130
        resume()
        doctor_rows(folder, "candidates", doctor)
        widen = calls_of(monkeypatch, similarity, "_widen")
        capsys.readouterr()
        assert run("-i", feats, "-o", out) == 0
        assert any("candidates.rows" in line and why in line for line in capsys.readouterr().err.splitlines())
        assert len(widen) == 1  # searched again from its first poster, its width chosen again
        assert the_map(out) == the_map(whole)


@pytest.mark.parametrize("name", ["candidates.rows", "tsne-neighbours.npz",
                                  "tsne-so-far.npz"])
def test_a_checkpoint_that_cannot_be_kept_is_said_and_the_map_is_made(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    monkeypatch.setattr(layout, "EXACT_KNN_MAX", 40)  # the t-SNE's neighbours from a graph, and kept
    monkeypatch.setattr(checkpoints, "SAVE_EVERY_S", 0)  # the t-SNE's state kept at every look (120 times)
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0
    out = tmp_path / "web" / "data.json"
    blocked = out.parent / "assets" / "maps" / "data" / "checkpoints" / name
    (blocked / "in the way").mkdir(parents=True)  # the checkpoint's file cannot take this name
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line and name in line]
    assert len(warned) == 1 and "going on without it" in warned[0]
    assert the_map(out) == the_map(whole)

def optimised(monkeypatch):
    """The iterations of each t-SNE optimisation run from now on (a list that grows)."""
    from openTSNE.tsne import TSNEEmbedding

    made = []
    real = TSNEEmbedding.optimize
    monkeypatch.setattr(TSNEEmbedding, "optimize", lambda self, n_iter, **kwargs: made.append(n_iter) or
                        real(self, n_iter, **kwargs))
    return made


def t_sne_state(phase, done):
    """A ``when`` for :func:`stop_at` on ``Checkpoints.save``: the t-SNE's state saved at or past iteration
    ``done`` of ``phase`` (0: the 250 of early exaggeration; 1: the 350 after them)."""
    return lambda self, step, key, arrays, info, **kwargs: (
        step == layout.SO_FAR_STEP and (info["phase"], info["done"]) >= (phase, done))


@pytest.mark.parametrize("neighbours", ["exact", "graph"])
@pytest.mark.parametrize("phase", [0, 1])
def test_a_run_stopped_part_way_through_the_t_sne_goes_on_from_its_last_state(tmp_path, monkeypatch, capsys, calls,
                                                                             neighbours, phase):
    if neighbours == "graph":  # the t-SNE's neighbours from an inverted file, as above 15,000 posters: kept too
        monkeypatch.setattr(layout, "EXACT_KNN_MAX", 40)
    searched = calls_of(monkeypatch, layout, "nearest")
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0
    assert len(searched) == (neighbours == "graph")

    monkeypatch.setattr(checkpoints, "SAVE_EVERY_S", 0)  # kept at every look: each CHECK_EVERY (5) iterations
    resume = stop_at(monkeypatch, checkpoints.Checkpoints, "save", t_sne_state(phase, 40))
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out) == 130
    folder = out.parent / "assets" / "maps" / "data" / "checkpoints"
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["pca.npz", "similar.npz", *(["tsne-neighbours.npz"] if neighbours == "graph" else []),
                    "tsne-so-far.npz"]
    with np.load(folder / "tsne-so-far.npz") as held:
        assert (json.loads(str(held["info"]))["phase"], json.loads(str(held["info"]))["done"]) == (phase, 39)

    resume()
    iterations = optimised(monkeypatch)
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    said = capsys.readouterr().out
    at = 250 * phase + 39
    assert f"tsne-so-far (iteration {at} of 600)" in said.split("resumed: ")[1]
    assert sum(iterations) == 600 - at  # only the iterations not yet made
    assert len(searched) == 2 * (neighbours == "graph")  # the neighbours read back, not searched again
    assert the_map(out) == the_map(whole)  # bit for bit the unstopped run's map
    assert not folder.exists()


@pytest.mark.parametrize("doctored", ["past the end", "not a number"])
def test_a_doctored_t_sne_state_is_not_taken_up(tmp_path, monkeypatch, capsys, doctored):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    whole = tmp_path / "whole" / "data.json"
    assert run("-i", feats, "-o", whole) == 0
    monkeypatch.setattr(checkpoints, "SAVE_EVERY_S", 0)
    resume = stop_at(monkeypatch, checkpoints.Checkpoints, "save", t_sne_state(1, 100))
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out) == 130
    saved = out.parent / "assets" / "maps" / "data" / "checkpoints" / "tsne-so-far.npz"
    with np.load(saved) as held:
        arrays = dict(held)
    if doctored == "past the end":  # under the right key: a doctored file, not another run's
        arrays["info"] = np.array(json.dumps({"phase": 1, "done": 350}))
    else:
        arrays["gains"][3, 1] = np.nan
    with open(saved, "wb") as fh:
        np.savez(fh, **arrays)

    resume()
    iterations = optimised(monkeypatch)
    capsys.readouterr()
    assert run("-i", feats, "-o", out) == 0
    said = capsys.readouterr()
    assert sum(iterations) == 600  # started again
    warned = [line for line in said.err.splitlines() if "WARNING" in line and "tsne-so-far" in line]
    assert len(warned) == 1
    assert "tsne-so-far" not in said.out.split("resumed: ")[1]
    assert the_map(out) == the_map(whole)


def test_the_t_sne_says_how_far_it_is(tmp_path, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=10, clusters=2)
    assert get_data_visu.main(["-i", str(feats), "-o", str(tmp_path / "web" / "data.json")]) == 0
    said = [line.split("t-SNE: iteration ")[1] for line in capsys.readouterr().err.splitlines()
            if "t-SNE: iteration " in line]
    assert [line.split(",")[0] for line in said] == [f"{at} of 600" for at in range(60, 601, 60)]  # every tenth
