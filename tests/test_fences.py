"""Fences round the tricks that lean on how a library works inside (issue 17): each test fails,
naming the library, if a new release stops doing what the trick relies on.

- openpyxl writes a row height of 901.0 as `ht="901"`: generate/xlsx.py `height_slots`.
- Starlette's multipart parser keeps the streaming part in `_current_part`:
  web/security.py `_LimitedParser.current_upload` (and pyproject bounds starlette).
- matplotlib ships DejaVu Sans in its data folder: packs/fonts.py `dejavu_file`.
- Charts draw on their own Agg canvas, leaving matplotlib's backend alone: packs/charts.py
  `headless_figure`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import AsyncGenerator

import anyio
import matplotlib
import openpyxl
import pytest
import starlette
from openpyxl import Workbook
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request

from formtool.definitions import get_form
from formtool.definitions.identity import defined_name
from formtool.generate import render
from formtool.generate import xlsx as xlsx_form
from formtool.generate.package import CompiledPart
from formtool.packs import fonts
from formtool.web import security

from conftest import make_cases

# --- openpyxl: sentinel row heights -------------------------------------------------------


def test_openpyxl_writes_a_sentinel_row_height_as_height_slots_expects():
    workbook = Workbook()
    sheet = workbook.active
    sheet["A1"] = "a header row"
    sheet.row_dimensions[1].height = xlsx_form.sentinel_height(1)
    sheet.row_dimensions[2].height = 25.5  # an ordinary row
    buffer = io.BytesIO()
    workbook.save(buffer)
    written = zipfile.ZipFile(buffer).read("xl/worksheets/sheet1.xml").decode()
    [row] = re.findall(r'<row r="1"[^>]*>', written)
    assert ' ht="901"' in row, f"openpyxl {openpyxl.__version__} writes the height as {row}"
    rewritten = xlsx_form.height_slots(written)
    assert rewritten == written.replace(' ht="901"', ' ht="{{ft:height_901}}"', 1)
    assert ' ht="25.5"' in rewritten  # a real height is left alone
    filled = CompiledPart.of("sheet1.xml", rewritten).fill({"height_901": "38.5"})
    assert re.search(rb'<row r="1"[^>]* ht="38.5"', filled)


def test_header_rows_are_as_tall_as_each_case_needs(tmp_path):
    form = get_form("csc")
    case = make_cases(tmp_path, form, 1)[0]
    fact = next(iter(case.facts))
    long = dataclasses.replace(case, facts={**case.facts, fact: "A long name " * 12})
    heights = []
    for each in (case, long):
        workbook = openpyxl.load_workbook(io.BytesIO(render(form, each, "xlsx")))
        sheet = workbook[xlsx_form.SHEET]
        assert max(d.height or 0 for d in sheet.row_dimensions.values()) < 410  # no sentinel left
        [(_, ref)] = workbook.defined_names[defined_name(f"header.{fact}")].destinations
        heights.append(sheet.row_dimensions[int(re.sub(r"\D", "", ref))].height)
    assert heights[0] < heights[1]


# --- starlette: the part being streamed ---------------------------------------------------

BOUNDARY = "fence-boundary"


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts += [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files.items()
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


HEADERS = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]


async def chunks(body: bytes) -> AsyncGenerator[bytes, None]:
    for start in range(0, len(body), 1000):  # in pieces, as a network delivers it
        yield body[start : start + 1000]


def test_starlette_parser_still_says_which_part_is_streaming():
    seen: list[tuple[bytes, UploadFile | None]] = []

    class Spy(security._LimitedParser):
        def on_part_data(self, data: bytes, start: int, end: int) -> None:
            seen.append((data[start:end], self.current_upload()))
            super().on_part_data(data, start, end)

    body = multipart({"csrf": "token"}, {"return.docx": b"x" * 5000})

    async def parse() -> FormData:
        return await Spy(Headers(raw=HEADERS), chunks(body), security.Limits()).parse()

    form = anyio.run(parse)
    assert form["csrf"] == "token"
    version = f"starlette {starlette.__version__}"
    assert {u.filename if u else None for _, u in seen} == {None, "return.docx"}, version
    assert sum(len(d) for d, u in seen if u) == 5000, version
    assert b"".join(d for d, u in seen if u is None) == b"token", version


def upload(body: bytes, limits: security.Limits) -> dict[str, int]:
    """What read_upload makes of `body`, sent as a request in pieces: each file's size."""
    pieces = [body[start : start + 1000] for start in range(0, len(body), 1000)]

    async def receive() -> dict[str, object]:
        piece = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def run() -> dict[str, int]:
        scope = {"type": "http", "method": "POST", "path": "/", "headers": HEADERS}
        form = await security.read_upload(Request(scope, receive), limits)
        sizes = {}
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                sizes[value.filename or ""] = len(await value.read())
        await form.close()
        return sizes

    return anyio.run(run)


def test_an_upload_over_the_file_limit_is_refused_while_it_streams():
    limits = security.Limits(file_bytes=4000)
    body = multipart({"csrf": "token"}, {"small.docx": b"s" * 3000, "big.docx": b"b" * 5000})
    with pytest.raises(security.UploadRefused, match=r"big\.docx is over 4 KB"):
        upload(body, limits)
    assert upload(multipart({}, {"small.docx": b"s" * 3000}), limits) == {"small.docx": 3000}


# --- matplotlib: fonts and the backend ----------------------------------------------------


@pytest.mark.parametrize("bold", [False, True])
def test_matplotlib_still_ships_dejavu_sans(bold):
    from fontTools.ttLib import TTFont

    font = TTFont(fonts.dejavu_file(bold))  # FileNotFoundError names matplotlib if it is gone
    assert font["name"].getDebugName(1) == "DejaVu Sans"
    assert font["name"].getDebugName(2) == ("Bold" if bold else "Book")
    assert {ord(c) for c in "Nguyễn Thị Żółć Αλέξανδρος Ірина فاطمة"} <= set(font.getBestCmap())


def test_a_missing_dejavu_file_names_the_cause(monkeypatch, tmp_path):
    monkeypatch.setattr(matplotlib, "get_data_path", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"matplotlib .* does not ship DejaVuSans\.ttf"):
        fonts.dejavu_file(False)


def test_charts_draw_without_changing_matplotlib_backend():
    script = """
import json, matplotlib
before = matplotlib.get_backend()
from formtool.packs import charts
imported = matplotlib.get_backend()
png = charts.grade_chart(["Good", "Inadequate"], [2, 1], "Grades")
canvas = type(charts.grade_figure(["Good"], [1], "Grades").canvas).__name__
print(json.dumps([before, imported, matplotlib.get_backend(), png[:4].hex(), canvas]))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "svg"  # someone else's choice, which formtool must leave alone
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    before, imported, drawn, png, canvas = json.loads(result.stdout)
    assert (before, imported, drawn) == ("svg", "svg", "svg")
    assert png == b"\x89PNG".hex() and canvas == "FigureCanvasAgg"
