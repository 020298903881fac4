"""The wheel ships the package and the bundled search spaces."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.integration  # builds a wheel with pip; make test and CI run it
def test_wheel_contains_package_and_search_spaces(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("lossearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lossearch/config.py" in names
    assert "lossearch/losses/functional.py" in names
    spaces = {Path(n).name for n in names if n.startswith("lossearch/search_spaces/")}
    expected = {p.name for p in (ROOT / "search_spaces").glob("*.yaml")}
    assert {"default.yaml", "quick.yaml", "long_tail.yaml"} <= expected
    assert expected <= spaces
