"""Every flag of every stage is in the README, and every --help carries an example."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT

import get_data_visu
import get_features_from_cnn
import get_posters

STAGES = [get_posters, get_features_from_cnn, get_data_visu]


def flags(module):
    parser = module.build_parser()
    return sorted({opt for action in parser._actions for opt in action.option_strings
                   if opt.startswith("--") and opt != "--help"})


@pytest.mark.parametrize("module", STAGES, ids=lambda m: m.__name__)
def test_every_flag_is_in_the_readme(module):
    readme = (ROOT / "README.md").read_text()
    missing = [flag for flag in flags(module) if not re.search(re.escape(flag) + r"(?![\w-])", readme)]
    assert not missing, f"{module.__name__}: flags missing from README.md: {missing}"


@pytest.mark.parametrize("module", STAGES, ids=lambda m: m.__name__)
def test_help_has_an_example(module):
    proc = subprocess.run([sys.executable, f"{module.__name__}.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0
    assert "examples:" in proc.stdout
    assert f"python {module.__name__}.py" in proc.stdout


def test_readme_quickstart_is_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
