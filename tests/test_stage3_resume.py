"""Stage 3 stopped after its long steps (PCA, similar posters, t-SNE) starts again from their checkpoints
and makes the map an unstopped run makes; a checkpoint made from other inputs or settings is not used."""

from __future__ import annotations

import json
import os

import pytest

from mapdata import make_mapdata, read_map
from posters_cnn.mapping import layout, similarity, stage as visu

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
    for key in ("path", "near"):
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


def stop_in_clusters(monkeypatch):
    """Make the next run stop in its clusters step, after the long ones, as Ctrl-C there would."""
    real = visu.clustering.find

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(visu.clustering, "find", interrupted)
    return lambda: monkeypatch.setattr(visu.clustering, "find", real)


@pytest.mark.parametrize("search", ["exact", "candidates"])
def test_a_stopped_run_resumes_after_its_long_steps_and_makes_the_same_map(tmp_path, monkeypatch, calls, capsys,
                                                                           search):
    if search == "candidates":  # similar posters from the graph index, as above 5,000 posters
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
