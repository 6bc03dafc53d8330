"""ruff (lint and format) and mypy are part of the suite, so CI refuses code that is not
clean, formatted and type-checked (configuration in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["formtool", "tests", "bench"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        missing(f"{name} not installed (pip install -e '.[test]')")
    return found


@pytest.mark.parametrize(
    "args", [["check", *PATHS], ["format", "--check", *PATHS]], ids=["check", "format"]
)
def test_ruff_is_clean(args):
    result = subprocess.run([tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
