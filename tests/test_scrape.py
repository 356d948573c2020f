"""Stage 1 against a real local HTTP server serving a generated site."""

import hashlib
import json
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, wait_until
from posters_cnn.scrape import stage as scrape
from sitegen import BAD, FaultyServer, make_site

import get_posters


def run_cli(*args):
    return get_posters.main([*map(str, args), "--no-progress", "-q"])


def read_manifest(out):
    frame = pd.read_csv(out / "posters.csv", keep_default_na=False).set_index("poster_id")
    for column in ("year", "version", "width", "height"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame


def scrape_site(server, out, *extra):
    return run_cli("--base-url", server.url, "--range", "1995-1996", "--out-dir", out,
                   "--retries", 2, "--timeout", 5, *extra)


def test_good_posters_are_saved_byte_for_byte_with_thumbnails(site, server, tmp_path):
    assert scrape_site(server, tmp_path) == 0
    manifest = read_manifest(tmp_path)
    for pid, data in site.good.items():
        row = manifest.loc[pid]
        assert row.status == "ok", (pid, row.error)
        assert (tmp_path / row.image_path).read_bytes() == data
        with Image.open(tmp_path / row.thumb_path) as thumb:
            assert thumb.mode == "RGB" and thumb.format == "JPEG"
            assert max(thumb.size) <= 256
        assert (row.width, row.height) == (120, 180)


def test_manifest_titles_versions_and_columns(site, server, tmp_path):
    scrape_site(server, tmp_path)
    manifest = read_manifest(tmp_path)
    for column in ("title", "year", "version", "page_url", "image_url", "image_path", "thumb_path",
                   "width", "height", "status", "error"):
        assert column in manifest.columns
    assert manifest.loc["1995/balto"].title == "Balto"
    assert manifest.loc["1995/balto_ver2"].title == "Balto"
    assert manifest.loc["1995/balto_ver2"].version == 2
    assert manifest.loc["1995/balto"].version == 1
    assert manifest.loc["1995/casino"].title == "Casino & <b>Co</b>"
    assert manifest.loc["1996/apollo_13"].year == 1996
    assert manifest.loc["1995/apollo_13"].page_url == f"{server.url}1995/apollo_13.html"


def test_only_poster_links_count_each_once(site, server, tmp_path):
    scrape_site(server, tmp_path)
    manifest = read_manifest(tmp_path)
    posters = [pid for pid in manifest.index if not pid.endswith("std.html")]
    assert sorted(posters) == sorted(list(site.good) + list(site.bad))
    # Each image asked for once, though the index links each poster twice.
    assert all(n == 1 for p, n in server.counts.items() if p.endswith(".jpg") and "lost_reel" not in p)


@pytest.mark.parametrize("why", sorted(set(BAD.values())))
def test_each_bad_file_becomes_a_failed_row(site, server, tmp_path, why):
    scrape_site(server, tmp_path)
    manifest = read_manifest(tmp_path)
    for pid, reason in site.bad.items():
        if reason != why:
            continue
        row = manifest.loc[pid]
        assert row.status == "failed"
        assert row.error
        assert not (tmp_path / "posters" / f"{pid}.jpg").exists()
        assert not (tmp_path / "thumbs" / f"{pid}.jpg").exists()


def test_bad_file_errors_say_why(site, server, tmp_path):
    scrape_site(server, tmp_path)
    manifest = read_manifest(tmp_path)
    assert "404" in manifest.loc["1995/lost_reel_1995"].error
    assert "HTML" in manifest.loc["1995/error_page_1995"].error
    assert "truncated" in manifest.loc["1995/torn_film_1995"].error
    assert "empty" in manifest.loc["1995/empty_can_1995"].error
    assert "decompression bomb" in manifest.loc["1995/giant_canvas_1995"].error


def test_missing_year_index_is_a_failed_row_and_the_rest_goes_on(tmp_path):
    site = make_site(tmp_path / "site", years=(1995, 1996), missing_years=(1996,))
    srv = FaultyServer(site.root)
    try:
        assert run_cli("--base-url", srv.url, "--range", "1995-1996", "--out-dir", tmp_path / "out") == 0
    finally:
        srv.close()
    manifest = read_manifest(tmp_path / "out")
    assert manifest.loc["1996/std.html"].status == "failed"
    assert "404" in manifest.loc["1996/std.html"].error
    assert manifest.loc["1995/balto"].status == "ok"


def test_nothing_is_written_outside_out_dir(site, server, tmp_path):
    out = tmp_path / "deep" / "out"
    before = set(tmp_path.rglob("*"))
    scrape_site(server, out)
    written = set(tmp_path.rglob("*")) - before
    assert written and all(out in p.parents or p == out or p in out.parents for p in written)
    requested = " ".join(server.log)
    assert "escape_artist" not in requested and "outside" not in requested


def test_retries_503_then_succeeds(site, server, tmp_path):
    server.httpd.flaky = {"/1995/posters/balto.jpg", "/1995/std.html"}
    assert scrape_site(server, tmp_path) == 0
    manifest = read_manifest(tmp_path)
    assert manifest.loc["1995/balto"].status == "ok"
    assert server.counts["/1995/posters/balto.jpg"] == 2


@pytest.mark.parametrize("code", [408, 500, 501, 505, 520, 522, 524])
def test_every_5xx_and_408_is_retried(site, server, tmp_path, code):
    server.httpd.flaky = {"/1995/posters/balto.jpg"}
    server.httpd.flaky_code = code
    assert scrape_site(server, tmp_path) == 0
    assert read_manifest(tmp_path).loc["1995/balto"].status == "ok"
    assert server.counts["/1995/posters/balto.jpg"] == 2


def test_a_5xx_that_outlasts_the_retries_is_tried_again_next_run(site, server, tmp_path):
    server.httpd.broken = {"/1995/posters/balto.jpg": 522}
    scrape_site(server, tmp_path, "--retries", 1)
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert (row.status, row.error_kind) == ("failed", "transient")
    server.httpd.broken = {}
    server.reset()
    scrape_site(server, tmp_path)
    assert read_manifest(tmp_path).loc["1995/balto"].status == "ok"


def test_retries_429_honouring_retry_after(site, server, tmp_path):
    server.httpd.limited = {"/1995/posters/casino.jpg": 2}
    assert scrape_site(server, tmp_path) == 0
    assert read_manifest(tmp_path).loc["1995/casino"].status == "ok"
    assert server.counts["/1995/posters/casino.jpg"] == 3


def test_a_429_waits_as_long_as_its_retry_after_says(site, server, tmp_path):
    # 2 s: longer than the backoff would wait at the first retry (at most 0.75 s), so only a client
    # that reads the header waits that long. (A Retry-After of 0 could not tell the two apart.)
    server.httpd.limited = {"/1995/posters/casino.jpg": 1}
    server.httpd.retry_after = "2"
    assert scrape_site(server, tmp_path) == 0
    [told] = server.httpd.limited_at
    [again] = [t for t, path in server.httpd.times if path == "/1995/posters/casino.jpg" and t > told]
    assert again - told >= 1.9


def test_a_429_pauses_every_worker_for_its_retry_after(site, tmp_path):
    srv = FaultyServer(site.root, latency=0.02)
    srv.httpd.limited = {"/1995/posters/casino.jpg": 1}
    srv.httpd.retry_after = "1"
    try:
        assert run_cli("--base-url", srv.url, "--range", "1995-1996", "--out-dir", tmp_path, "--jobs", 4) == 0
    finally:
        srv.close()
    assert read_manifest(tmp_path).loc["1995/casino"].status == "ok"
    [told] = srv.httpd.limited_at
    # The other 3 workers may each have a request on its way when the 429 goes out; after those, no
    # worker starts one until the second has passed. (Ignoring the header, the run would go on at full
    # speed, dozens of requests in that second, and backoff would retry in 0.25-0.75 s.)
    starts = [t - told for t, _ in srv.httpd.times]
    assert len([d for d in starts if 0 < d < 0.95]) <= 3, sorted(d for d in starts if d > 0)[:8]
    assert [d for d in starts if d >= 0.95]  # and the run went on after the pause


def test_robots_txt_disallowed_paths_are_not_requested(site, server, tmp_path):
    server.httpd.robots = "User-agent: *\nDisallow: /1995/posters/casino\nDisallow: /1996/std.html\n"
    assert scrape_site(server, tmp_path) == 0
    manifest = read_manifest(tmp_path)
    assert (manifest.loc["1995/casino"].status, manifest.loc["1995/casino"].error_kind) == ("failed", "robots")
    assert manifest.loc["1996/std.html"].error_kind == "robots"
    assert not [p for p in server.log if p.startswith("/1995/posters/casino") or p == "/1996/std.html"]
    assert server.counts["/robots.txt"] == 1  # read once for the host
    stats = json.loads((tmp_path / "scrape_stats.json").read_text())
    assert stats["errors"]["robots"] == 1 and stats["errors"]["index robots"] == 1
    assert manifest.loc["1995/balto"].status == "ok"


def test_robots_txt_rules_for_our_user_agent_apply(site, server, tmp_path):
    server.httpd.robots = ("User-agent: movie-posters-convnet\nDisallow: /1995/\n\n"
                           "User-agent: *\nDisallow:\n")
    scrape_site(server, tmp_path)
    assert not [p for p in server.log if p.startswith("/1995/")]
    assert read_manifest(tmp_path).loc["1996/balto"].status == "ok"


def test_crawl_delay_spaces_requests_unless_rate_is_stricter(site, tmp_path):
    srv = FaultyServer(site.root)
    srv.httpd.robots = "User-agent: *\nCrawl-delay: 0.4\n"
    try:
        run_cli("--base-url", srv.url, "--range", "1995-1995", "--out-dir", tmp_path / "a", "--limit", 4,
                "--jobs", 4, "--rate", 100)
        gaps_delay = np.diff(sorted(t for t, _ in srv.httpd.times))
        srv.reset()
        run_cli("--base-url", srv.url, "--range", "1995-1995", "--out-dir", tmp_path / "b", "--limit", 4,
                "--jobs", 4, "--rate", 2)
        gaps_rate = np.diff(sorted(t for t, _ in srv.httpd.times))
    finally:
        srv.close()
    # [0] is robots.txt, read before the delay is known. Starts are spaced by the client; arrivals can
    # jitter on a busy machine, so: the whole span, and no two requests close together.
    for gaps, interval in ((gaps_delay[1:], 0.4), (gaps_rate[1:], 0.5)):
        assert len(gaps) >= 4, gaps
        assert gaps.sum() >= 0.9 * interval * len(gaps) and gaps.min() >= interval / 3, (interval, gaps)


def test_unreadable_robots_txt_stops_before_any_download(site, server, tmp_path):
    server.httpd.broken = {"/robots.txt": 503}
    proc = subprocess.run([sys.executable, str(ROOT / "get_posters.py"), "--base-url", server.url, "--range",
                           "1995-1995", "--out-dir", str(tmp_path), "--retries", "1", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert "robots.txt could not be read" in proc.stderr.strip().splitlines()[-1]
    assert set(server.log) == {"/robots.txt"}
    assert not (tmp_path / "posters.csv").exists()


def test_no_retry_on_404(site, server, tmp_path):
    scrape_site(server, tmp_path)
    assert server.counts["/1995/posters/lost_reel_1995.jpg"] == 1


def test_rerun_of_finished_job_requests_no_images(site, server, tmp_path):
    scrape_site(server, tmp_path)
    first = read_manifest(tmp_path)
    server.reset()
    assert scrape_site(server, tmp_path) == 0
    assert server.image_requests() == []
    again = read_manifest(tmp_path)
    assert (again.status == first.status).all()


def test_transient_failures_are_retried_next_run(site, server, tmp_path):
    server.httpd.limited = {"/1995/posters/balto.jpg": 99}
    scrape_site(server, tmp_path, "--retries", 0)
    assert read_manifest(tmp_path).loc["1995/balto"].status == "failed"
    server.httpd.limited = {}
    server.reset()
    scrape_site(server, tmp_path)
    assert read_manifest(tmp_path).loc["1995/balto"].status == "ok"
    assert server.image_requests() == ["/1995/posters/balto.jpg"]


def test_kill_9_mid_run_then_resume_fetches_nothing_twice(site, tmp_path):
    srv = FaultyServer(site.root, latency=0.15)
    out = tmp_path / "out"
    try:
        proc = _run_under_way(srv, out)
        proc.kill()
        proc.wait()
        on_disk = {p.relative_to(out / "posters").as_posix()[:-4] for p in (out / "posters").rglob("*.jpg")}
        assert on_disk, "the run was killed before it saved anything"
        # What kill -9 may leave: temporaries under their hidden names; plant some to be sure.
        for stale in ("posters/1995/.balto.jpg.x1y2.part", "thumbs/1995/.heat.jpg.a1b2.part",
                      ".posters.csv.q9.part"):
            (out / stale).parent.mkdir(parents=True, exist_ok=True)
            (out / stale).write_bytes(b"half")
        fetched_again = _run_again(srv, out)
    finally:
        srv.close()
    assert not (fetched_again & on_disk)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]  # the next run cleans them up
    manifest = read_manifest(out)
    for pid, data in site.good.items():
        assert manifest.loc[pid].status == "ok"
        assert hashlib.sha256((out / manifest.loc[pid].image_path).read_bytes()).digest() == \
            hashlib.sha256(data).digest()


def test_sigterm_mid_run_stops_as_ctrl_c_does_the_manifest_written_whole_and_no_temporary_left(site, tmp_path):
    # `kill PID`, `timeout`, a job manager or a container stopping the run all send SIGTERM.
    srv = FaultyServer(site.root, latency=0.15)
    out = tmp_path / "out"
    try:
        proc = _run_under_way(srv, out, stderr=subprocess.PIPE, text=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "stopped by SIGTERM" in err and "run the same command again" in err and "Traceback" not in err
        done = {p.relative_to(out / "thumbs").as_posix()[:-4] for p in (out / "thumbs").rglob("*.jpg")}
        manifest = read_manifest(out)  # written whole at the stop, as Ctrl-C writes it: no journal to replay
        assert done and done <= set(manifest.index[manifest.status == "ok"])
        assert not (out / "posters.csv.journal").exists()
        assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
        fetched_again = _run_again(srv, out)
    finally:
        srv.close()
    assert not (fetched_again & done)
    assert set(read_manifest(out).loc[list(site.good)].status) == {"ok"}


def test_xlg_fetches_the_extra_large_version(site, server, tmp_path):
    scrape_site(server, tmp_path, "--xlg")
    row = read_manifest(tmp_path).loc["1995/apollo_13"]
    assert row.xlg_path == "posters/1995/apollo_13_xlg.jpg"
    assert (tmp_path / row.xlg_path).read_bytes() == (site.root / "1995/posters/apollo_13_xlg.jpg").read_bytes()
    assert read_manifest(tmp_path).loc["1995/balto"].xlg_path == ""
    server.reset()
    scrape_site(server, tmp_path, "--xlg")
    assert sorted(server.log) == ["/1995/std.html", "/1996/std.html", "/robots.txt"]  # no poster page again


def test_limit_stops_after_n_posters(site, server, tmp_path):
    scrape_site(server, tmp_path, "--limit", 3)
    manifest = read_manifest(tmp_path)
    assert len([p for p in manifest.index if not p.endswith("std.html")]) == 3


def test_jobs_bounds_requests_in_flight(site, tmp_path):
    srv = FaultyServer(site.root, latency=0.05)
    try:
        run_cli("--base-url", srv.url, "--range", "1995-1996", "--out-dir", tmp_path, "--jobs", 3)
    finally:
        srv.close()
    assert 2 <= srv.httpd.max_in_flight <= 3


def test_from_dir_indexes_a_local_folder(tmp_path):
    src = tmp_path / "mine"
    (src / "1984").mkdir(parents=True)
    (src / "misc").mkdir()
    (src / "1984" / "Blade_Runner.jpg").write_bytes(Image.new("RGB", (40, 60), "red").tobytes() and
                                                     _jpeg(40, 60))
    (src / "misc" / "my-poster_ver2.png").write_bytes(_jpeg(30, 50, "PNG"))
    (src / "misc" / "broken.jpg").write_bytes(b"")
    out = tmp_path / "out"
    assert run_cli("--from-dir", src, "--out-dir", out) == 0
    manifest = read_manifest(out)
    row = manifest.loc["1984/blade_runner"]
    assert (row.title, row.year, row.status) == ("Blade Runner", 1984, "ok")
    assert (out / row.image_path).read_bytes() == (src / "1984" / "Blade_Runner.jpg").read_bytes()
    assert (out / row.thumb_path).exists()
    other = manifest.loc["misc/my_poster_ver2"]
    assert (other.title, other.version) == ("My-poster", 2)  # all lower case: given capitals
    assert manifest.loc["misc/broken"].status == "failed"


def _jpeg(w, h, fmt="JPEG"):
    import io
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "blue").save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("args, message", [
    (["--range", "2016-1990"], "runs backwards"),
    (["--range", "nineties"], "--range"),
    (["--jobs", "0"], "--jobs"),
    (["--from-dir", "/no/such/folder"], "--from-dir"),
    (["--thumb-size", "-3"], "--thumb-size"),
    (["--base-url", "127.0.0.1:8000"], "http://127.0.0.1:8000"),
    (["--base-url", "ftp://host/"], "--base-url"),
])
def test_cli_usage_errors_exit_2_in_one_line(args, message, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "get_posters.py"), *args, "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_unreachable_site_exits_non_zero_in_one_line(tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run([sys.executable, str(ROOT / "get_posters.py"), "--base-url", f"http://127.0.0.1:{port}/",
                           "--range", "1995-1995", "--out-dir", str(tmp_path), "--retries", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode not in (0, 2)
    assert "cannot reach" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_index_parser_handles_loose_markup():
    html = """<HTML><BODY><A HREF = ../index.html>Home</A> <a href=alpha1.html>A</a>
      <TABLE><TR><TD>Rob Roy</TD><TD><A HREF = rob_roy.html>poster</A> <a href = rob_roy_ver2.html>v2</a>
      <A href="rob_roy.html"><IMG SRC=thumbs/rob_roy.jpg></A></TD></TR>
      <tr><td><a href="heat.html">Heat</a></td></tr><tr><td><a href="home.html">Home</a></td></tr>
      <tr><td><a href="https://elsewhere.org/1995/x.html">x</a> <a href="../1994/std.html">1994</a>
      <a href="%2e%2e/%2e%2e/outside.html">o</a> <a href="../../../tmp/e.html">e</a>
      <a href="#top">t</a> <a href="mailto:a@b.c">m</a> <a href="rob_roy_xlg.html">big</a></td></tr>
      </TABLE></BODY></HTML>"""
    entries = scrape.parse_year_index(html, "http://h/1995/std.html", 1995)
    assert [(e.name, e.title, e.version) for e in entries] == [
        ("rob_roy", "Rob Roy", 1), ("rob_roy_ver2", "Rob Roy", 2), ("heat", "Heat", 1), ("home", "Home", 1)]


@pytest.mark.parametrize("href", ["../x.html", "%2e%2e/x.html", "%2E%2E%2Fx.html", "/x.html",
                                  "..%2f..%2fx.html", "sub/x.html", "http://other/1995/x.html"])
def test_links_that_leave_the_year_folder_are_not_posters(href):
    assert scrape.poster_name(href, "http://h/1995/std.html") is None


def test_parse_years():
    assert scrape.parse_years("1995-1997") == [1995, 1996, 1997]
    assert scrape.parse_years("2001") == [2001]
    with pytest.raises(ValueError):
        scrape.parse_years("1997-1995")


def test_image_fallback_reads_the_poster_page():
    page = """<img src="../img/logo.gif"><IMG SRC = "posters/heat_ver3.jpg"><img src="/art/heat.jpg">
              <a href="posters/heat_xlg.jpg">big</a>"""
    assert scrape.find_image_url(page, "http://h/1995/heat.html", "heat") == "http://h/1995/posters/heat_ver3.jpg"
    assert scrape.find_image_url('<img src="/art/heat.jpg">', "http://h/1995/heat.html", "heat") == \
        "http://h/art/heat.jpg"
    assert scrape.find_image_url('<img src="http://other/posters/heat.jpg">', "http://h/1995/heat.html",
                                 "heat") is None


@pytest.mark.parametrize("href, name", [("mr._smith.html", "mr._smith"), ("Léon.html", "Léon"),
                                        ("alien-3_ver2.htm", "alien-3_ver2")])
def test_unusual_but_safe_names_are_posters(href, name):
    assert scrape.poster_name(href, "http://h/1995/std.html") == name


def _exif_rotated_jpeg(path, orientation=6):
    """A 60x40 stored JPEG, left half red, right half blue, whose EXIF says: turn it (6 = 90° clockwise)."""
    image = Image.new("RGB", (60, 40), "red")
    image.paste((0, 0, 255), (30, 0, 60, 40))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, format="JPEG", exif=exif.tobytes(), quality=95)


def test_from_dir_thumbnails_are_upright(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    _exif_rotated_jpeg(src / "phone.jpg")
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    row = read_manifest(tmp_path / "out").loc["local/phone"]
    assert (row.width, row.height) == (40, 60)  # as seen, not as stored
    with Image.open(tmp_path / "out" / row.thumb_path) as thumb:
        assert thumb.width < thumb.height
        # Turned 90° clockwise, the stored left (red) half is on top.
        top, bottom = thumb.getpixel((thumb.width // 2, 5)), thumb.getpixel((thumb.width // 2, thumb.height - 5))
        assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_from_dir_keeps_letters_of_any_script_and_honours_limit(tmp_path):
    src = tmp_path / "mine"
    for folder, name in (("été 2020", "plage.jpg"), ("東京", "夜.jpg"), ("misc", "a.jpg"), ("misc", "b.jpg")):
        (src / folder).mkdir(parents=True, exist_ok=True)
        (src / folder / name).write_bytes(_jpeg(30, 40))
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    assert {"été_2020/plage", "東京/夜", "misc/a", "misc/b"} == set(read_manifest(tmp_path / "out").index)
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "two", "--limit", 2) == 0
    assert len(read_manifest(tmp_path / "two")) == 2


def test_from_dir_exits_0_when_every_image_is_unreadable(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"")
    (src / "b.png").write_text("<html>not an image</html>")
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    manifest = read_manifest(tmp_path / "out")
    assert list(manifest.status) == ["failed", "failed"] and all(manifest.error)


def test_from_dir_large_photos_keep_their_size_in_the_manifest(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    Image.new("RGB", (2400, 1600), "green").save(src / "big.jpg", quality=80)
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    row = read_manifest(tmp_path / "out").loc["local/big"]
    assert (row.width, row.height) == (2400, 1600)
    with Image.open(tmp_path / "out" / row.thumb_path) as thumb:
        assert thumb.size == (256, 171)


def _run_under_way(srv, out, **popen):
    """Stage 1 over 1995-1996 of ``srv`` into ``out``, in a process of its own, once its first 3 thumbnails
    are saved."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "get_posters.py"), "--base-url", srv.url, "--range", "1995-1996",
         "--out-dir", str(out), "--jobs", "2", "--no-progress", "-q"], cwd=ROOT, **popen)
    wait_until(lambda: len(list((out / "thumbs").rglob("*.jpg"))) >= 3, 60, "the first 3 thumbnails")
    return proc


def _run_again(srv, out):
    """Stage 1 over the same years again, to its end; the posters whose images it fetched."""
    srv.reset()
    assert run_cli("--base-url", srv.url, "--range", "1995-1996", "--out-dir", out) == 0
    return {p[1:-4].replace("/posters/", "/") for p in srv.image_requests()}


def _slow_run_holding_the_lock(site, out):
    """(server, command, process): a slow scraping run into ``out``, once it holds the output's lock."""
    srv = FaultyServer(site.root, latency=0.3)
    cmd = [sys.executable, str(ROOT / "get_posters.py"), "--base-url", srv.url, "--range", "1995-1996",
           "--out-dir", str(out), "--jobs", "1", "--no-progress", "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    lock = out / ".posters.csv.lock"
    wait_until(lambda: lock.exists() and str(proc.pid) in lock.read_text(), 60, "the first run's lock")
    return srv, cmd, proc


def test_a_second_run_into_the_same_output_stops_at_once(site, tmp_path):
    srv, cmd, first = _slow_run_holding_the_lock(site, tmp_path / "out")
    try:
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        # It stopped at once rather than waiting for the lock: the first run still holds it (below).
        assert second.returncode == 1
        message = second.stderr.strip().splitlines()
        assert len(message) == 1 and f"PID {first.pid}" in message[0], message
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        first.kill()
        first.wait()
        srv.close()


def test_a_lock_left_by_a_killed_run_is_taken_over(site, tmp_path):
    out = tmp_path / "out"
    srv, _, first = _slow_run_holding_the_lock(site, out)
    lock = out / ".posters.csv.lock"
    first.kill()
    first.wait()
    assert lock.exists()  # kill -9 left it behind
    srv.httpd.latency = 0
    try:
        assert run_cli("--base-url", srv.url, "--range", "1995-1995", "--out-dir", out) == 0
    finally:
        srv.close()
    assert read_manifest(out).loc["1995/balto"].status == "ok"
    assert not lock.exists()


@pytest.mark.parametrize("stem, title, year", [
    ("Alien (1979)", "Alien", 1979), ("Heat [1995]_ver2", "Heat", 1995), ("Blade_Runner", "Blade Runner", None),
    ("E.T._the_Extra-Terrestrial", "E.T. the Extra-Terrestrial", None), ("The.Matrix", "The Matrix", None),
    ("Mr._Smith_Goes_to_Washington", "Mr. Smith Goes to Washington", None), ("A.I.", "A.I.", None),
    # a year that ends the name, and capitals for a name all in lower case
    ("air america", "Air America", None), ("Star.Wars.1977", "Star Wars", 1977), ("Name_1977", "Name", 1977),
    ("heat_1995_ver2", "Heat", 1995), ("Blade_Runner_2049", "Blade Runner 2049", None), ("1984", "1984", None),
    ("iPhone story", "iPhone story", None), ("don't look up", "Don't Look Up", None),
])
def test_from_dir_reads_titles_and_years_as_people_name_films(stem, title, year):
    assert scrape.title_and_year(stem) == (title, year)


def test_from_dir_takes_the_year_in_a_file_name(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    (src / "Alien (1979).jpg").write_bytes(_jpeg(30, 40))
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    row = read_manifest(tmp_path / "out").loc["local/alien"]
    assert (row.title, row.year) == ("Alien", 1979)


def test_a_missing_dependency_is_one_line_not_a_traceback(tmp_path):
    # -S: no site-packages, as with a system python3 that never saw requirements.txt
    proc = subprocess.run([sys.executable, "-S", str(ROOT / "get_posters.py"), "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert "make setup" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
