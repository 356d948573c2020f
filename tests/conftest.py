import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sitegen import FaultyServer, make_site  # noqa: E402


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def server(site):
    srv = FaultyServer(site.root)
    yield srv
    srv.close()


def wait_until(condition, timeout: float, what: str, process=None) -> None:
    """Poll ``condition`` until it holds; fail, naming ``what``, after ``timeout`` seconds, or as soon as
    ``process`` (a Popen) has ended without it: the one way the tests wait on another process."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
