"""Hostile and broken returns: one code and one line each, the batch goes on, the database
untouched, and memory bounded by construction."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.fill import fill_docx, fill_xlsx
from formtool.generate import write_forms
from formtool.identity import bookmark_name, defined_name
from formtool.imports import import_paths

from conftest import date_keys, make_cases

TODAY = dt.date(2026, 11, 22)
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>"""


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename == name else src.read(info))
        if name not in src.namelist():
            dst.writestr(name, content)
    return out.getvalue()


def member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def zip_bomb(path: Path) -> None:
    """A real 1 GB member (zeros), about 1 MB on disk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                part.write(chunk)


def corrupt_deflate(data: bytes) -> bytes:
    """Scramble the middle of document.xml's compressed bytes (CRC and lengths intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    damaged = bytearray(data)
    for i in range(middle, middle + 64):
        damaged[i] ^= 0x5A
    return bytes(damaged)


def future_zip_version(data: bytes) -> bytes:
    """Every central directory entry claims it needs zip version 9.9 to extract."""
    damaged = bytearray(data)
    for match in re.finditer(rb"PK\x01\x02", data):
        struct.pack_into("<H", damaged, match.start() + 6, 99)
    return bytes(damaged)


def wrong_directory_offset(data: bytes) -> bytes:
    damaged = bytearray(data)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", damaged, end + 16, len(data) + 5000)
    return bytes(damaged)


def hidden_macros(data: bytes, by: str) -> bytes:
    """A VBA project under an innocent name, declared by content type or relationship."""
    data = with_member(data, "word/media/notes.dat", b"\xd0\xcf\x11\xe0" + b"\0" * 512)
    if by == "content type":
        types = member(data, "[Content_Types].xml").replace(
            b"</Types>",
            b'<Override PartName="/word/media/notes.dat" ContentType='
            b'"application/vnd.ms-office.vbaProject"/></Types>',
        )
        return with_member(data, "[Content_Types].xml", types)
    rels = member(data, "word/_rels/document.xml.rels").replace(
        b"</Relationships>",
        b'<Relationship Id="rIdV" Type="http://schemas.microsoft.com/'
        b'office/2006/relationships/vbaProject" Target="media/notes.dat"/>'
        b"</Relationships>",
    )
    return with_member(data, "word/_rels/document.xml.rels", rels)


@pytest.fixture
def forms(tmp_path, engine):
    form = get_form("csc")
    made = write_forms(
        form, make_cases(tmp_path, form, 3), tmp_path / "forms", ("docx", "xlsx"), engine=engine
    )
    docx = [m for m in made if m.format == "docx"]
    xlsx = [m for m in made if m.format == "xlsx"]
    return engine, form, docx, xlsx


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (store.returns, store.answers, store.actions, store.grades, store.events)
        }


def run_batch(engine, folder: Path, bad: dict[str, bytes], good: bytes) -> dict:
    """Write the bad files and, after them in name order, one good return; import all."""
    folder.mkdir(exist_ok=True)
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "zz-good.docx").write_bytes(good)
    before = counts(engine)
    outcomes = {Path(o.file).name: o for o in import_paths(engine, [folder], TODAY)}
    good_outcome = outcomes.pop("zz-good.docx")
    assert good_outcome.status == "imported", good_outcome.issues
    after = counts(engine)
    assert after["returns"] == before["returns"] + 1  # only the good file was stored
    return outcomes


def assert_rejected(outcome, code: str, text: str, folder: Path) -> None:
    [issue] = outcome.issues
    assert (outcome.status, issue.code.label) == ("rejected", code), issue.message
    assert "\n" not in issue.message
    assert issue.message.startswith(f"[{folder}/")
    assert text in issue.message, issue.message


def test_damaged_and_hostile_zips_each_get_their_code(forms, tmp_path):
    engine, _, docx, _ = forms
    good = docx[0].path.read_bytes()
    bad = {
        "deflate.docx": corrupt_deflate(good),
        "version.docx": future_zip_version(good),
        "offset.docx": wrong_directory_offset(good),
        "not-a-zip.docx": b"Dear QA team, please find attached...",
        "truncated.docx": good[: len(good) // 2],
        "password.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096,
        "xxe.docx": with_member(good, "word/document.xml", XXE),
        "laughs.docx": with_member(good, "word/document.xml", LAUGHS),
        "utf16.docx": with_member(
            good,
            "word/document.xml",
            XXE.decode()
            .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
            .encode("utf-16"),
        ),
        "macros-by-type.docx": hidden_macros(good, "content type"),
        "macros-by-rel.docx": hidden_macros(good, "relationship"),
        "vba-named.docx": with_member(good, "word/vbaProject.bin", b"\0" * 64),
        "macros.docm": good,
        "bad-xml.docx": with_member(good, "word/document.xml", b"<w:document>\n<w:body>"),
        "no-document.docx": _without(good, "word/document.xml"),
        "report.pdf": b"%PDF-1.7 not a form",
    }
    (tmp_path / "in").mkdir()
    zip_bomb(tmp_path / "in" / "bomb.docx")
    outcomes = run_batch(engine, tmp_path / "in", bad, fill_docx(good, {"kss1.seen_alone": "Yes"}))
    folder = tmp_path / "in"
    expected = {
        "deflate.docx": ("damaged", "is damaged (word/document.xml: "),
        "version.docx": ("damaged", "is damaged ("),
        "offset.docx": ("damaged", "negative seek value"),
        "not-a-zip.docx": ("not-a-zip", "is not a .docx file (not a zip"),
        "truncated.docx": ("not-a-zip", "is not a .docx file"),
        "password.docx": ("encrypted", "is password-protected or an old binary Office file"),
        "xxe.docx": ("entities", "word/document.xml] declares a DTD or XML entities"),
        "laughs.docx": ("entities", "declares a DTD or XML entities"),
        "utf16.docx": ("entities", "declares a DTD or XML entities"),
        "macros-by-type.docx": ("macros", "content type application/vnd.ms-office.vbaproject"),
        "macros-by-rel.docx": ("macros", "(relationship vbaproject)"),
        "vba-named.docx": ("macros", "(part word/vbaProject.bin)"),
        "macros.docm": ("macros", "(a .docm file). Ask the auditor to save it as a plain .docx"),
        "bad-xml.docx": ("bad-xml", "word/document.xml] is not well-formed XML ("),
        "no-document.docx": ("no-document", "has no Word document inside"),
        "report.pdf": (
            "unsupported-type",
            "is not a form (a .pdf file); formtool reads .docx and .xlsx",
        ),
        "bomb.docx": ("zip-bomb", "expands to far more data than a form holds"),
    }
    assert set(outcomes) == set(expected)
    for name, (code, text) in expected.items():
        assert_rejected(outcomes[name], code, text, folder)


def _without(data: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info, src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("serial", ["2958466", "nan", "inf", "-1e300", "1e309", "-5"])
def test_numbers_in_date_cells_are_bad_dates_not_crashes(forms, tmp_path, serial):
    engine, form, docx, xlsx = forms
    filled = fill_xlsx(
        xlsx[0].path.read_bytes(), {"completion.completed_on": "01/12/2026"}, date_keys(form)
    )
    sheet = member(filled, "xl/worksheets/sheet1.xml").decode()
    ref = _cell_of(filled, "completion.completed_on")
    sheet, found = re.subn(rf'(<c r="{ref}"[^>]*>)<v>[^<]*</v>', rf"\g<1><v>{serial}</v>", sheet)
    assert found == 1
    bad = {"pasted.xlsx": with_member(filled, "xl/worksheets/sheet1.xml", sheet.encode())}
    outcomes = run_batch(
        engine,
        tmp_path / "in",
        bad,
        fill_docx(docx[0].path.read_bytes(), {"kss1.seen_alone": "Yes"}),
    )
    assert outcomes["pasted.xlsx"].status == "rejected"
    [issue] = [i for i in outcomes["pasted.xlsx"].issues if not i.is_warning]
    assert (issue.code.label, issue.field, issue.value) == (
        "bad-answer-date",
        "completion.completed_on",
        serial,
    )


def _cell_of(data: bytes, key: str) -> str:
    book = member(data, "xl/workbook.xml").decode()
    match = re.search(rf'<definedName name="{defined_name(key)}">[^<]*\$([A-Z]+)\$(\d+)<', book)
    assert match
    return f"{match[1]}{match[2]}"


def test_non_regular_files_are_refused_without_reading(forms, tmp_path):
    engine, _, docx, _ = forms
    folder = tmp_path / "named"
    folder.mkdir()
    fifo = folder / "pipe.docx"
    os.mkfifo(fifo)
    link = folder / "zero.docx"
    link.symlink_to("/dev/zero")
    good = folder / "good.docx"
    good.write_bytes(fill_docx(docx[0].path.read_bytes(), {"kss1.seen_alone": "Yes"}))
    outcomes = import_paths(
        engine, [fifo, Path("/dev/zero"), link, good, folder / "gone.docx"], TODAY
    )
    assert [(o.status, [i.code.label for i in o.issues]) for o in outcomes] == [
        ("rejected", ["not-a-file"]),
        ("rejected", ["unsupported-type"]),  # /dev/zero itself has no form suffix
        ("rejected", ["not-a-file"]),
        ("imported", ["draft-return"]),
        ("rejected", ["not-found"]),
    ]
    assert outcomes[0].issues[0].message == (
        f"[{fifo}] is not a regular file (a named pipe). Name the saved form itself, or a "
        "folder of forms."
    )
    assert (
        outcomes[2]
        .issues[0]
        .message.endswith(
            "is not a regular file (a device). Name the saved form itself, or a folder of forms."
        )
    )


def test_names_and_errors_cannot_forge_lines_or_colours(forms, tmp_path):
    engine, _, docx, _ = forms
    folder = tmp_path / "forged"
    folder.mkdir()
    (folder / "evil\nok  CSC-1  imported.docx").write_bytes(b"not a zip")
    (folder / "\x1b[32mgreen.docx").write_bytes(b"not a zip")
    (folder / "mismatch.docx").write_bytes(
        with_member(docx[0].path.read_bytes(), "word/document.xml", b"<a>\n<b>\n</a>\n")
    )
    result = CliRunner().invoke(cli, ["import", str(folder), "--db", _url(engine)])
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "evil\\nok  CSC-1  imported.docx" in result.output
    assert "\\x1b[32mgreen.docx" in result.output
    lines = result.output.splitlines()
    assert not any(line.startswith("ok  CSC-1") for line in lines)
    messages = [line for line in lines if line.startswith("    ERROR")]
    assert len(messages) == 3
    assert any("mismatch.docx · word/document.xml] is not well-formed XML (" in m for m in messages)


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- memory: bounded by construction ------------------------------------------------------

MEASURE = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # never take the machine down
    from formtool.store import open_store
    from formtool.imports import import_paths
    outcomes = import_paths(open_store(sys.argv[1]), [sys.argv[2]])
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big
    # pytest process would report the parent's size.
    status = open("/proc/self/status").read()
    print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    print(outcomes[0].status, outcomes[0].issues[0].code.label if outcomes[0].issues else "")
""")


def peak_mb(db: str, path: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, db, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak, outcome = done.stdout.splitlines()[-2:]
    return int(peak), outcome


def shared_string_bomb(xlsx: bytes, keep_identity: bool) -> bytes:
    """Every answer cell points at one 1 MB shared string."""
    huge = "A" * 1_000_000
    strings = (
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="1" uniqueCount="1"><si><t>{huge}</t></si></sst>'
    ).encode()
    sheet = member(xlsx, "xl/worksheets/sheet1.xml").decode()
    sheet = re.sub(
        r'<c r="([A-Z]+\d+)"([^>]*?)(/>|>.*?</c>)',
        lambda m: f'<c r="{m[1]}" t="s"><v>0</v></c>',
        sheet,
        flags=re.S,
    )
    data = with_member(xlsx, "xl/worksheets/sheet1.xml", sheet.encode())
    data = with_member(data, "xl/sharedStrings.xml", strings)
    if not keep_identity:
        data = with_member(data, "docProps/custom.xml", b"<Properties/>")
    return data


def bookmark_bomb(docx: bytes, form) -> bytes:
    """Thousands of unclosed bookmarks (named after real keys) before 400 KB of text."""
    names = [bookmark_name(f.key) for f in form.fields()]
    marks = "".join(
        f'<w:bookmarkStart w:id="{i}" w:name="{names[i % len(names)]}"/>' for i in range(5000)
    )
    text = "".join(f"<w:r><w:t>{'word ' * 16}</w:t></w:r>" for _ in range(5000))
    document = (
        f'<w:document xmlns:w="{W}"><w:body>{marks}<w:p>{text}</w:p></w:body></w:document>'
    ).encode()
    return with_member(docx, "word/document.xml", document)


@pytest.mark.parametrize("kind", ["xlsx-strings-no-identity", "xlsx-strings", "docx-bookmarks"])
def test_amplification_files_stay_under_300_mb(forms, tmp_path, kind):
    engine, form, docx, xlsx = forms
    if kind.startswith("xlsx"):
        data = shared_string_bomb(xlsx[0].path.read_bytes(), kind == "xlsx-strings")
        path = tmp_path / "bomb.xlsx"
    else:
        data = bookmark_bomb(docx[0].path.read_bytes(), form)
        path = tmp_path / "bomb.docx"
    path.write_bytes(data)
    assert len(data) < 2_000_000  # a small file...
    peak, outcome = peak_mb(_url(engine), path)
    assert peak < 300, f"{kind}: {peak} MB"  # ...that cannot multiply memory
    assert (
        outcome
        == {
            "xlsx-strings-no-identity": "rejected no-identity",
            "xlsx-strings": "rejected field-too-long",
            "docx-bookmarks": "rejected too-much-text",
        }[kind]
    )


def test_json_output_of_a_rejection_carries_the_code_and_fields(forms, tmp_path):
    engine = forms[0]
    bad = tmp_path / "bad.docx"
    bad.write_bytes(b"not a zip")
    result = CliRunner().invoke(cli, ["import", str(bad), "--db", _url(engine), "--json"])
    assert result.exit_code == 1
    [outcome] = json.loads(result.stdout)
    [issue] = outcome["issues"]
    assert {k: issue[k] for k in ("code", "severity", "field", "value", "expected")} == {
        "code": "not-a-zip",
        "severity": "error",
        "field": "",
        "value": "",
        "expected": ".docx",
    }
