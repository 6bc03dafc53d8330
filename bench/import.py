"""Benchmark: importing 500 filled CSC returns.

Prints ms per form, all measured in this run on the same files:
  .docx  formtool read (identity + every answer), formtool import (read + validate + store),
         python-docx merely opening the file, raw unzip + lxml parse of document.xml (floor);
  .xlsx  formtool read and import, openpyxl load, python-calamine reading every cell.
Targets: .docx read within 3x of the floor, and at least 5x faster than python-docx opening.

    python bench/import.py [--forms 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
import zipfile
from pathlib import Path

from lxml import etree

from formtool import store
from formtool.cases import Case
from formtool.definitions import get_form
from formtool.demo import synthetic_answers, synthetic_case
from formtool.fill import fill_docx, fill_xlsx
from formtool.generate import record_audits, render
from formtool.imports import import_paths
from formtool.read import read_bytes
from formtool.scales import FieldKind

TODAY = dt.date(2026, 11, 22)


def make_returns(folder: Path, count: int, fmt: str) -> tuple[list[Path], list[Case]]:
    """Filled returns with synthetic answers (filling .xlsx goes through openpyxl: slow)."""
    form = get_form("csc")
    rng = random.Random(5)
    dates = frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)
    paths, cases = [], []
    for i in range(count):
        row = synthetic_case(form, i, dt.date(2026, 11, 30), rng)
        case = Case(
            f"CSC-B{fmt}{i:05d}-202611", "csc", 1, {h.column: row[h.column] for h in form.header}
        )
        answers = synthetic_answers(form, case, rng, TODAY)
        blank = render(form, case, fmt)
        data = fill_docx(blank, answers) if fmt == "docx" else fill_xlsx(blank, answers, dates)
        path = folder / f"{case.audit_id}.{fmt}"
        path.write_bytes(data)
        paths.append(path)
        cases.append(case)
    return paths, cases


def per_form(label: str, func, paths: list[Path]) -> float:
    func(paths[0])
    start = time.perf_counter()
    for path in paths:
        func(path)
    ms = (time.perf_counter() - start) * 1000 / len(paths)
    print(f"  {label:<44} {ms:8.2f} ms/form")
    return ms


def floor_docx(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        etree.fromstring(archive.read("word/document.xml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=500)
    args = parser.parse_args()
    import docx
    import openpyxl
    from python_calamine import CalamineWorkbook

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        engine = store.open_store(f"sqlite:///{folder / 'bench.db'}")
        docx_paths, docx_cases = make_returns(folder, args.forms, "docx")
        xlsx_paths, xlsx_cases = make_returns(folder, 20, "xlsx")
        record_audits(engine, docx_cases + xlsx_cases)
        print(f"Importing {len(docx_paths)} filled CSC returns (.docx), same machine, same run:")
        read_ms = per_form(
            "formtool read (identity + all answers)",
            lambda p: read_bytes(p.read_bytes(), ".docx"),
            docx_paths,
        )
        start = time.perf_counter()
        outcomes = import_paths(engine, docx_paths, TODAY)
        import_ms = (time.perf_counter() - start) * 1000 / len(docx_paths)
        assert all(o.status == "imported" for o in outcomes), outcomes[0]
        print(f"  {'formtool import (read + validate + store)':<44} {import_ms:8.2f} ms/form")
        open_ms = per_form("python-docx Document() only", lambda p: docx.Document(p), docx_paths)
        floor_ms = per_form("raw unzip + lxml parse (floor)", floor_docx, docx_paths)
        print(f"\n{len(xlsx_paths)} filled CSC returns (.xlsx):")
        xread_ms = per_form(
            "formtool read", lambda p: read_bytes(p.read_bytes(), ".xlsx"), xlsx_paths
        )
        per_form("openpyxl load_workbook", lambda p: openpyxl.load_workbook(p), xlsx_paths)
        calamine_ms = per_form(
            "python-calamine read all cells",
            lambda p: CalamineWorkbook.from_path(str(p)).get_sheet_by_index(0).to_python(),
            xlsx_paths,
        )
    print("\nRatios (target in brackets):")
    print(f"  .docx read / floor                 {read_ms / floor_ms:8.2f}x  [<= 3x]")
    print(f"  python-docx open / formtool read   {open_ms / read_ms:8.2f}x  [>= 5x]")
    print(f"  .docx import / floor               {import_ms / floor_ms:8.2f}x  [reported]")
    print(f"  .xlsx read / calamine              {xread_ms / calamine_ms:8.2f}x  [reported]")


if __name__ == "__main__":
    main()
