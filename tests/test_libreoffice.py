"""Real programs: every form opens in LibreOffice (PDF export) and survives being filled and
saved by LibreOffice Writer/Calc, or flattened like Google Docs does, with every answer,
fact and the identity read back."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from formtool.definitions import get_form
from formtool.fill import fill_docx, fill_xlsx, strip_controls
from formtool.generate import render
from formtool.read import read_path

from conftest import FORM_IDS, answers_for, convert, date_keys, make_cases

pytestmark = pytest.mark.libreoffice


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Blank, filled and flattened forms for every type, converted by LibreOffice in bulk."""
    root = tmp_path_factory.mktemp("lo")
    made: dict[str, dict] = {}
    blank_docx, blank_xlsx, filled_docx, filled_xlsx = [], [], [], []
    for form_id in FORM_IDS:
        form = get_form(form_id)
        case = make_cases(root, form, 1)[0]
        answers = answers_for(form)
        made[form_id] = {"case": case, "answers": answers}
        for fmt, blanks in (("docx", blank_docx), ("xlsx", blank_xlsx)):
            path = root / "blank" / f"{form_id}.{fmt}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(render(form, case, fmt))
            blanks.append(path)
        (root / "filled").mkdir(exist_ok=True)
        docx_bytes = fill_docx(render(form, case, "docx"), answers)
        for name, data in (
            (f"{form_id}.docx", docx_bytes),
            (f"{form_id}-stripped.docx", strip_controls(docx_bytes)),
        ):
            (root / "filled" / name).write_bytes(data)
            filled_docx.append(root / "filled" / name)
        xlsx_path = root / "filled" / f"{form_id}.xlsx"
        xlsx_path.write_bytes(fill_xlsx(render(form, case, "xlsx"), answers, date_keys(form)))
        filled_xlsx.append(xlsx_path)
    convert(blank_docx, "pdf", root / "pdf-docx")
    convert(blank_xlsx, "pdf", root / "pdf-xlsx")
    convert(filled_docx, "docx", root / "saved")
    convert(filled_xlsx, "xlsx", root / "saved")
    return root, made


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
@pytest.mark.parametrize("form_id", FORM_IDS)
def test_blank_form_exports_to_pdf(workdir, form_id, fmt):
    root, made = workdir
    pdf = PdfReader(root / f"pdf-{fmt}" / f"{form_id}.pdf")
    assert len(pdf.pages) >= 2
    first = pdf.pages[0].extract_text()
    assert made[form_id]["case"].audit_id in first
    assert get_form(form_id).title.split()[0] in first


@pytest.mark.parametrize("variant", ["docx", "stripped.docx", "xlsx"])
@pytest.mark.parametrize("form_id", FORM_IDS)
def test_filled_form_survives_libreoffice_save(workdir, form_id, variant):
    root, made = workdir
    name = f"{form_id}.{variant}" if variant != "stripped.docx" else f"{form_id}-stripped.docx"
    case, answers = made[form_id]["case"], made[form_id]["answers"]
    for folder in ("filled", "saved"):  # before and after LibreOffice
        result = read_path(root / folder / name)
        assert (result.identity.audit_id, result.identity.checksum) == (
            case.audit_id,
            case.checksum,
        )
        wrong = {
            k: (v, result.values.get(k)) for k, v in answers.items() if result.values.get(k) != v
        }
        assert wrong == {}, folder
        facts = {k: result.values.get(f"header.{k}") for k in case.facts}
        assert facts == case.facts
        expected = (
            "table layout"
            if "stripped" in name
            else ("defined names" if name.endswith("xlsx") else "bookmarks")
        )
        assert result.method == expected


def test_libreoffice_drops_tags_but_keeps_bookmarks(workdir):
    """The premise of the design: if LibreOffice ever keeps w:tag, this will say so."""
    root, _ = workdir
    from formtool.layout import layout
    from formtool.read.docx import open_docx, tagged_text
    from formtool.read.limits import TextBudget

    keys = set(layout(get_form("csc")).positions)
    _, body = open_docx((root / "saved" / "csc.docx").read_bytes())
    assert tagged_text(body, keys, TextBudget()) == {}
    _, original = open_docx((root / "filled" / "csc.docx").read_bytes())
    assert len(tagged_text(original, keys, TextBudget())) > 100


def expected_rows(form_id: str, answers: dict[str, str]) -> dict[str, tuple[str, str]]:
    """What the answers table should hold: canonical values, ISO dates, evidence as comment."""
    form = get_form(form_id)
    dates = date_keys(form)

    def canonical(key: str) -> str:
        value = answers.get(key, "")
        if key in dates and value:
            day, month, year = value.split("/")
            return f"{year}-{month}-{day}"
        return value

    return {
        item.key: (canonical(item.key), canonical(item.evidence_key) if item.evidence else "")
        for _, item in form.items()
        if item.kind != "table"
    }


@pytest.mark.parametrize("variant", ["docx", "stripped.docx", "xlsx"])
def test_libreoffice_saved_returns_import_exactly(workdir, variant, tmp_path):
    """generate -> fill every field -> LibreOffice save -> import: every stored value equal."""
    import sqlalchemy as sa

    from formtool import store
    from formtool.generate import record_audits
    from formtool.imports import import_paths

    root, made = workdir
    engine = store.open_store(f"sqlite:///{tmp_path / 'lo.db'}")
    for m in made.values():
        record_audits(engine, get_form(m["case"].form_id), [m["case"]])
    files = [
        root / "saved" / (f"{f}-stripped.docx" if variant == "stripped.docx" else f"{f}.{variant}")
        for f in FORM_IDS
    ]
    outcomes = import_paths(engine, files)
    assert [o.status for o in outcomes] == ["imported"] * len(FORM_IDS)
    with engine.connect() as conn:
        for form_id in FORM_IDS:
            audit_id = made[form_id]["case"].audit_id
            stored = {
                r.key: (r.value, r.comment)
                for r in conn.execute(
                    sa.select(store.answers)
                    .join(store.returns)
                    .where(store.returns.c.audit_id == audit_id)
                )
            }
            assert stored == expected_rows(form_id, made[form_id]["answers"]), form_id
            actions = conn.execute(
                sa.select(sa.func.count())
                .select_from(store.actions)
                .join(store.returns)
                .where(store.returns.c.audit_id == audit_id)
            ).scalar()
            form = get_form(form_id)
            assert actions == sum(i.rows for _, i in form.items() if i.kind == "table")


def test_rows_added_in_word_survive_libreoffice_and_import(tmp_path):
    """An auditor adds two action rows with Word's + button; LibreOffice saves the file."""
    import sqlalchemy as sa

    from formtool import store
    from formtool.fill import add_action_row
    from formtool.generate import record_audits
    from formtool.imports import import_paths

    form = get_form("csc")
    case = make_cases(tmp_path, form, 1)[0]
    printed = next(t for t in form.tables() if t.key == "next_steps.actions").rows
    answers = {f"next_steps.actions.{r}.action": f"Action {r}" for r in range(1, printed + 1)}
    data = fill_docx(render(form, case, "docx"), answers)
    for r in (printed + 1, printed + 2):
        data = add_action_row(data, "next_steps.actions", {
            "action": f"Action {r}", "responsible_person": f"Person {r}",
            "date_required": "31/01/2027"})
    source = tmp_path / "added.docx"
    source.write_bytes(data)
    [saved] = convert([source], "docx", tmp_path / "saved")
    engine = store.open_store(f"sqlite:///{tmp_path / 'rows.db'}")
    record_audits(engine, form, [case])
    for path in (source, saved):
        values = read_path(path).values
        assert [values[f"next_steps.actions.{r}.action"] for r in range(1, printed + 3)] == [
            f"Action {r}" for r in range(1, printed + 3)]
    [outcome] = import_paths(engine, [saved])
    assert outcome.status == "imported", outcome.issues
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.actions).where(
            store.actions.c.table_key == "next_steps.actions").order_by(store.actions.c.row)
        ).all()
    assert [(r.row, r.action) for r in rows] == [(n, f"Action {n}")
                                                 for n in range(1, printed + 3)]
    assert rows[-1].responsible_person == f"Person {printed + 2}"
    assert str(rows[-1].due_date) == "2027-01-31"
