"""Promises of the README that small slips in their code would break, each pinned by a test that bites.

``bench/slips.py`` plants those slips one at a time and checks that a test fails for each.
"""

import os

import h5py
import numpy as np
import pytest
from PIL import Image

from posters_cnn.mapping import clusters, similarity

from posters_cnn.features import stage as features

from posters_cnn import fsutil

from posters_cnn.contracts import store
from posters_cnn.cli import OutputLock

import get_posters


# -- atomic writes ---------------------------------------------------------------------------------
def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "posters.csv"
    target.write_bytes(b"the old manifest\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        fsutil.write_bytes_atomic(target, b"a new manifest that never made it to the disk\n")
    assert target.read_bytes() == b"the old manifest\n"
    assert [p.name for p in tmp_path.iterdir()] == ["posters.csv"]


# -- features.h5: `count` says which rows are complete ---------------------------------------------
def test_count_covers_only_rows_that_were_written(tmp_path):
    path = tmp_path / "features.h5"
    writer = store.FeatureWriter(path, 8, {"model": "m"})
    writer.append(["a", "b"], np.ones((2, 8), np.float32))
    with pytest.raises((ValueError, TypeError)):  # rows of the wrong width: the write fails
        writer.append(["c", "d"], np.ones((2, 5), np.float32))
    writer.close()
    with h5py.File(path, "r") as handle:
        assert int(handle.attrs["count"]) == 2
    ids, rows, _ = store.read_features(path)
    assert ids == ["a", "b"] and rows.shape == (2, 8)


def test_a_rerun_does_not_read_unreadable_images_again(tmp_path):
    from posters_cnn.contracts.manifest import PosterRecord, write_manifest

    records = []
    for i, data in enumerate([None, b"not an image"]):
        rel = f"posters/p{i}.jpg"
        (tmp_path / "posters").mkdir(exist_ok=True)
        if data is None:
            Image.new("RGB", (30, 40), "red").save(tmp_path / rel)
        else:
            (tmp_path / rel).write_bytes(data)
        records.append(PosterRecord(f"2000/p{i}", f"P{i}", 2000, 1, image_path=rel, thumb_path=rel, status="ok"))
    write_manifest(tmp_path / "posters.csv", records)
    out = tmp_path / "features.h5"
    summaries = [features.extract(tmp_path / "posters.csv", out, weights="random", batch_size=2, progress=False,
                                  precision="float32")
                 for _ in range(2)]
    assert summaries[0].skipped == 1
    assert summaries[1].skipped == 0 and summaries[1].computed == 0
    with h5py.File(out, "r") as handle:
        assert [v.decode() for v in handle["skipped_id"][:]] == ["2000/p1"]


# -- stage 2's input ---------------------------------------------------------------------------------
def _bands(path, size=(100, 200)):
    """Red top quarter, green middle half, blue bottom quarter."""
    image = Image.new("RGB", size, (0, 200, 0))
    image.paste((220, 0, 0), (0, 0, size[0], size[1] // 4))
    image.paste((0, 0, 220), (0, 3 * size[1] // 4, size[0], size[1]))
    image.save(path, format="PNG")


def test_center_crop_keeps_the_middle_square(tmp_path):
    _bands(tmp_path / "p.png")
    pixels = features.load_image(tmp_path / "p.png", crop="center").astype(int)
    top, middle, bottom = pixels[3].mean(0), pixels[112].mean(0), pixels[-4].mean(0)
    # The middle 100x100 of a 100x200 poster runs from y = 50 to 150: the top and bottom bands are gone.
    assert top[1] > 150 and bottom[1] > 150 and middle[1] > 150, (top, middle, bottom)
    whole = features.load_image(tmp_path / "p.png").astype(int)
    assert whole[3].mean(0)[0] > 150 and whole[-4].mean(0)[2] > 150  # without the crop they are there


def test_the_poster_is_resized_with_pillows_bilinear_filter(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (333, 250, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    expected = np.asarray(Image.open(tmp_path / "noise.png").convert("RGB").resize(
        (224, 224), Image.Resampling.BILINEAR))
    assert np.array_equal(features.load_image(tmp_path / "noise.png"), expected)


# -- one run per output ------------------------------------------------------------------------------
def test_from_dir_waits_for_no_one_it_stops_when_its_output_is_in_use(tmp_path, capsys):
    src = tmp_path / "mine"
    src.mkdir()
    Image.new("RGB", (30, 40), "red").save(src / "a.jpg")
    out = tmp_path / "out"
    with OutputLock(out / "posters.csv"):
        assert get_posters.main(["--from-dir", str(src), "--out-dir", str(out), "--no-progress"]) == 1
    assert "in use" in capsys.readouterr().err
    assert not (out / "posters.csv").exists()


# -- closest pairs and clusters ----------------------------------------------------------------------
@pytest.mark.parametrize("n", [300, similarity.EXACT_MAX + 200])
def test_closest_pairs_never_pair_versions_of_one_movie(n):
    """Versions are the closest posters of all here, so a pair list that kept them would be all versions."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, (n // 2, 64)).astype(np.float32)
    rows = np.concatenate([base, base + rng.normal(0, 1e-3, base.shape).astype(np.float32)])
    groups = np.concatenate([np.arange(n // 2), np.arange(n // 2)])
    _, _, pairs = similarity.neighbours_and_pairs(rows, k=4, n_pairs=50, groups=groups)
    assert len(pairs) == 50
    assert all(groups[i] != groups[j] for _, i, j in pairs)


def test_a_clusters_face_is_its_member_nearest_the_middle():
    reduced = np.array([[10.0, 10.0], [0.0, 0.0], [0.1, 0.0], [-0.1, 0.05], [0.2, 0.1], [-3.0, 2.0]])
    labels = np.zeros(len(reduced), dtype=np.int32)
    coords = reduced / 10
    ids = [f"p{i}" for i in range(len(reduced))]
    [cluster] = clusters.describe(labels, coords, reduced, ids, [2000] * len(ids))
    middle = reduced.mean(axis=0)
    nearest = ids[int(np.argmin(np.linalg.norm(reduced - middle, axis=1)))]
    assert cluster["face"] == nearest != ids[0]
    assert cluster["examples"][0] == nearest
