"""Small filesystem helpers: atomic writes and safe relative paths."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp makes 0600 files, and outputs get the mode open() would give them


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is
    atomic: readers see either the old file or the complete new one, never a
    truncated file under the final name. On any exception the temporary file
    is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # readable by a web server, as any file the user writes
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read 1 MiB at a time (a 4 GiB file is never held)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj, *, indent: int | None = None) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":"))
    write_text_atomic(path, text + "\n")


class UnsafePath(ValueError):
    """A path taken from a file (a manifest, a map) that could reach outside its folder."""


# What makes a path read from a file unsafe: a part that is empty, "." or ".." (so also a leading or
# trailing "/"), a backslash or a control character anywhere, or a drive letter first. One expression,
# so that checking a manifest of a million rows takes a second, not a minute.
_UNSAFE_PATH = re.compile(r"(?:^|/)\.{0,2}(?:/|$)|[\\\x00-\x1f\x7f]|^[A-Za-z]:")


def check_relative(rel: str) -> str:
    """``rel`` itself if it is a plain relative path (see :func:`contained`), else UnsafePath."""
    if not isinstance(rel, str) or not rel:
        raise UnsafePath(f"empty path: {rel!r}")
    if _UNSAFE_PATH.search(rel):
        raise UnsafePath(f"not a plain relative path: {rel!r}")
    return rel


def contained(root: str | os.PathLike, rel: str) -> Path:
    """``root / rel`` for a ``rel`` read from a file, or UnsafePath.

    The one rule for every path a manifest or a map names: it is relative,
    written with ``/``, and none of its parts is empty, ``.``, ``..`` or holds a
    control character or a backslash; so it names a file under ``root`` and
    nothing else (``/etc/shadow``, ``../../x``, ``C:\\x`` and ``a//b`` are refused).
    """
    return Path(root, check_relative(rel))


def is_safe_name(name: str) -> bool:
    """True for a single path component that cannot escape its folder."""
    return bool(_SAFE_NAME.match(name)) and ".." not in name


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result that leaves ``root``."""
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise ValueError(f"refusing to write outside {root_path}: {candidate}")
    return candidate


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` a hard link to ``src`` (a copy across filesystems), atomically.

    Hard links, unlike symbolic links, survive ``cp -r`` of the destination
    folder to a static host. A ``src`` that is a symbolic link is followed (a
    link to a link, relative ones included, would dangle). A ``dst`` that is
    already ``src`` is left alone.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.islink(src):  # one lstat: resolving every folder of every path cost 4x the link itself
        src = os.path.realpath(src)
    try:
        os.link(src, dst)  # the common first-run case: one system call (link(2) follows the folders' links)
        return
    except FileNotFoundError:
        if not os.path.exists(src):
            raise
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    except FileExistsError:
        if os.path.samefile(src, dst):
            return
    except OSError:
        pass  # another filesystem, or links not allowed: copy below
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def remove_stale_temporaries(root: str | os.PathLike, subfolders: tuple[str, ...] = (),
                             names: tuple[str, ...] = ()) -> int:
    """Delete the temporary files a killed run of this stage left (``.NAME.*.part``, ``.NAME.link``).

    Looks in ``root`` itself (only temporaries of ``names`` when given, else
    all) and everywhere under ``root/SUBFOLDER`` for each of ``subfolders``.
    Call it while holding the output's lock: then no live writer owns them.
    Returns how many were removed.
    """
    root = Path(root)
    removed = 0

    def stale(path: Path, only: tuple[str, ...]) -> bool:
        name = path.name
        if not name.startswith(".") or not (name.endswith(".part") or name.endswith(".link")):
            return False
        return not only or any(name.startswith(f".{n}.") for n in only)

    candidates = [p for p in root.glob(".*") if stale(p, names)] if root.is_dir() else []
    for sub in subfolders:
        if (root / sub).is_dir():
            candidates += [p for p in (root / sub).rglob(".*") if stale(p, ())]
    for path in candidates:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()
            removed += 1
    return removed


class OutputBusy(Exception):
    """Another live run holds the lock of this output."""


def lock_path(output: str | os.PathLike) -> Path:
    """``.NAME.lock`` beside ``output``: the file whose ``flock`` says a run is writing ``output``."""
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


def _holder(fd: int) -> str:
    """What a lock file says of the run that holds it (PID and start time)."""
    return os.read(fd, 200).decode("utf-8", "replace").strip() or "another run"


def lock_holder(output: str | os.PathLike) -> str | None:
    """Who holds the lock of ``output`` (as its lock file says: PID and start time), or None when no
    live run does. Creates nothing."""
    import fcntl

    try:
        fd = os.open(lock_path(output), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None


class OutputLock:
    """An exclusive lock on one output file, held for a whole run: ``with OutputLock(path): ...``.

    The lock is ``flock`` on ``.NAME.lock`` beside the output, and the file
    says who holds it (PID and start time) for the message a second run
    prints. The kernel drops the lock when its process dies, even by
    ``kill -9``, so a lock left by a killed run is simply taken over.
    """

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.path = lock_path(self.output)
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        import datetime as dt
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise OutputBusy(f"{self.output} is in use by {holder}: wait for that run to end, or stop "
                                 f"it (Ctrl-C in its terminal), then run this again") from None
            # The holder before us may have removed the file after we opened it: lock the one on disk.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()}, started {started}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # before unlocking: a waiter re-checks that it locked the file on disk
            os.close(self.fd)
            self.fd = None
