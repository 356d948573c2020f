"""What the three stage scripts share: argument parsing, logging, exit codes.

Each stage is ``main(argv) -> int``: parse, call one library function, and
turn an expected failure into a one-line message. Usage errors exit 2 (as
argparse does), runtime failures exit 1, Ctrl-C exits 130 after the stage has
saved what it finished; SIGTERM and SIGHUP stop it the same way (exit 143, 129).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
from typing import Callable, Sequence

from tqdm import tqdm

from .fsutil import OutputBusy, OutputLock

__all__ = ["OutputLock", "Parser", "StageError", "UsageError", "run", "setup_logging"]

log = logging.getLogger("posters_cnn")


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


class StageError(Exception):
    """The stage could not do its job at all: one line, exit status 1."""


class _TqdmHandler(logging.StreamHandler):
    """Log lines that do not break tqdm progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(verbosity: int = 0) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that keeps examples' line breaks in ``--help``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        group = self.add_mutually_exclusive_group()
        group.add_argument("-v", "--verbose", action="store_const", const=1, default=0, dest="verbosity",
                           help="more detail in the log")
        group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity",
                           help="only warnings and errors in the log")

    def error(self, message: str):  # one line, exit 2, as argparse does, without the usage block
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        """'; did you mean --range?' for a misspelt flag, else ''."""
        import difflib

        match = re.match(r"unrecognized arguments: (\S+)", message)
        if not match:
            return ""
        typed = match.group(1).split("=", 1)[0]
        known = [opt for action in self._actions for opt in action.option_strings if opt.startswith("--")]
        close = difflib.get_close_matches(typed.replace("_", "-"), known, n=1, cutoff=0.6)
        return f"; did you mean {close[0]}?" if close else ""


def _number(convert, noun: str, minimum):
    """An argparse ``type`` that parses with ``convert`` and refuses values below ``minimum``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not value >= minimum:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {text}")
        return value

    return parse


def int_at_least(minimum: int):
    return _number(int, "a whole number", minimum)


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
non_negative_float = _number(float, "a number", 0)


def share(text: str) -> float:
    """An argparse ``type``: a number from 0 to 1."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be 1 or less, got {text}")
    return value


RESUMES = "finished work is saved: run the same command again to go on from there"

# Signals that stop a stage as Ctrl-C does, its finished work saved: SIGTERM (``kill``, ``timeout``, a job
# manager or container stopping it) and SIGHUP (its terminal closed). Python's default for either ends the
# process at once: no checkpoint's last rows written, and temporaries (8 GB of unit rows at 1,000,000
# posters) left behind until the next run.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal, handled as Ctrl-C is (it unwinds through the same ``finally`` blocks)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once: what sending it twice means
    raise Stopped(signum)


def _stop_on_signals() -> dict:
    """Install :func:`_stop` for STOP_SIGNALS not ignored (``nohup`` ignores SIGHUP) nor handled by another; the
    handlers replaced, to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            replaced[signum] = signal.signal(signum, _stop)
    return replaced


def run(parser: Parser, body: Callable[[argparse.Namespace], int], argv: Sequence[str] | None,
        interrupted: str = RESUMES) -> int:
    """Parse ``argv``, run ``body`` and map expected failures to exit codes.

    ``interrupted`` is what Ctrl-C's one line says about what was kept and what a new run does.
    """
    args = parser.parse_args(argv)
    setup_logging(args.verbosity)
    replaced = _stop_on_signals()
    try:
        return body(args)
    except UsageError as exc:
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return 2
    except (StageError, OutputBusy) as exc:
        sys.stderr.write(f"{parser.prog}: {exc}\n")
        return 1
    except OSError as exc:  # a read-only or full output folder, a file that vanished: the system said no
        log.debug("%s failed", parser.prog, exc_info=True)
        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"{parser.prog}: cannot read or write{where}: {exc.strerror or exc}\n")
        return 1
    except Stopped as exc:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone: the work is saved all the same
            sys.stderr.write(f"{parser.prog}: stopped by {exc}; {interrupted}\n")
        return 128 + exc.signum  # as a shell reports a process that signal ended: 143 for SIGTERM
    except KeyboardInterrupt:
        sys.stderr.write(f"{parser.prog}: interrupted; {interrupted}\n")
        return 130
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
