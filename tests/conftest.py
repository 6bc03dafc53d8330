"""Shared test helpers: LibreOffice conversion, synthetic cases and answers."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from formtool.cases import Case, load_cases, write_case_list
from formtool.definitions import FormDefinition, get_form, load_forms
from formtool.demo import synthetic_case
from formtool.scales import FieldKind

FORM_IDS = sorted(load_forms())
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
DUE = dt.date(2026, 11, 30)


def soffice() -> str:
    """The soffice binary; in CI a missing LibreOffice is a failure, not a skip."""
    found = shutil.which("soffice")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("soffice is not installed; .ci/run should have installed LibreOffice")
    pytest.skip("LibreOffice (soffice) is not installed")


def convert(files: list[Path], target: str, out_dir: Path) -> list[Path]:
    """Open and save files through LibreOffice headless; return the converted files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = out_dir / ".lo-profile"
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(out_dir),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    extension = target.split(":")[0]
    return [out_dir / f"{f.stem}.{extension}" for f in files]


def write_cases(path: Path, rows: list[dict[str, str]]) -> Path:
    write_case_list(path, rows)
    return path


def make_cases(tmp_path: Path, form: FormDefinition, count: int = 2, seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    rows = [synthetic_case(form, i, DUE, rng) for i in range(1, count + 1)]
    return load_cases(write_cases(tmp_path / f"{form.id}-cases.csv", rows), form)


def answers_for(form: FormDefinition, seed: int = 1) -> dict[str, str]:
    """A value for every answerable field, with awkward text (markup, newlines, formulas)."""
    rng = random.Random(seed)
    answers = {}
    for field in form.fields():
        if field.kind is FieldKind.choice:
            answers[field.key] = rng.choice(field.scale.choices)
        elif field.kind is FieldKind.date:
            answers[field.key] = f"{rng.randrange(1, 28):02d}/12/2026"
        else:
            answers[field.key] = f"Seen {field.key} on 03/11 & <noted>\n=SUM(A1) second line"
    return answers


def date_keys(form: FormDefinition) -> frozenset[str]:
    return frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)


@pytest.fixture(autouse=True)
def isolated_database(tmp_path_factory, monkeypatch):
    """Commands that default to ./formtool.db use a throwaway file instead."""
    monkeypatch.setenv("FORMTOOL_DB", str(tmp_path_factory.mktemp("db") / "default.db"))


@pytest.fixture(params=FORM_IDS)
def form(request) -> FormDefinition:
    return get_form(request.param)
