#!/usr/bin/env python3
"""Check a get_posters.py output folder against a site's expected.json.

    python bench/check_site.py ../shared/data/impawards-dev data-dev

Every `ok` poster must be ok, byte for byte (sha256), with a thumbnail; every
`must_fail` poster must be failed with an error; nothing else may appear.
Prints one line per problem and a summary; exits 1 on any problem.
"""

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd


def main(site: str, out: str) -> int:
    expected = json.loads((Path(site) / "expected.json").read_text())
    out = Path(out)
    manifest = pd.read_csv(out / "posters.csv", keep_default_na=False).set_index("poster_id")
    problems = []
    for item in expected["ok"]:
        pid = f"{item['year']}/{item['name']}"
        if pid not in manifest.index:
            problems.append(f"missing: {pid}")
            continue
        row = manifest.loc[pid]
        if row.status != "ok":
            problems.append(f"should be ok: {pid}: {row.error}")
            continue
        digest = hashlib.sha256((out / row.image_path).read_bytes()).hexdigest()
        if digest != item["sha256"]:
            problems.append(f"bytes differ: {pid}")
        if not (out / row.thumb_path).is_file():
            problems.append(f"no thumbnail: {pid}")
        if row.title != item["title"]:
            problems.append(f"title: {pid}: {row.title!r} != {item['title']!r}")
    for item in expected["must_fail"]:
        pid = f"{item['year']}/{item['name']}"
        if pid not in manifest.index or manifest.loc[pid].status != "failed" or not manifest.loc[pid].error:
            problems.append(f"should have failed ({item['why']}): {pid}")
    known = {f"{i['year']}/{i['name']}" for i in expected["ok"] + expected["must_fail"]}
    extra = [pid for pid in manifest.index if pid not in known and not pid.endswith("/std.html")]
    problems += [f"unexpected row: {pid}" for pid in extra]
    for line in problems:
        print(line)
    print(f"{len(expected['ok'])} ok and {len(expected['must_fail'])} failing expected; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
