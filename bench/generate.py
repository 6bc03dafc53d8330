"""Benchmark: generating 200 pre-filled CSC forms.

Prints ms per form for formtool, for docxtpl rendering an equivalent template, and for a raw
zip rewrite of the same file (the floor: read the zip, substitute the facts, write it), all
measured in this run, and the ratios the targets are stated in:
formtool >= 10x faster than docxtpl, and within 3x of the raw rewrite (.docx).

    python bench/generate.py [--forms 200]
    python bench/generate.py --tiny   # 3 forms; docxtpl skipped if not installed (smoke run)
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import tempfile
import time
import zipfile
from pathlib import Path

from formtool.definitions import get_form
from formtool.demo.synthetic import synthetic_case
from formtool.generate import render
from formtool.generate.docx import compile_docx
from formtool.generate.package import write_zip
from formtool.read.cases import Case, facts_checksum


def make_cases(count: int) -> list[Case]:
    form = get_form("csc")
    rng = random.Random(1)
    cases = []
    for i in range(count):
        row = synthetic_case(form, i, dt.date(2026, 11, 30), rng)
        facts = {h.column: row[h.column] for h in form.header}
        audit_id = f"CSC-B{i:05d}-202611"
        cases.append(Case(audit_id, "csc", form.version, facts))
        assert facts_checksum(audit_id, "csc", form.version, facts)
    return cases


def timed(label: str, func, cases: list[Case]) -> float:
    func(cases[0])  # warm-up: compile templates, import modules
    start = time.perf_counter()
    for case in cases:
        func(case)
    per_form = (time.perf_counter() - start) * 1000 / len(cases)
    print(f"  {label:<34} {per_form:8.2f} ms/form")
    return per_form


def docxtpl_template(folder: Path) -> Path:
    """formtool's CSC form with Jinja placeholders where formtool has fact slots."""
    blank = compile_docx(get_form("csc"))
    values = {name: f"{{{{ {name} }}}}" for part in blank.parts for name in part.pieces[1::2]}
    path = folder / "csc-template.docx"
    path.write_bytes(blank.fill(values))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=200)
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: 3 forms; without docxtpl its comparison is skipped",
    )
    args = parser.parse_args()
    if args.tiny:
        args.forms = 3
    form = get_form("csc")
    cases = make_cases(args.forms)
    print(f"Generating {args.forms} CSC forms (same machine, same run):")

    docx_ms = timed("formtool .docx", lambda c: render(form, c, "docx"), cases)
    xlsx_ms = timed("formtool .xlsx", lambda c: render(form, c, "xlsx"), cases)

    sample = render(form, cases[0], "docx")
    with zipfile.ZipFile(io.BytesIO(sample)) as archive:
        members = [(n, archive.read(n)) for n in archive.namelist()]

    def raw_rewrite(case: Case) -> bytes:
        with zipfile.ZipFile(io.BytesIO(sample)) as archive:
            parts = [(n, archive.read(n)) for n, _ in members]
        old, new = cases[0].audit_id.encode(), case.audit_id.encode()
        return write_zip((n, d.replace(old, new)) for n, d in parts)

    floor_ms = timed("raw zip rewrite (floor)", raw_rewrite, cases)
    tpl_ms = docxtpl_ms(cases, optional=args.tiny)

    print("Ratios (target in brackets):")
    if tpl_ms is None:
        print("  docxtpl / formtool .docx          skipped: docxtpl is not installed (.[bench])")
    else:
        print(f"  docxtpl / formtool .docx          {tpl_ms / docx_ms:8.1f}x  [>= 10x]")
    print(f"  formtool .docx / raw rewrite      {docx_ms / floor_ms:8.2f}x  [<= 3x]")
    print(f"  formtool .xlsx / raw rewrite      {xlsx_ms / floor_ms:8.2f}x  [reported]")
    if not args.tiny and tpl_ms is not None:
        from results import record

        met = tpl_ms / docx_ms >= 10 and docx_ms / floor_ms <= 3
        record(
            "generate.py",
            f"{args.forms} pre-filled CSC forms",
            f".docx {docx_ms:.1f} ms/form, .xlsx {xlsx_ms:.1f} ms; docxtpl {tpl_ms:.0f} ms "
            f"({tpl_ms / docx_ms:.1f}x slower); raw zip rewrite {floor_ms:.1f} ms (.docx "
            f"{docx_ms / floor_ms:.2f}x of it)",
            f">= 10x docxtpl, <= 3x the rewrite: {'met' if met else 'MISSED'}",
        )


def docxtpl_ms(cases: list[Case], optional: bool) -> float | None:
    """ms per form for docxtpl rendering the same form; None if it is not installed and
    `optional` (the smoke run: the test extras do not include it)."""
    try:
        from docxtpl import DocxTemplate
    except ImportError:
        if optional:
            return None
        raise

    form = get_form("csc")
    with tempfile.TemporaryDirectory() as folder:
        template = docxtpl_template(Path(folder))

        def with_docxtpl(case: Case) -> bytes:
            document = DocxTemplate(template)
            document.render(
                {"fact_" + k: v for k, v in case.facts.items()}
                | {
                    "identity": case.audit_id,
                    "audit_id": case.audit_id,
                    "prop_audit_id": case.audit_id,
                    "prop_form_id": "csc",
                    "prop_form_version": str(form.version),
                    "prop_checksum": case.checksum,
                }
            )
            out = io.BytesIO()
            document.save(out)
            return out.getvalue()

        return timed("docxtpl render + save", with_docxtpl, cases)


if __name__ == "__main__":
    main()
