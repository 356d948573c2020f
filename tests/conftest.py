import sys
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
