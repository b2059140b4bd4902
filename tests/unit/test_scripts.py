"""The maintainers' scripts in scripts/ are run by hand, so nothing else notices when one stops importing."""

import subprocess
import sys

import pytest

from tests.support import PROJECT_ROOT

SCRIPTS = sorted((PROJECT_ROOT / "scripts").glob("*.py"))


def test_scripts_are_found():
    assert len(SCRIPTS) >= 7


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_imports_and_explains_itself(script):
    # --help parses no further than the arguments, so it costs seconds, yet it imports everything the script names.
    result = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
