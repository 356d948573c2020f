"""Helpers shared by the benchmark scripts: the fake site server, timing, machine info."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
BENCH_SITE = SHARED / "data" / "impawards-bench"
SERVER = SHARED / "tools" / "fake_impawards_server.py"
OUT = ROOT / "bench" / "out"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


@contextmanager
def fake_site(root=BENCH_SITE, *args):
    if not SERVER.exists():
        sys.exit(f"benchmark needs {SERVER} (the shared folder beside the checkout)")
    proc = subprocess.Popen([sys.executable, str(SERVER), "--root", str(root), "--port", "0", *map(str, args)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://\S+/", line)
    if not match:
        proc.kill()
        sys.exit(f"fake server did not start: {line!r}")
    try:
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait()


def timed(cmd, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)
    return time.perf_counter() - start


def side_by_side(rev: str, name: str, repeats: int, run) -> dict[str, list]:
    """``run(code)`` for another commit's code and this checkout's, alternating, ``repeats`` times each:
    their results, by ``rev`` and "this checkout". ``rev`` is checked out into a git worktree,
    /tmp/NAME-REV, removed afterwards."""
    other = Path("/tmp") / f"{name}-{rev}"
    if not other.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), rev], check=True)
    rows: dict[str, list] = {rev: [], "this checkout": []}
    try:
        for repeat in range(repeats):
            for side, code in ((rev, other), ("this checkout", ROOT)):
                rows[side].append(run(code))
                print(f"{side}, run {repeat + 1}: {rows[side][-1]}", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False)
    return rows


def median(values):
    return statistics.median(values)


def ensure_bench_posters(years: str = "1990-2016") -> Path:
    """Scrape the whole bench site once into bench/out/posters (reused afterwards)."""
    out = OUT / "posters"
    if not (out / "posters.csv").exists():
        with fake_site() as url:
            subprocess.run([sys.executable, str(ROOT / "get_posters.py"), "--base-url", url, "--range", years,
                            "--out-dir", str(out), "--no-progress", "-q"], check=True,
                           stderr=subprocess.DEVNULL)
    return out / "posters.csv"


def peak_rss_mib(cmd, **kwargs) -> tuple[float, float]:
    """(seconds, peak resident MiB) of a child process, via wait4's rusage."""
    import os as _os
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **kwargs)
    _, status, usage = _os.wait4(proc.pid, 0)
    proc.returncode = _os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return time.perf_counter() - start, usage.ru_maxrss / 1024
