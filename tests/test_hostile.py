"""Hostile and broken returns: one-line reasons, the batch goes on, the database untouched."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.fill import fill_docx
from formtool.generate import write_forms
from formtool.imports import import_paths

from conftest import make_cases

TODAY = dt.date(2026, 11, 22)
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
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename == name else src.read(info))
        if name not in src.namelist():
            dst.writestr(name, content)
    return out.getvalue()


def zip_bomb(path) -> None:
    """A real 1 GB member (zeros), about 1 MB on disk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                member.write(chunk)


@pytest.fixture
def batch(tmp_path):
    engine = store.open_store(f"sqlite:///{tmp_path / 't.db'}")
    form = get_form("csc")
    cases = make_cases(tmp_path, form, 2)
    made = write_forms(form, cases, tmp_path / "forms", ("docx",), engine=engine)
    good = fill_docx(made[0].path.read_bytes(), {"kss1.seen_alone": "Yes"})
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.docx").write_bytes(good)
    (folder / "not-a-zip.docx").write_bytes(b"Dear QA team, please find attached...")
    (folder / "truncated.docx").write_bytes(good[: len(good) // 2])
    (folder / "macros.docm").write_bytes(with_member(good, "word/vbaProject.bin", b"\0" * 64))
    (folder / "macros-renamed.docx").write_bytes(
        with_member(good, "word/vbaProject.bin", b"\0" * 64)
    )
    (folder / "password.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096)
    (folder / "xxe.docx").write_bytes(with_member(good, "word/document.xml", XXE))
    (folder / "laughs.docx").write_bytes(with_member(good, "word/document.xml", LAUGHS))
    anonymous = with_member(good, "docProps/custom.xml", b"<Properties/>")
    for part in ("word/document.xml", "word/footer1.xml"):
        with zipfile.ZipFile(io.BytesIO(anonymous)) as archive:
            text = archive.read(part).replace(b"Audit ID", b"Ref")
        anonymous = with_member(anonymous, part, text)
    (folder / "no-identity.docx").write_bytes(anonymous)
    (folder / "unknown.xlsx").write_bytes(b"PK\x03\x04 not really")
    zip_bomb(folder / "bomb.docx")
    (folder / "notes.txt").write_text("ignored: not a form")
    return engine, folder


EXPECTED = {
    "bomb.docx": "expands to far more data than a form holds (a zip bomb?); it was not opened.",
    "laughs.docx": "word/document.xml declares XML entities, which Office never writes; "
    "it was not read.",
    "macros-renamed.docx": "contains macros. Save it as a plain .docx (no macros) and send it "
    "again.",
    "macros.docm": "is macro-enabled. Save it as a plain .docx (no macros) and send it again.",
    "not-a-zip.docx": "is not a .docx file (not a valid zip: damaged, truncated or renamed). "
    "Ask the auditor to send the file again.",
    "password.docx": "is password-protected or an old binary .doc file. Ask the auditor to "
    "remove the password (File > Info) and save as .docx.",
    "truncated.docx": "is not a .docx file (not a valid zip: damaged, truncated or renamed). "
    "Ask the auditor to send the file again.",
    "unknown.xlsx": "is not a .xlsx file (not a valid zip: damaged, truncated or renamed). "
    "Ask the auditor to send the file again.",
    "xxe.docx": "word/document.xml declares XML entities, which Office never writes; "
    "it was not read.",
}


def test_each_bad_file_gets_one_line_and_the_good_one_imports(batch):
    engine, folder = batch
    outcomes = {o.file.split("/")[-1]: o for o in import_paths(engine, [folder], TODAY)}
    assert outcomes.pop("good.docx").status == "imported"
    no_identity = outcomes.pop("no-identity.docx")
    assert no_identity.status == "rejected"
    assert "carries no formtool audit identity" in no_identity.issues[0].message
    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(EXPECTED, "rejected")
    for name, outcome in outcomes.items():
        [issue] = outcome.issues
        assert issue.message == f"[{folder / name}] {EXPECTED[name]}"
        assert "\n" not in issue.message
    with engine.connect() as conn:
        files = [r.file_name for r in conn.execute(sa.select(store.returns.c.file_name))]
    assert files == ["good.docx"]


def test_missing_path_is_rejected_not_raised(tmp_path):
    engine = store.open_store(f"sqlite:///{tmp_path / 't.db'}")
    [outcome] = import_paths(engine, [tmp_path / "absent.docx"], TODAY)
    assert outcome.status == "rejected"
    assert (
        outcome.issues[0].message == f"[{tmp_path / 'absent.docx'}] does not exist. Check the path."
    )
