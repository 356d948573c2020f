#!/usr/bin/env python3
"""Plant realistic slips in the code behind each README promise, one at a time, and run the tests.

Each slip is the smallest change a developer could make by mistake (a check dropped, a bound
forgotten, ``innerHTML`` for ``textContent``, two lines in the wrong order). A slip is *caught* when
the tests named for it fail; the target is every slip caught. The code is copied to a scratch folder
first (tracked files, plus ``web/vendor`` for the browser tests): this checkout is never touched.

    .venv/bin/python bench/slips.py                 # every slip: about 10 minutes on 2 cores
    .venv/bin/python bench/slips.py --only csv url  # the slips whose name contains one of these words
    .venv/bin/python bench/slips.py --list

Writes ``bench/out/slips.json`` and prints a table for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = "node"


@dataclass(frozen=True)
class Slip:
    name: str
    promise: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or files; "node" for the page's unit tests


T = "tests/"
SCRAPE = T + "test_trust_scrape.py::"
MAPS = T + "test_trust_maps.py::"
PROMISES = T + "test_promises.py::"
PAGE = T + "test_page_trust.py::"
CHECKPOINTS = T + "test_checkpoints.py::"
UPDATE = T + "test_update.py::"
CATEGORIES = T + "test_categories.py::"
PAGE_CATEGORIES = T + "test_page_categories.py::"
FULL = T + "test_page_full.py::"
RESUME = T + "test_stage3_resume.py::"

SLIPS = [
    # -- bad files never stop a run --------------------------------------------------------------
    Slip("decode-narrow-except", "bad files never stop a run", "posters_cnn/images.py",
         "except Exception as exc:  # noqa: BLE001 - every decoder failure is a bad file, whatever its type",
         "except (OSError, SyntaxError, ValueError, EOFError) as exc:",
         (SCRAPE + "test_bad_files_never_stop_a_scrape_whatever_the_decoder_raises",
          SCRAPE + "test_bad_files_never_stop_from_dir_whatever_the_decoder_raises")),
    Slip("exif-stored-size", "a photo is shown as it was taken", "posters_cnn/scrape/stage.py",
         "record.width, record.height = images.upright_size(image)  # as the thumbnail and the map show it",
         "record.width, record.height = image.size",
         (SCRAPE + "test_a_scraped_photo_has_its_upright_size_in_the_manifest",)),
    # -- the scraper is polite and bounded -------------------------------------------------------
    Slip("no-deadline", "--timeout bounds each request", "posters_cnn/scrape/http.py",
         "        _current.deadline = self\n        _WATCHDOG.watch(self)",
         "        _current.deadline = self",
         (SCRAPE + "test_timeout_bounds_a_whole_request_not_each_read",)),
    Slip("size-cap-inverted", "a body is read up to a size limit", "posters_cnn/scrape/http.py",
         "if more and not truncate:", "if more and truncate:",
         (SCRAPE + "test_a_gzip_bomb_is_refused_after_the_size_limit_not_expanded_whole",)),
    Slip("retry-after-uncapped", "Retry-After is honoured, within reason", "posters_cnn/scrape/http.py",
         "return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)", "return max(seconds, 0.0)",
         (SCRAPE + "test_retry_after_seconds_are_read_and_capped",)),
    Slip("retry-after-date-misread", "Retry-After is honoured, within reason", "posters_cnn/scrape/http.py",
         "seconds = when.timestamp() - (time.time() if now is None else now)",
         "seconds = (time.time() if now is None else now) - when.timestamp()",
         (SCRAPE + "test_retry_after_as_an_http_date_counts_from_now",)),
    Slip("retry-after-ignored", "Retry-After is honoured, within reason", "posters_cnn/scrape/http.py",
         "delay = retry_after if retry_after is not None else self._backoff_delay(attempt)",
         "delay = self._backoff_delay(attempt)",
         (T + "test_scrape.py::test_a_429_waits_as_long_as_its_retry_after_says",)),
    Slip("retry-after-nan", "Retry-After is honoured, within reason", "posters_cnn/scrape/http.py",
         "    if not math.isfinite(seconds):\n        return None\n", "",
         (SCRAPE + "test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored_not_fatal",)),
    Slip("robots-bom", "robots.txt is obeyed", "posters_cnn/scrape/http.py",
         '.decode("utf-8", "replace").lstrip("\\ufeff")', '.decode("utf-8", "replace")',
         (SCRAPE + "test_robots_txt_behind_a_byte_order_mark_is_obeyed",)),
    Slip("robots-first-hop-only", "robots.txt is obeyed", "posters_cnn/scrape/http.py",
         "        for _ in range(MAX_REDIRECTS + 1):\n            if check_robots and self.robots:\n"
         "                self.robots_for(url).check(url, self.user_agent)\n",
         "        if check_robots and self.robots:\n            self.robots_for(url).check(url, self.user_agent)\n"
         "        for _ in range(MAX_REDIRECTS + 1):\n",
         (SCRAPE + "test_a_redirect_to_another_host_obeys_that_hosts_robots_txt",)),
    Slip("crawl-delay-ignored", "robots.txt is obeyed", "posters_cnn/scrape/stage.py",
         "        if robots.refused:\n            raise StageError(robots.refused)\n", "",
         (SCRAPE + "test_a_crawl_delay_no_run_can_honour_stops_the_run_in_one_line",)),
    Slip("broken-body-permanent", "what may work later is tried again", "posters_cnn/scrape/http.py",
         "except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,",
         "except (requests.ConnectionError, requests.Timeout,",
         (SCRAPE + "test_a_body_broken_in_transit_is_tried_again_on_the_next_run",)),
    # -- nothing is lost ---------------------------------------------------------------------------
    Slip("atomic-write-in-place", "files are written atomically", "posters_cnn/fsutil.py",
         "    with atomic_path(path) as tmp:\n        with open(tmp, \"wb\") as fh:",
         "    if True:\n        with open(path, \"wb\") as fh:",
         (PROMISES + "test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary",)),
    Slip("count-before-rows", "a stopped stage 2 leaves a file the next run extends", "posters_cnn/contracts/store.py",
         "        features[self.count:end] = rows[:n].astype(np.float32, copy=False)\n"
         "        ids[self.count:end] = poster_ids\n        self.handle.flush()\n        self.count = end\n"
         "        self.handle.attrs[\"count\"] = end",
         "        self.handle.attrs[\"count\"] = end\n"
         "        features[self.count:end] = rows[:n].astype(np.float32, copy=False)\n"
         "        ids[self.count:end] = poster_ids\n        self.handle.flush()\n        self.count = end",
         (PROMISES + "test_count_covers_only_rows_that_were_written",)),
    Slip("no-room-taken", "a full disk loses no row", "posters_cnn/contracts/store.py",
         "        self._reserve(n * (self.dim * 4 + 64) + sum(len(pid.encode()) for pid in poster_ids))\n", "",
         (MAPS + "test_a_full_disk_in_stage_2_keeps_the_rows_before_it_and_the_next_run_goes_on",)),
    Slip("skips-read-again", "a re-run does no finished work again", "posters_cnn/contracts/store.py",
         "    ids.update(_decode(handle[SKIPPED_ID][:skipped]))\n", "",
         (PROMISES + "test_a_rerun_does_not_read_unreadable_images_again",)),
    Slip("manifest-no-bom", "a manifest a spreadsheet saved is read", "posters_cnn/contracts/manifest.py",
         'encoding="utf-8-sig"', 'encoding="utf-8"',
         (SCRAPE + "test_a_manifest_saved_by_a_spreadsheet_keeps_every_row_on_the_next_scrape",)),
    Slip("manifest-dropped", "an unreadable manifest is refused, never dropped", "posters_cnn/contracts/manifest.py",
         "            if missing:\n                raise UsageError(f\"manifest {path} lacks column(s)",
         "            if missing:\n                return []\n                raise UsageError(f\"manifest {path} lacks column(s)",
         (SCRAPE + "test_a_manifest_that_cannot_be_read_is_refused_and_left_as_it_is",)),
    Slip("from-dir-replaces", "--from-dir keeps what the folder holds", "posters_cnn/scrape/stage.py",
         "        records += [record for pid, record in previous.items() if pid not in listed]  # nothing is dropped\n",
         "",
         (SCRAPE + "test_from_dir_into_a_folder_that_holds_a_scrape_keeps_the_scrape",)),
    Slip("from-dir-ids-by-order", "--from-dir ids follow their files", "posters_cnn/scrape/stage.py",
         "    chosen = {uri: earlier_id[uri] for _, uri, *_ in planned if uri in earlier_id}",
         "    chosen = {}",
         (SCRAPE + "test_from_dir_ids_and_thumbnails_follow_their_files_across_runs",)),
    Slip("symlink-stored", "--from-dir stores images, not links", "posters_cnn/fsutil.py",
         "        src = os.path.realpath(src)\n", "        pass\n",
         (SCRAPE + "test_from_dir_stores_what_a_symlink_points_to_not_the_link",)),
    Slip("from-dir-unlocked", "one run per output", "get_posters.py",
         "        with cli.OutputLock(manifest):\n            summary = scrape.index_folder(",
         "        if True:\n            summary = scrape.index_folder(",
         (PROMISES + "test_from_dir_waits_for_no_one_it_stops_when_its_output_is_in_use",)),
    Slip("switch-before-companions", "a stopped stage 3 leaves the earlier map whole", "posters_cnn/mapping/stage.py",
         "    write_json_atomic(out_dir / own / PAIRS_IN_RUN, pairs_doc)\n    if clusters_csv is not None:\n"
         "        write_text_atomic(out_dir / own / CLUSTERS_IN_RUN, clusters_csv)\n"
         "    kept.save(out_dir / own / mapstate.FILE)\n"
         "    install_page(out_dir)\n"
         "    write_map(output, own, meta, columns)\n",
         "    write_map(output, own, meta, columns)\n"
         "    write_json_atomic(out_dir / own / PAIRS_IN_RUN, pairs_doc)\n    if clusters_csv is not None:\n"
         "        write_text_atomic(out_dir / own / CLUSTERS_IN_RUN, clusters_csv)\n"
         "    kept.save(out_dir / own / mapstate.FILE)\n"
         "    install_page(out_dir)\n",
         (MAPS + "test_a_stopped_rerun_leaves_the_earlier_map_whole",)),
    # -- the map's table (data.json format 3) ------------------------------------------------------
    Slip("table-switch-before-rows", "a stopped stage 3 leaves the earlier map whole", "posters_cnn/mapping/stage.py",
         "    about = maptable.write(run / folder, columns, meta)\n    meta[\"format\"] = maptable.FORMAT\n",
         "    write_json_atomic(output, {\"meta\": {**meta, \"table\": {\"path\": f\"{own}/{folder}/x\"}}})\n"
         "    about = maptable.write(run / folder, columns, meta)\n    meta[\"format\"] = maptable.FORMAT\n",
         (MAPS + "test_a_stopped_rerun_leaves_the_earlier_map_whole",)),
    Slip("table-tile-split-off-by-one", "every poster is in one table file, which holds its centre",
         "posters_cnn/contracts/maptable.py", "np.floor((values - origin) / (span / side))",
         "np.round((values - origin) / (span / side))",
         (T + "test_maptable.py",)),
    Slip("table-poster-twice", "a table that holds a poster twice is refused", "web/logic.js",
         "if (!(i >= 0 && i < rows) || seen[i])", "if (!(i >= 0 && i < rows))", ("node",)),
    Slip("table-unchecked-rows", "a doctored table is refused with a message", "posters_cnn/contracts/maptable.py",
         "        if part.num_rows != rows:\n", "        if False:\n", (T + "test_maptable.py",)),
    # -- everything is written under the output folder ------------------------------------------
    Slip("manifest-dotdot", "nothing is read or written outside its folder", "posters_cnn/fsutil.py",
         r'_UNSAFE_PATH = re.compile(r"(?:^|/)\.{0,2}(?:/|$)', r'_UNSAFE_PATH = re.compile(r"(?:^|/)\.?(?:/|$)',
         (MAPS + "test_a_doctored_manifest_cannot_publish_or_write_outside_its_folders",)),
    Slip("map-name-case", "maps sharing a folder keep their own files", "posters_cnn/mapping/stage.py",
         'if output.suffix != ".json":', 'if output.suffix.lower() != ".json":',
         (MAPS + "test_a_map_name_differing_only_in_case_of_its_suffix_is_refused",)),
    Slip("duplicate-ids", "each poster is on the map once", "posters_cnn/mapping/stage.py",
         "keep[i] = pid in known and pid not in seen", "keep[i] = pid in known",
         (MAPS + "test_a_poster_listed_twice_is_mapped_once",)),
    Slip("oserror-traceback", "bad input and failures are one line", "posters_cnn/cli.py",
         "    except OSError as exc:  # a read-only or full output folder",
         "    except NotImplementedError as exc:  # a read-only or full output folder",
         (MAPS + "test_an_output_folder_that_cannot_be_written_is_one_line",)),
    # -- stage 2's input, stage 3's pairs and clusters ---------------------------------------------
    Slip("crop-corner", "--crop center cuts the centred square", "posters_cnn/features/stage.py",
         "left, top = (rgb.width - side) // 2, (rgb.height - side) // 2", "left, top = 0, 0",
         (PROMISES + "test_center_crop_keeps_the_middle_square",)),
    Slip("resize-filter", "stage 2 resizes with Pillow's BILINEAR", "posters_cnn/features/stage.py",
         "rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)",
         "rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)",
         (PROMISES + "test_the_poster_is_resized_with_pillows_bilinear_filter",)),
    Slip("pairs-keep-versions", "closest pairs exclude versions of one movie", "posters_cnn/mapping/similarity.py",
         "keep = np.ones_like(values, dtype=bool) if groups is None else groups[i] != groups[j]",
         "keep = np.ones_like(values, dtype=bool)",
         (PROMISES + "test_closest_pairs_never_pair_versions_of_one_movie",)),
    Slip("face-first-member", "a cluster's face is its most central member", "posters_cnn/mapping/clusters.py",
         '"face": ids[central[0]],', '"face": ids[members[0]],',
         (PROMISES + "test_a_clusters_face_is_its_member_nearest_the_middle",)),
    # -- the page --------------------------------------------------------------------------------
    Slip("url-any-origin", "the page fetches nothing outside its folder", "web/logic.js",
         "if (url.origin !== root.origin || url.username", "if (url.username", ("node",)),
    Slip("tooltip-html", "titles are text, never HTML", "web/interaction.js",
         "tip.textContent =", "tip.innerHTML =",
         (PAGE + "test_titles_stay_text_in_the_tooltip_and_the_pairs_captions",)),
    Slip("caption-html", "titles are text, never HTML", "web/panels.js",
         "caption.textContent =", "caption.innerHTML =",
         (PAGE + "test_titles_stay_text_in_the_tooltip_and_the_pairs_captions",)),
    Slip("page-link-any-scheme", "the page runs no data as code", "web/panels.js",
         "const safePage = /^https?:\\/\\//i.test(url);", "const safePage = Boolean(url);",
         (PAGE + "test_a_poster_page_link_is_only_ever_a_web_address",)),
    Slip("csv-tab-cr", "the export never runs as a formula", "web/logic.js",
         "/^[=+\\-@\\t\\r]/", "/^[=+\\-@]/", ("node",)),
    Slip("csv-strings-only", "the export never runs as a formula", "web/logic.js",
         'if (typeof value !== "number" && /^', 'if (typeof value === "string" && /^', ("node",)),
    Slip("year-bounds", "the year filter keeps its bounds", "web/logic.js",
         "return year >= from && year <= to;", "return year > from && year < to;", ("node",)),
    Slip("presence-xy", "the page fetches only tiles that exist", "web/geometry.js",
         "const bit = y * side + x;", "const bit = x * side + y;", ("node",)),
    Slip("positions-unbounded", "a doctored map cannot freeze the tab", "web/logic.js",
         'const onMap = (v) => typeof v === "number" && Math.abs(v) <= 1.01;',
         'const onMap = (v) => typeof v === "number";', ("node",)),
    Slip("neighbours-unbounded", "a doctored map cannot freeze the tab", "web/logic.js",
         "if (!Number.isInteger(k) || k < 0 || k > LIMITS.neighbors)", "if (!Number.isInteger(k) || k < 0)",
         ("node",)),
    Slip("pairs-unbounded", "a doctored pairs file cannot freeze the tab", "web/logic.js",
         "    if (out.length >= LIMITS.pairs) break;\n", "", ("node",)),
    Slip("lasso-unbounded", "a doctored permalink cannot freeze the tab", "web/logic.js",
         "if (points.length >= 6 && points.length <= 2 * LIMITS.lasso)", "if (points.length >= 6)", ("node",)),
    # -- checkpoints cost what they add; a stopped run's rows are kept -----------------------------
    Slip("checkpoint-rewrites-manifest", "a checkpoint costs what it adds", "posters_cnn/scrape/stage.py",
         "journal.append(fresh)  # what it adds, not the whole manifest again",
         "journal.finish(fresh, list(done.values()))",
         (CHECKPOINTS + "test_a_run_that_dies_before_writing_the_manifest_keeps_what_it_checkpointed",)),
    Slip("journal-unread", "a stopped stage 1 keeps what it checkpointed", "posters_cnn/contracts/manifest.py",
         "    newer = {row[\"poster_id\"]: row for row in _journal_rows(path) if row[\"poster_id\"]}\n",
         "    newer = {}\n",
         (CHECKPOINTS + "test_the_journal_over_the_manifest",)),
    Slip("from-dir-decodes-again", "a resumed --from-dir reads no image twice", "posters_cnn/scrape/stage.py",
         "if _thumb_is_current(thumb_file, path, before, record) and before.width and before.height:",
         "if False:", (CHECKPOINTS + "test_a_stopped_from_dir_run_decodes_nothing_twice",)),
    Slip("checkpoint-key-no-perplexity", "a stopped stage 3 resumes into the map it would have made",
         "posters_cnn/mapping/stage.py", 'embed_key = checkpoints.key_of("tsne", pca_key, tsne, perplexity, seed,',
         'embed_key = checkpoints.key_of("tsne", pca_key, tsne, seed,',
         (T + "test_stage3_resume.py::test_a_checkpoint_of_other_settings_or_other_features_is_not_used",)),
    Slip("checkpoint-features-unchanged", "a stopped stage 3 resumes into the map it would have made",
         "posters_cnn/mapping/stage.py", '"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,', '"size": stat.st_size,',
         (T + "test_stage3_resume.py::test_a_checkpoint_of_other_settings_or_other_features_is_not_used",)),
    Slip("checkpoint-not-saved", "a stopped stage 3 starts again after its long steps", "posters_cnn/mapping/stage.py",
         '            saved.save("tsne", embed_key, {"raw": embedding.raw}, embedding.info)\n', "",
         (T + "test_stage3_resume.py",)),
    Slip("candidates-not-loaded", "a stopped stage 3 starts again after its search", "posters_cnn/mapping/checkpoints.py",
         "        if kept.read_back(within or {}):", "        if kept._restart():",
         (T + "test_stage3_resume.py::test_a_run_stopped_after_the_search_resumes_from_its_candidates",)),
    Slip("rows-so-far-start-over", "a stopped stage 3 goes on from the last rows of its search",
         "posters_cnn/mapping/similarity.py", "    first = so_far.done if so_far is not None else 0\n",
         "    first = 0\n", (RESUME + "test_a_run_stopped_part_way_through_the_search_goes_on_from_its_last_rows",)),
    Slip("rows-so-far-width-chosen-again", "a stopped stage 3 goes on from the last rows of its search",
         "posters_cnn/mapping/similarity.py", "    width = so_far.info if so_far is not None and so_far.info else None\n",
         "    width = None\n", (RESUME + "test_a_run_stopped_part_way_through_the_search_goes_on_from_its_last_rows",)),
    Slip("rows-so-far-lost-on-stop", "a stopped stage 3 goes on from the last rows of its search",
         "posters_cnn/mapping/similarity.py", "    finally:  # stopped (Ctrl-C) or done: the rows found are kept\n",
         "    except KeyboardInterrupt:\n        raise\n    else:\n",
         (RESUME + "test_a_run_stopped_part_way_through_the_search_goes_on_from_its_last_rows",)),
    Slip("rows-so-far-untruncated", "a doctored checkpoint is made again", "posters_cnn/mapping/checkpoints.py",
         "                fh.truncate(self.done * self.dtype.itemsize)\n", "",
         (RESUME + "test_a_run_stopped_part_way_through_the_search_goes_on_from_its_last_rows",)),
    Slip("rows-so-far-unhashed", "a doctored checkpoint is made again", "posters_cnn/mapping/checkpoints.py",
         'if digest.hexdigest() != told.get("sha256"):', "if False:",
         (RESUME + "test_a_run_stopped_after_the_search_resumes_from_its_candidates",)),
    Slip("rows-so-far-unbounded", "a doctored checkpoint is made again", "posters_cnn/mapping/checkpoints.py",
         "        if _refused(self.path, arrays, within):", "        if _refused(self.path, arrays, {}):",
         (RESUME + "test_a_run_stopped_after_the_search_resumes_from_its_candidates",)),
    Slip("tsne-state-from-the-phase-start", "a stopped stage 3 goes on from the t-SNE's last state",
         "posters_cnn/mapping/layout.py", "        first = done if step == phase else 0\n",
         "        first = 0\n", (RESUME + "test_a_run_stopped_part_way_through_the_t_sne_goes_on_from_its_last_state",)),
    Slip("tsne-state-unexaggerated", "a stopped stage 3 goes on from the t-SNE's last state",
         "posters_cnn/mapping/layout.py", "        embedding.affinities.P *= phases[0][1]\n", "",
         (RESUME + "test_a_run_stopped_part_way_through_the_t_sne_goes_on_from_its_last_state",)),
    Slip("tsne-neighbours-searched-again", "a stopped stage 3 goes on from the t-SNE's last state",
         "posters_cnn/mapping/layout.py", "    if got:\n        return got[0][\"index\"], got[0][\"distance\"]\n", "",
         (RESUME + "test_a_run_stopped_part_way_through_the_t_sne_goes_on_from_its_last_state",)),
    Slip("tsne-state-unchecked", "a doctored checkpoint is made again", "posters_cnn/mapping/layout.py",
         "            and 0 <= done < phases[phase][0]):", "            and 0 <= done):",
         (RESUME + "test_a_doctored_t_sne_state_is_not_taken_up",)),
    Slip("candidates-twice", "a doctored checkpoint is made again", "posters_cnn/mapping/stage.py",
         'if so_far.done and len(np.unique(so_far.arrays["row"])) != so_far.done:', "if False:",
         (RESUME + "test_kept_candidates_that_name_a_poster_twice_or_follow_other_lists_are_searched_again",)),
    Slip("candidates-other-lists", "a stopped stage 3 resumes into the map it would have made",
         "posters_cnn/mapping/similarity.py",
         'if first and not np.array_equal(so_far.arrays["row"][:, 0], lists.order[:first]):', "if False:",
         (RESUME + "test_kept_candidates_that_name_a_poster_twice_or_follow_other_lists_are_searched_again",)),
    Slip("checkpoint-rows-unchecked", "a doctored checkpoint is made again", "posters_cnn/mapping/checkpoints.py",
         "    for name, bound in within.items():", "    for name, bound in {}.items():",
         (T + "test_stage3_resume.py::test_similar_posters_that_are_no_posters_are_found_again",
          T + "test_stage3_resume.py::test_a_run_stopped_after_the_search_resumes_from_its_candidates")),
    # -- an update adds posters without moving the map ----------------------------------------------
    Slip("update-recentres", "new posters join a map without moving it", "posters_cnn/mapping/update.py",
         "return np.clip((raw - saved.centre) * saved.scale, -1.0, 1.0)",
         "return np.clip((raw - (raw.max(axis=0) + raw.min(axis=0)) / 2) * saved.scale, -1.0, 1.0)",
         (UPDATE + "test_new_posters_join_and_no_poster_moves",)),
    Slip("update-ignores-settings", "an update keeps the map's settings", "posters_cnn/mapping/update.py",
         "if key in given and key in was and given[key] != was[key]:", "if False:",
         (UPDATE + "test_other_settings_are_refused_in_one_line",)),
    Slip("data-file-cached", "the page shows the map stage 3 wrote last", "web/loader.js",
         'fetch(url, { cache: "no-cache" })', "fetch(url)",
         (UPDATE + "test_the_page_shows_the_updated_map_not_a_cached_one",)),
    # -- one geometry for stage 3 and the page --------------------------------------------------
    Slip("tile-edge-python", "stage 3 and the page agree where posters lie", "posters_cnn/contracts/geometry.py",
         "last = np.ceil((boxes[..., 2:] - origin) / size) - 1", "last = np.floor((boxes[..., 2:] - origin) / size)",
         (T + "test_geometry.py",)),
    Slip("tile-edge-page", "stage 3 and the page agree where posters lie", "web/geometry.js",
         "Math.ceil((box[2] - origin) / size) - 1", "Math.floor((box[2] - origin) / size)", ("node",)),
    Slip("pick-lowest", "stage 3 and the page agree where posters lie", "web/geometry.js",
         "if (i > best && boxHolds(boxOf(i), px, py)) best = i;", "if (best < 0 && boxHolds(boxOf(i), px, py)) best = i;",
         ("node",)),
    # -- categories: a folder, the version, a metadata CSV -----------------------------------------
    Slip("categories-no-other", "a category's legend stays readable", "posters_cnn/mapping/categories.py",
         "kept = ranked if len(ranked) <= MAX_VALUES else ranked[:MAX_VALUES - 1]", "kept = ranked",
         (CATEGORIES + "test_many_values_keep_the_commonest_and_count_the_rest_as_other",)),
    Slip("categories-ids-kept", "ids and free text are no category", "posters_cnn/mapping/categories.py",
         "if alone * 2 > given:", "if False:",
         (CATEGORIES + "test_the_map_carries_its_categories_as_codes_into_their_values",)),
    Slip("metadata-file-stem", "--metadata joins on the file name with or without its extension",
         "posters_cnn/mapping/categories.py", "keys = [name, PurePosixPath(name).stem]", "keys = [name]",
         (CATEGORIES + "test_metadata_joins_on_the_file_name_with_or_without_extension_or_its_path_under_the_folder",)),
    Slip("update-keeps-old-categories", "--update reads the categories again", "posters_cnn/mapping/update.py",
         "    if new_meta == meta and new_columns == columns:\n        return False",
         "    if True:\n        return False",
         (CATEGORIES + "test_an_update_with_no_new_poster_reads_the_categories_again_and_moves_nothing",)),
    Slip("category-filter-not-dimmed", "a legend entry shows only its posters", "web/renderer.js",
         "|| !look.passes(i);", ";",
         (PAGE_CATEGORIES + "test_colour_by_a_category_gives_a_legend_whose_entries_filter_and_say_so",)),
    Slip("category-hash-unencoded", "the URL restores a category's colouring and filter", "web/logic.js",
         "if (only) parts.push(`only=${encodeURIComponent(only.name)}:${encodeURIComponent(only.value)}`);",
         "if (only) parts.push(`only=${only.name}:${only.value}`);", ("node",)),
    Slip("export-no-original", "an export names each image's original file", "web/logic.js",
         'P.original ? P.original[i] ?? "" : "", page(i),', '"", page(i),',
         (T + "test_page_clusters.py::test_an_export_names_files_a_user_can_open_and_reads_back_in_pandas",)),
    # -- stage 3 reads its features once, in blocks ------------------------------------------------
    Slip("nan-features-mapped", "a poster whose features are not numbers is left out", "posters_cnn/mapping/streamed.py",
         "rows = rows[ok] if not ok.all() else rows", "rows = rows",
         (T + "test_visu.py::test_data_json_validates_and_has_every_poster",)),
    Slip("points-uncentred", "a poster's PCA point is its projection, as an update's", "posters_cnn/mapping/streamed.py",
         "out[start:start + len(rows)] = (rows - mean) @ basis.T", "out[start:start + len(rows)] = rows @ basis.T",
         (UPDATE + "test_every_posters_pca_point_is_its_projection_as_a_new_posters_is",)),
    # -- similar posters from an inverted file; unit rows on disk past their budget -----------------
    Slip("search-keeps-self", "a poster is never its own similar poster", "posters_cnn/mapping/similarity.py",
         "keep = (found != rows[:, None]) & (found >= 0)", "keep = found >= 0",
         (T + "test_streamed.py::test_a_search_answer_short_of_candidates_is_filled_never_with_the_row_itself",
          T + "test_streamed.py::test_the_lists_and_so_the_similar_posters_are_the_same_on_any_number_of_threads")),
    Slip("lists-scan-self", "a poster is never its own similar poster", "posters_cnn/mapping/similarity.py",
         "        sims[np.flatnonzero(own), at[own]] = -np.inf  # never one's own neighbour\n", "",
         (T + "test_streamed.py::test_the_lists_cut_the_rows_round_their_centres_and_a_poster_probing_every_list_gets_its_exact_nearest",)),
    Slip("lists-probe-one", "the search probes as many lists as the recall asks", "posters_cnn/mapping/similarity.py",
         "        width = min(max(width + 1, round(first * WIDTH_GROWTH ** step)), widest)\n", "        break\n",
         (T + "test_streamed.py::test_the_search_probes_more_lists_until_it_finds_the_target_share_of_the_true_neighbours",)),
    Slip("sigterm-kills", "a stage stopped by SIGTERM saves what it finished, as after Ctrl-C", "posters_cnn/cli.py",
         "        if signal.getsignal(signum) is signal.SIG_DFL:\n", "        if False:\n",
         (T + "test_scrape.py::test_sigterm_mid_run_stops_as_ctrl_c_does_the_manifest_written_whole_and_no_temporary_left",
          T + "test_first_hour.py::test_sigterm_in_stage_3_stops_it_as_ctrl_c_does_keeping_what_it_finished")),
    Slip("lists-widen-by-doubling", "the lists probed are at most about √2 times the fewest that would do",
         "posters_cnn/mapping/similarity.py", "round(first * WIDTH_GROWTH ** step)", "round(first * 2 ** step)",
         (T + "test_streamed.py::test_the_width_chosen_is_at_most_about_root_two_times_the_narrowest_that_reaches_the_target",)),
    Slip("float16-sign-lost", "the similarities are the cosines of the features", "posters_cnn/mapping/similarity.py",
         "_FLOAT16_BODY = np.array(0x8FFFE000, np.uint32)", "_FLOAT16_BODY = np.array(0x0FFFE000, np.uint32)",
         (T + "test_streamed.py::test_float16_unit_rows_are_widened_to_the_very_values_numpys_cast_gives",)),
    Slip("float16-scale-off", "the similarities are the cosines of the features", "posters_cnn/mapping/similarity.py",
         "_FLOAT16_SCALE = np.float32(2.0 ** 112)", "_FLOAT16_SCALE = np.float32(2.0 ** 111)",
         (T + "test_streamed.py::test_float16_unit_rows_are_widened_to_the_very_values_numpys_cast_gives",)),
    Slip("float16-copies-kept", "the similarities are the cosines of the features", "posters_cnn/mapping/similarity.py",
         "    np.bitwise_and(bits, _FLOAT16_BODY, out=bits)\n", "",
         (T + "test_streamed.py::test_float16_unit_rows_are_widened_to_the_very_values_numpys_cast_gives",)),
    Slip("knn-lists-never-widen", "t-SNE's neighbours are the true ones", "posters_cnn/mapping/layout.py",
         'first_width(KNN_LISTS["first"], lists,', 'first_width(KNN_LISTS["first"], KNN_LISTS["first"],',
         (T + "test_streamed.py::test_tsne_neighbours_from_the_lists_are_the_true_nearest_with_exact_distances_and_never_the_point_itself",)),
    Slip("rows-file-left-on-stop", "a stopped run leaves no half-written file", "posters_cnn/mapping/streamed.py",
         "            on_disk.unlink(missing_ok=True)\n", "",
         (T + "test_streamed.py::test_a_stop_while_reading_leaves_no_rows_file",)),
    Slip("rows-file-not-written", "rows on disk are the rows held", "posters_cnn/mapping/streamed.py",
         "scaled.astype(np.float16).tofile(unit)", "scaled.astype(np.float32).tofile(unit)",
         (T + "test_streamed.py::test_rows_on_disk_find_the_same_similar_posters_as_rows_held",)),
    Slip("progress-logged-at-once", "a long step says how far it is in the log, once it has run a minute",
         "posters_cnn/mapping/stage.py", " and share < 1 and now - self.start >= PROGRESS_LOG_AFTER_S:", " and share < 1:",
         (T + "test_visu.py::test_a_long_step_says_how_far_it_is_and_how_long_it_has_left",)),
    Slip("left-out-unsaid", "the posters left out, and why, are recorded where the user finds them",
         "posters_cnn/mapping/stage.py", "                     left_out(choice.unlisted, not_finite))",
         "                     {})",
         (T + "test_visu.py::test_the_posters_left_out_and_why_are_in_the_map_and_its_last_lines",)),
    Slip("tsne-silent", "the t-SNE says how far it is on the bar", "posters_cnn/mapping/layout.py",
         "                progress(at, total)\n", "                pass\n",
         (T + "test_first_hour.py::test_stage_3_maps_every_poster_by_default_with_a_progress_bar",)),
    Slip("tiles-silent", "the tiles say how far they are", "posters_cnn/mapping/tiles.py",
         "                progress(drawn, total)\n", "                pass\n",
         (T + "test_first_hour.py::test_stage_3_maps_every_poster_by_default_with_a_progress_bar",)),
    # -- titles and the search index read when needed ---------------------------------------------
    Slip("titles-any-tile", "a doctored titles file is refused", "web/logic.js",
         "if (this.tileOf[rows[r]] !== t || (r && rows[r] <= rows[r - 1]))", "if (r && rows[r] <= rows[r - 1])",
         ("node",)),
    Slip("titles-kept-unbounded", "the page holds the titles of a bounded number of tiles", "web/logic.js",
         "    letGo(this.held, this.keep);", "    letGo(this.held, Infinity);", ("node",)),
    Slip("search-shard-any-byte", "a doctored search shard is refused", "web/logic.js",
         "if (/[^a-z0-9 \\n]/.test(text)) fail(", "if (false) fail(",
         ("node",)),
    Slip("search-read-at-open", "titles and the search index are read when first needed", "web/panels.js",
         "    if (P.title) {\n      searchIndex = new SearchIndex(P.title, P.year);",
         "    if (!P.title) index();\n    if (P.title) {\n      searchIndex = new SearchIndex(P.title, P.year);",
         (T + "test_page.py::test_titles_and_the_search_index_are_read_when_first_needed",)),
    Slip("search-key-not-the-pages", "stage 3's search keys are the page's", "posters_cnn/contracts/maptable.py",
         'unicodedata.normalize("NFKD", title or "")', '(title or "")',
         (T + "test_maptable.py::test_search_keys_are_the_pages",)),
    # -- full posters at the deepest zooms ---------------------------------------------------------
    Slip("full-farthest-first", "full posters load nearest the centre first", "web/logic.js",
         "for (const c of [...candidates].sort((a, b) => a.distance - b.distance)) {",
         "for (const c of [...candidates].sort((a, b) => b.distance - a.distance)) {",
         (FULL + "test_full_posters_are_fetched_for_the_posters_in_view_nearest_the_centre_first",)),
    Slip("full-when-no-larger", "no full poster is fetched that shows nothing more", "web/renderer.js",
         "if (onScreen > thumb * 1.01 && largestImage(thumb, P.height[i]) > thumb) {",
         "if (onScreen > thumb * 1.01) {",
         (FULL + "test_no_full_poster_is_fetched_where_it_is_no_taller_than_its_thumbnail",)),
    Slip("full-never-composed", "posters taller than their thumbnails are drawn from their full image",
         "web/renderer.js", "const own = full || this.thumbs.get(`t${i}`);", "const own = this.thumbs.get(`t${i}`);",
         (FULL + "test_a_poster_taller_on_screen_than_its_thumbnail_is_drawn_from_the_full_poster",)),
]


def copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in files.decode().split("\0"):
        if rel and (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    vendor = ROOT / "web" / "vendor"
    if vendor.is_dir():
        shutil.copytree(vendor, dest / "web" / "vendor")
    if (ROOT / "node_modules").is_dir():  # the page's unit tests import d3 from npm
        (dest / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float]:
    """'pass', 'fail' or 'timeout', and the seconds it took."""
    started = time.monotonic()
    if tests == ("node",):
        cmd = [NODE, "--test", "tests/js/"]
    else:
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    if proc.returncode not in (0, 1):  # 2-5: collection errors, no tests: the slip was not tested at all
        raise SystemExit(f"tests {tests} could not run (exit {proc.returncode}):\n{proc.stdout[-2000:]}")
    return ("pass" if proc.returncode == 0 else "fail"), time.monotonic() - started


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="slips whose name contains one of these words")
    parser.add_argument("--list", action="store_true", help="list the slips and stop")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one slip's tests (default 600)")
    args = parser.parse_args(argv)
    slips = [s for s in SLIPS if not args.only or any(word in s.name for word in args.only)]
    if args.list:
        for slip in slips:
            print(f"{slip.name:28} {slip.file:28} {slip.promise}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="slips-") as scratch:
        tree = Path(scratch)
        copy_tree(tree)
        for tests in sorted({s.tests for s in slips}):  # every test passes on the code as it is
            outcome, _ = run_tests(tree, tests, args.timeout)
            if outcome != "pass":
                raise SystemExit(f"the tests {tests} do not pass on the unchanged code: fix that first")
        for slip in slips:
            path = tree / slip.file
            original = path.read_text()
            if original.count(slip.old) != 1:
                raise SystemExit(f"slip {slip.name}: its text is not in {slip.file} exactly once; update the slip")
            path.write_text(original.replace(slip.old, slip.new))
            try:
                outcome, seconds = run_tests(tree, slip.tests, args.timeout)
            finally:
                path.write_text(original)
            caught = outcome in ("fail", "timeout")
            results.append({"slip": slip.name, "promise": slip.promise, "file": slip.file, "caught": caught,
                            "outcome": outcome, "seconds": round(seconds, 1)})
            print(f"{'caught ' if caught else 'MISSED '} {slip.name:28} {outcome:8} {seconds:6.1f}s  {slip.promise}",
                  flush=True)
    caught = sum(r["caught"] for r in results)
    summary = {"caught": caught, "planted": len(results), "cpu": cpu_name(),
               "date": time.strftime("%Y-%m-%d"), "results": results}
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "slips.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{caught} of {len(results)} slips caught ({summary['cpu']})")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
