"""Structure-aware fuzzing with an oracle: seeded mutations that change how a return is
*written* but not what Word, Excel or LibreOffice *show* (runs split and wrapped in alternate
content, tracked deletions and moves, comments and phonetic runs inside strings, parts
renamed through their relationships, sheets added, emails with other line endings). For each,
formtool must read exactly the answers it reads from the unmutated file, or refuse it with a
code: "stored a value the auditor did not see" is a failure class beside tracebacks.

Mutations that make the shown answer ambiguous (a second document part, a duplicate zip
entry) must be refused. Mutant `i` of kind `k` comes from `random.Random(f"{SEED}:{k}:{i}")`;
a failure names the kind and index, so one case can be rebuilt alone.
"""

from __future__ import annotations

import copy
import io
import random
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from lxml import etree

from formtool.definitions import get_form
from formtool.definitions.namespaces import W
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.errors import Rejected
from formtool.generate import render
from formtool.read import read_bytes
from formtool.read.message import read_message

from conftest import answers_for, date_keys, make_cases

SEED = 20261205
MUTANTS = 15  # of each kind: about 5 s in all, on one core
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"

Entries = list[tuple[str, bytes]]
Mutation = Callable[[random.Random, bytes], bytes]


@dataclass(frozen=True)
class Base:
    suffix: str
    data: bytes
    values: dict[str, str]  # what formtool reads from the unmutated file


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Base]:
    folder = tmp_path_factory.mktemp("structure")
    form = get_form("csc")
    [case] = make_cases(folder, form, 1)
    answers = {**answers_for(form, 3), "completion.status": "Final"}
    made = {
        ".docx": fill_docx(render(form, case, "docx"), answers),
        ".xlsx": fill_xlsx(render(form, case, "xlsx"), answers, date_keys(form)),
    }
    return {s: Base(s, d, read_bytes(d, s).values) for s, d in made.items()}


# --- zip and XML plumbing -------------------------------------------------------------------


def unzip(data: bytes) -> Entries:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(i.filename, archive.read(i)) for i in archive.infolist()]


def rezip(entries: Entries) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return out.getvalue()


def edit(data: bytes, name: str, change: Callable[[etree._Element], None]) -> bytes:
    entries = []
    for member, content in unzip(data):
        if member == name:
            root = etree.fromstring(content)
            change(root)
            content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        entries.append((member, content))
    return rezip(entries)


def answer_runs(root: etree._Element) -> list[etree._Element]:
    """Runs with text inside the document's content controls (the answers), each once
    (controls nest: a repeating section's item holds the row's controls)."""
    found = {
        r: None
        for sdt in root.iter(W + "sdtContent")
        for r in sdt.iter(W + "r")
        if [c.tag for c in r if c.tag != W + "rPr"] == [W + "t"]  # one piece of text
    }
    return list(found)


# --- Word: the same text, written another way ----------------------------------------------


def split_runs(rng: random.Random, data: bytes) -> bytes:
    """Split answer runs in two at a random point, with rsids and a proofErr between."""

    def change(root: etree._Element) -> None:
        runs = answer_runs(root)
        for run in rng.sample(runs, min(len(runs), 5)):
            text = run.find(W + "t")
            assert text is not None
            value = text.text or ""
            if len(value) < 2:
                continue
            cut = rng.randrange(1, len(value))
            text.text = value[:cut]
            text.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            second = copy.deepcopy(run)
            second_text = second.find(W + "t")
            assert second_text is not None
            second_text.text = value[cut:]
            second.set(W + "rsidR", f"{rng.randrange(16**8):08X}")
            run.addnext(second)
            run.addnext(etree.Element(W + "proofErr", {W + "type": "spellStart"}))

    return edit(data, "word/document.xml", change)


def alternate_content(rng: random.Random, data: bytes) -> bytes:
    """Wrap answer runs in mc:AlternateContent with the same run in Choice and Fallback,
    as Word 2010+ writes text boxes and other newer content."""

    def change(root: etree._Element) -> None:
        runs = answer_runs(root)
        for run in rng.sample(runs, min(len(runs), 4)):
            holder = etree.Element(W + "r")
            alternate = etree.SubElement(holder, f"{{{MC}}}AlternateContent")
            choice = etree.SubElement(alternate, f"{{{MC}}}Choice", Requires="w14")
            fallback = etree.SubElement(alternate, f"{{{MC}}}Fallback")
            choice.append(copy.deepcopy(run))
            fallback.append(copy.deepcopy(run))
            parent = run.getparent()
            assert parent is not None
            parent.replace(run, alternate)

    return edit(data, "word/document.xml", change)


def tracked_deletion(rng: random.Random, data: bytes) -> bytes:
    """A deleted phrase (w:del/w:delText) and a moved-away one (w:moveFrom) beside answers:
    accepted, neither shows."""

    def change(root: etree._Element) -> None:
        runs = answer_runs(root)
        for run in rng.sample(runs, min(len(runs), 4)):
            kind = rng.choice(("del", "moveFrom"))
            wrapper = etree.Element(W + kind, {W + "id": str(rng.randrange(1000, 9999))})
            gone = etree.SubElement(wrapper, W + "r")
            tag = "delText" if kind == "del" else "t"
            etree.SubElement(gone, W + tag).text = f" struck {rng.randrange(100)} "
            (run.addprevious if rng.random() < 0.5 else run.addnext)(wrapper)

    return edit(data, "word/document.xml", change)


def inserted_run(rng: random.Random, data: bytes) -> bytes:
    """An answer run moved into a tracked insertion (w:ins) or move destination (w:moveTo):
    accepted, it shows as before."""

    def change(root: etree._Element) -> None:
        runs = answer_runs(root)
        for run in rng.sample(runs, min(len(runs), 4)):
            wrapper = etree.Element(W + rng.choice(("ins", "moveTo")), {W + "id": "7"})
            parent = run.getparent()
            assert parent is not None
            parent.replace(run, wrapper)
            wrapper.append(run)

    return edit(data, "word/document.xml", change)


def renamed_main_part(rng: random.Random, data: bytes) -> bytes:
    """word/document.xml renamed (its relationships and content type follow), as some
    writers name it: Office opens whatever `_rels/.rels` points to."""
    target = rng.choice(("word/main.xml", "word/document2.xml", "word/body.xml"))
    entries = []
    for name, content in unzip(data):
        if name == "word/document.xml":
            name = target
        elif name == "word/_rels/document.xml.rels":
            name = f"word/_rels/{target.rsplit('/', 1)[1]}.rels"
        elif name in ("_rels/.rels", "[Content_Types].xml"):
            content = content.replace(b"word/document.xml", target.encode())
        entries.append((name, content))
    return rezip(entries)


def duplicate_main_part(rng: random.Random, data: bytes) -> bytes:
    """A second copy of the document with one answer changed, under a name that differs only
    in case (or the same name twice): which one shows cannot be told, so it is refused."""
    entries = unzip(data)
    document = dict(entries)["word/document.xml"]
    root = etree.fromstring(document)
    runs = answer_runs(root)
    text = rng.choice(runs).find(W + "t")
    assert text is not None
    text.text = "A DIFFERENT ANSWER"
    other = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    name = rng.choice(("WORD/DOCUMENT.XML", "word/Document.xml", "word/document.xml"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        return rezip([*entries, (name, other)])


# --- Excel: the same cells, written another way --------------------------------------------


def inline_comments(rng: random.Random, data: bytes) -> bytes:
    """XML comments inside inline strings: Excel shows the text around them, joined."""
    entries = []
    for name, content in unzip(data):
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            root = etree.fromstring(content)
            texts = [t for t in root.iter(S + "t") if t.text and len(t.text) > 2]
            for text in rng.sample(texts, min(len(texts), 5)):
                cut = rng.randrange(1, len(text.text or ""))
                whole = text.text or ""
                text.text = whole[:cut]
                comment = etree.Comment(" saved by a tool ")
                comment.tail = whole[cut:]
                text.append(comment)
            content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        entries.append((name, content))
    return rezip(entries)


def phonetic_runs(rng: random.Random, data: bytes) -> bytes:
    """Phonetic guide runs (rPh) in inline strings: shown above the text, not in the value."""
    entries = []
    for name, content in unzip(data):
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            root = etree.fromstring(content)
            strings = [s for s in root.iter(S + "is") if s.find(S + "t") is not None]
            for string in rng.sample(strings, min(len(strings), 5)):
                guide = etree.SubElement(string, S + "rPh", sb="0", eb="1")
                etree.SubElement(guide, S + "t").text = "ふりがな"
            content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        entries.append((name, content))
    return rezip(entries)


# --- emails: the same message, other line endings -------------------------------------------


def line_endings(rng: random.Random, data: bytes) -> bytes:
    """The reply with its lines ended by LF alone, or CRLF, as mail programs save them."""
    ending = rng.choice((b"\n", b"\r\n"))
    return b"\n".join(data.splitlines()).replace(b"\n", ending)


WORD: dict[str, Mutation] = {
    "split runs": split_runs,
    "alternate content": alternate_content,
    "tracked deletion": tracked_deletion,
    "inserted run": inserted_run,
    "renamed main part": renamed_main_part,
}
EXCEL: dict[str, Mutation] = {"inline comments": inline_comments, "phonetic runs": phonetic_runs}


def _read(data: bytes, suffix: str) -> dict[str, str] | None:
    """What formtool reads, or None if it refuses the file with a code."""
    try:
        return read_bytes(data, suffix).values
    except Rejected:
        return None


def _differences(base: dict[str, str], read: dict[str, str]) -> list[str]:
    return [
        f"{key}: {base.get(key)!r} -> {read.get(key)!r}"
        for key in sorted(set(base) | set(read))
        if base.get(key, "") != read.get(key, "")
    ]


@pytest.mark.parametrize(
    "suffix, kind", [(".docx", k) for k in WORD] + [(".xlsx", k) for k in EXCEL]
)
def test_a_return_written_another_way_reads_the_same_or_is_refused(bases, suffix, kind):
    base = bases[suffix]
    mutate = (WORD | EXCEL)[kind]
    wrong = []
    for index in range(MUTANTS):
        mutant = mutate(random.Random(f"{SEED}:{kind}:{index}"), base.data)
        read = _read(mutant, suffix)
        if read is None:
            wrong.append(f"#{index} refused, though Office shows the same answers")
        elif _differences(base.values, read):
            shown = _differences(base.values, read)[:3]
            wrong.append(f"#{index} stored what the auditor did not see: {shown}")
    assert wrong == [], f"{kind}: {len(wrong)} of {MUTANTS}: {wrong[:3]}"


def test_a_second_copy_of_the_document_is_refused_as_ambiguous(bases):
    base = bases[".docx"]
    for index in range(10):
        mutant = duplicate_main_part(random.Random(f"{SEED}:duplicate:{index}"), base.data)
        with pytest.raises(Rejected) as refused:
            read_bytes(mutant, ".docx")
        assert refused.value.code.label == "ambiguous", index


def test_an_email_with_other_line_endings_carries_the_same_return(bases):
    message = EmailMessage()
    message["From"] = "Auditor <auditor@example.invalid>"
    message["Subject"] = "RE: audit"
    message.set_content("Attached.\nSecond line.")
    message.add_attachment(
        bases[".docx"].data, maintype="application", subtype="octet-stream", filename="a.docx"
    )
    original = message.as_bytes()
    for index in range(10):
        mutant = line_endings(random.Random(f"{SEED}:endings:{index}"), original)
        [attachment] = read_message(mutant, ".eml").attachments
        assert attachment.data == bases[".docx"].data, index
        assert read_bytes(attachment.data, ".docx").values == bases[".docx"].values
