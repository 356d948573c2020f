"""Stage 1's promises against a hostile site and doctored files: each test is named for the promise it keeps.

The site is real (``FaultyServer`` on loopback); what a hostile server answers is in ``hostile.py``.
A run that could hang without the fix runs in a subprocess with a time limit, so that a broken promise
fails the test instead of stalling the suite.
"""

import email.utils
import io
import struct
import subprocess
import sys

import pytest
from PIL import Image

import hostile
from conftest import ROOT
from posters_cnn.scrape import http, stage as scrape
from sitegen import FaultyServer
from test_scrape import read_manifest, run_cli, scrape_site


def run_subprocess(*args, timeout=90):
    """get_posters.py in its own process; a run that does not end within ``timeout`` fails the test."""
    return subprocess.run([sys.executable, str(ROOT / "get_posters.py"), *map(str, args), "--no-progress", "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def doctored_dds() -> bytes:
    """A 1 KB DDS file whose pixel-format flags are zero: Pillow raises NotImplementedError on it."""
    header = bytearray(128)
    header[0:4] = b"DDS "
    struct.pack_into("<IIIIIII", header, 4, 124, 0x1007, 4, 4, 0, 0, 0)
    struct.pack_into("<I", header, 76, 32)
    return bytes(header) + b"\0" * 900


def exif_rotated_jpeg() -> bytes:
    """Stored 60x40, EXIF orientation 6: seen upright it is 40 wide, 60 tall."""
    image = Image.new("RGB", (60, 40), "red")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


# -- bad files never stop a run ---------------------------------------------------------------------
def test_bad_files_never_stop_a_scrape_whatever_the_decoder_raises(site, server, tmp_path):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.text(doctored_dds(), content_type="image/jpeg")
    assert scrape_site(server, tmp_path) == 0
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert (row.status, row.error_kind) == ("failed", "unreadable"), row.error
    assert read_manifest(tmp_path).loc["1995/casino"].status == "ok"


def test_bad_files_never_stop_from_dir_whatever_the_decoder_raises(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    (src / "odd.dds.jpg").write_bytes(doctored_dds())
    Image.new("RGB", (30, 40), "blue").save(src / "fine.jpg")
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    manifest = read_manifest(tmp_path / "out")
    assert manifest.loc["local/odd_dds"].status == "failed"
    assert manifest.loc["local/fine"].status == "ok"


def test_a_scraped_photo_has_its_upright_size_in_the_manifest(site, server, tmp_path):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.text(exif_rotated_jpeg(), content_type="image/jpeg")
    scrape_site(server, tmp_path)
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert (row.width, row.height) == (40, 60)
    with Image.open(tmp_path / row.thumb_path) as thumb:
        assert thumb.width < thumb.height
    # A run that finds the files but not the manifest (killed before its first checkpoint) reads the size
    # from the image's header: upright too.
    (tmp_path / "posters.csv").unlink()
    scrape_site(server, tmp_path)
    assert tuple(read_manifest(tmp_path).loc["1995/balto", ["width", "height"]]) == (40, 60)


# -- the scraper is bounded: in time, in memory, in redirects ----------------------------------------
def test_timeout_bounds_a_whole_request_not_each_read(site, tmp_path):
    srv = FaultyServer(site.root)
    srv.httpd.special["/1995/posters/balto.jpg"] = hostile.drip(pause=0.2)
    try:  # without a deadline this run would take 2,000 s a try
        proc = run_subprocess("--base-url", srv.url, "--range", "1995-1995", "--out-dir", tmp_path,
                              "--timeout", 2, "--retries", 1)
    finally:
        srv.close()
    assert proc.returncode == 0, proc.stderr
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert (row.status, row.error_kind) == ("failed", "transient")
    assert "took longer than 2 s" in row.error


def test_an_endless_page_is_cut_at_the_size_limit(site, tmp_path):
    srv = FaultyServer(site.root)
    srv.httpd.special["/1995/std.html"] = hostile.endless()
    try:
        proc = run_subprocess("--base-url", srv.url, "--range", "1995-1996", "--out-dir", tmp_path)
    finally:
        srv.close()
    assert proc.returncode == 0, proc.stderr
    manifest = read_manifest(tmp_path)
    assert manifest.loc["1995/std.html"].error_kind == "too-large"
    assert manifest.loc["1996/balto"].status == "ok"


def test_a_gzip_bomb_is_refused_after_the_size_limit_not_expanded_whole(site, server):
    bomb = hostile.gzip_bomb(expanded=64 * 1024 * 1024)
    server.httpd.special["/bomb.jpg"] = bomb
    client = http.PoliteClient(robots=False, max_bytes=4 * 1024 * 1024)
    try:
        with pytest.raises(http.FetchError) as caught:
            client.get(f"{server.url}bomb.jpg")
    finally:
        client.close()
    assert caught.value.kind == "too-large"
    assert client.stats.bytes == 0


def test_a_gzip_bomb_poster_is_a_failed_row_of_its_own_kind(site, server, tmp_path):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.gzip_bomb(expanded=80 * 1024 * 1024)
    assert scrape_site(server, tmp_path) == 0
    assert read_manifest(tmp_path).loc["1995/balto"].error_kind == "too-large"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored_not_fatal(site, server, tmp_path, value):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.retry_after(value)
    assert scrape_site(server, tmp_path) == 0
    assert read_manifest(tmp_path).loc["1995/balto"].status == "ok"


@pytest.mark.parametrize("value, seconds", [("0", 0.0), ("7", 7.0), ("2.5", 2.5), ("-3", 0.0),
                                            ("86400", http.MAX_RETRY_AFTER_S), ("soon", None), ("nan", None)])
def test_retry_after_seconds_are_read_and_capped(value, seconds):
    assert http.parse_retry_after(value) == seconds


@pytest.mark.parametrize("ahead, seconds", [(30, 30.0), (-30, 0.0), (3600, http.MAX_RETRY_AFTER_S)])
def test_retry_after_as_an_http_date_counts_from_now(ahead, seconds):
    now = 1_800_000_000.0
    value = email.utils.formatdate(now + ahead, usegmt=True)
    assert http.parse_retry_after(value, now=now) == pytest.approx(seconds)


@pytest.mark.parametrize("delay", ["1e9", "inf", "86400"])
def test_a_crawl_delay_no_run_can_honour_stops_the_run_in_one_line(site, server, tmp_path, delay):
    server.httpd.robots = f"User-agent: *\nCrawl-delay: {delay}\n"
    proc = run_subprocess("--base-url", server.url, "--range", "1995-1995", "--out-dir", tmp_path, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Crawl-delay" in lines[0], proc.stderr
    assert set(server.log) == {"/robots.txt"}


def test_a_redirect_to_another_host_obeys_that_hosts_robots_txt(site, server, tmp_path):
    other = FaultyServer(site.root)
    other.httpd.robots = "User-agent: *\nDisallow: /\n"
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.redirect(f"{other.url}1995/posters/balto.jpg")
    try:
        scrape_site(server, tmp_path)
    finally:
        other.close()
    assert other.log == ["/robots.txt"]
    assert read_manifest(tmp_path).loc["1995/balto"].error_kind == "robots"


def test_a_redirect_within_the_site_is_followed(site, server, tmp_path):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.redirect("/1995/posters/casino.jpg", 301)
    scrape_site(server, tmp_path)
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert row.status == "ok"
    assert (tmp_path / row.image_path).read_bytes() == site.good["1995/casino"]


def test_redirects_are_bounded(site, server, tmp_path):
    server.httpd.special["/1995/posters/balto.jpg"] = hostile.redirect("/1995/posters/balto.jpg")
    scrape_site(server, tmp_path)
    assert read_manifest(tmp_path).loc["1995/balto"].error_kind == "redirect"
    assert server.counts["/1995/posters/balto.jpg"] == http.MAX_REDIRECTS + 1


@pytest.mark.parametrize("answer", [
    hostile.cut_short(b"\xff\xd8" + b"x" * 5000, keep=100),
    hostile.bad_gzip(b"not gzip at all" * 10),
], ids=["closed-mid-body", "bad-gzip"])
def test_a_body_broken_in_transit_is_tried_again_on_the_next_run(site, server, tmp_path, answer):
    server.httpd.special["/1995/posters/balto.jpg"] = answer
    scrape_site(server, tmp_path, "--retries", 0)
    row = read_manifest(tmp_path).loc["1995/balto"]
    assert (row.status, row.error_kind) == ("failed", "transient"), row.error
    server.httpd.special.clear()
    scrape_site(server, tmp_path)
    assert read_manifest(tmp_path).loc["1995/balto"].status == "ok"


def test_a_row_of_thousands_of_links_is_read_in_linear_work(monkeypatch):
    calls = {"n": 0}
    text = scrape._text

    def counted(node):
        calls["n"] += 1
        return text(node)

    monkeypatch.setattr(scrape, "_text", counted)
    n = 2000
    html = "<table><tr><td>" + " ".join(f'<a href="p{i}.html">poster</a>' for i in range(n)) + "</td></tr></table>"
    entries = scrape.parse_year_index(html, "http://h/1995/std.html", 1995)
    assert len(entries) == n
    assert calls["n"] <= 3 * n  # each link's text read a bounded number of times, not once per link of its row


# -- robots.txt as RFC 9309 says ---------------------------------------------------------------------
def test_robots_txt_wildcards_and_the_longest_match_apply(site, server, tmp_path):
    server.httpd.robots = ("\ufeffUser-agent: *\n"
                           "Disallow: /1995/posters/*.jpg$\n"
                           "Allow: /1995/posters/balto.jpg\n")
    scrape_site(server, tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest.loc["1995/balto"].status == "ok"  # the longer Allow wins over the wildcard
    assert manifest.loc["1995/casino"].error_kind == "robots"
    assert "/1995/posters/casino.jpg" not in server.log
    assert manifest.loc["1996/casino"].status == "ok"


def test_robots_txt_behind_a_byte_order_mark_is_obeyed(site, server, tmp_path):
    server.httpd.robots = "\ufeffUser-agent: *\nDisallow: /1995/\n"
    scrape_site(server, tmp_path)
    assert not [p for p in server.log if p.startswith("/1995/")]


def test_robots_txt_is_read_up_to_500_kib(site, server):
    filler = "# " + "x" * 1000 + "\n"
    body = ("User-agent: *\nDisallow: /early\n" + filler * 700 + "Disallow: /late\n")
    server.httpd.special["/robots.txt"] = hostile.text(body)
    client = http.PoliteClient()
    try:
        rules = client.robots_for(server.url)
        with pytest.raises(http.FetchError):
            rules.check(f"{server.url}early", client.user_agent)
        rules.check(f"{server.url}late", client.user_agent)  # past 500 KiB: not read
    finally:
        client.close()
    assert client.stats.bytes == http.ROBOTS_MAX_BYTES


# -- nothing is lost: manifests ----------------------------------------------------------------------
def test_a_manifest_saved_by_a_spreadsheet_keeps_every_row_on_the_next_scrape(site, server, tmp_path):
    scrape_site(server, tmp_path)
    manifest = tmp_path / "posters.csv"
    before = read_manifest(tmp_path)
    text = manifest.read_text(encoding="utf-8")
    manifest.write_bytes("\ufeff".encode() + text.replace("\n", "\r\n").encode())  # as Excel saves it
    assert run_cli("--base-url", server.url, "--range", "1995-1995", "--out-dir", tmp_path) == 0
    after = read_manifest(tmp_path)
    assert set(after.index) == set(before.index)
    assert after.loc["1996/balto"].status == "ok"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00g\x00a\x00r\x00b", b"name,when\nx,y\n"], ids=["utf-16", "columns"])
def test_a_manifest_that_cannot_be_read_is_refused_and_left_as_it_is(site, server, tmp_path, capsys, content):
    (tmp_path / "posters.csv").write_bytes(content)
    assert run_cli("--base-url", server.url, "--range", "1995-1995", "--out-dir", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "posters.csv" in err[0]
    assert (tmp_path / "posters.csv").read_bytes() == content
    assert server.log == []


def test_from_dir_into_a_folder_that_holds_a_scrape_keeps_the_scrape(site, server, tmp_path):
    scrape_site(server, tmp_path / "data")
    scraped = set(read_manifest(tmp_path / "data").index)
    src = tmp_path / "mine"
    (src / "1995").mkdir(parents=True)
    Image.new("RGB", (30, 40), "green").save(src / "1995" / "balto.jpg")
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "data") == 0
    manifest = read_manifest(tmp_path / "data")
    assert scraped < set(manifest.index)
    assert manifest.loc["1995/balto"].image_url.startswith("http")  # the scrape's poster keeps its id
    mine = manifest[manifest.image_url.str.startswith("file:")]
    assert list(mine.index) == ["1995/balto_2"]


def test_from_dir_ids_and_thumbnails_follow_their_files_across_runs(tmp_path):
    src, out = tmp_path / "mine", tmp_path / "out"
    src.mkdir()
    Image.new("RGB", (30, 40), (220, 0, 0)).save(src / "Foo.jpg")
    assert run_cli("--from-dir", src, "--out-dir", out) == 0
    Image.new("RGB", (30, 40), (0, 0, 220)).save(src / "FOO.gif")  # sorts before Foo.jpg
    assert run_cli("--from-dir", src, "--out-dir", out) == 0
    manifest = read_manifest(out)

    def colour(pid):
        with Image.open(out / manifest.loc[pid].thumb_path) as thumb:
            return thumb.convert("RGB").getpixel((thumb.width // 2, thumb.height // 2))

    assert manifest.loc["local/foo"].image_url.endswith("/Foo.jpg")
    assert colour("local/foo")[0] > 180
    assert manifest.loc["local/foo_2"].image_url.endswith("/FOO.gif")
    assert colour("local/foo_2")[2] > 180
    # A file changed since: its thumbnail is made again.
    import os
    Image.new("RGB", (30, 40), (0, 200, 0)).save(src / "Foo.jpg")
    stamp = os.stat(out / manifest.loc["local/foo"].thumb_path).st_mtime + 5
    os.utime(src / "Foo.jpg", (stamp, stamp))
    assert run_cli("--from-dir", src, "--out-dir", out) == 0
    manifest = read_manifest(out)
    assert colour("local/foo")[1] > 150


def test_from_dir_stores_what_a_symlink_points_to_not_the_link(tmp_path):
    src = tmp_path / "mine"
    (src / "real").mkdir(parents=True)
    Image.new("RGB", (30, 40), "blue").save(src / "real" / "poster.jpg")
    (src / "alias.jpg").symlink_to("real/poster.jpg")  # relative: it would dangle anywhere else
    assert run_cli("--from-dir", src, "--out-dir", tmp_path / "out") == 0
    row = read_manifest(tmp_path / "out").loc["local/alias"]
    stored = tmp_path / "out" / row.image_path
    assert row.status == "ok" and not stored.is_symlink()
    assert stored.read_bytes() == (src / "real" / "poster.jpg").read_bytes()

