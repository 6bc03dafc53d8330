"""Real programs: every form survives being filled and saved by LibreOffice Writer/Calc, or
flattened like Google Docs does, with every answer, fact and the identity read back. (Every
form printed to PDF through LibreOffice: tests/test_print_pages.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, fill_xlsx, strip_controls
from formtool.generate import render
from formtool.read import read_path

from conftest import FORM_IDS as ALL_FORM_IDS
from conftest import answers_for, convert, date_keys, make_cases

pytestmark = pytest.mark.libreoffice
#: The QA activities' tools go through LibreOffice once each, end to end with their activity
#: (test_activities.py: both formats, every stored answer as filled): CI time is one round
#: trip per tool.
ACTIVITY_TOOLS = ("thematic", "supervision", "observation", "family_feedback")
FORM_IDS = [f for f in ALL_FORM_IDS if f not in ACTIVITY_TOOLS]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Filled and flattened forms for every type, saved by LibreOffice in bulk."""
    root = tmp_path_factory.mktemp("lo")
    made: dict[str, dict] = {}
    filled_docx: list[Path] = []
    filled_xlsx: list[Path] = []
    for form_id in FORM_IDS:
        form = get_form(form_id)
        case = make_cases(root, form, 1)[0]
        answers = answers_for(form)
        made[form_id] = {"case": case, "answers": answers}
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
    convert(filled_docx, "docx", root / "saved")
    convert(filled_xlsx, "xlsx", root / "saved")
    return root, made


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
    from formtool.definitions.layout import layout
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
    from formtool.read.batch import import_paths

    root, made = workdir
    db = store.open_store(f"sqlite:///{tmp_path / 'lo.db'}")
    single = [f for f in FORM_IDS if not get_form(f).two_stage]  # two-stage: see below
    for form_id in single:
        record_audits(db, get_form(form_id), [made[form_id]["case"]])
    files = [
        root / "saved" / (f"{f}-stripped.docx" if variant == "stripped.docx" else f"{f}.{variant}")
        for f in single
    ]
    outcomes = import_paths(db, files)
    assert [o.status for o in outcomes] == ["imported"] * len(single)
    with db.engine.connect() as conn:
        for form_id in single:
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
    from formtool.demo.fill import add_action_row
    from formtool.generate import record_audits
    from formtool.read.batch import import_paths

    form = get_form("csc")
    case = make_cases(tmp_path, form, 1)[0]
    printed = next(t for t in form.tables() if t.key == "next_steps.actions").rows
    answers = {f"next_steps.actions.{r}.action": f"Action {r}" for r in range(1, printed + 1)}
    data = fill_docx(render(form, case, "docx"), answers)
    for r in (printed + 1, printed + 2):
        data = add_action_row(
            data,
            "next_steps.actions",
            {
                "action": f"Action {r}",
                "responsible_person": f"Person {r}",
                "date_required": "31/01/2027",
            },
        )
    source = tmp_path / "added.docx"
    source.write_bytes(data)
    [saved] = convert([source], "docx", tmp_path / "saved")
    db = store.open_store(f"sqlite:///{tmp_path / 'rows.db'}")
    record_audits(db, form, [case])
    for path in (source, saved):
        values = read_path(path).values
        assert [values[f"next_steps.actions.{r}.action"] for r in range(1, printed + 3)] == [
            f"Action {r}" for r in range(1, printed + 3)
        ]
    [outcome] = import_paths(db, [saved])
    assert outcome.status == "imported", outcome.issues
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.actions)
            .where(store.actions.c.table_key == "next_steps.actions")
            .order_by(store.actions.c.row)
        ).all()
    assert [(r.row, r.action) for r in rows] == [(n, f"Action {n}") for n in range(1, printed + 3)]
    assert rows[-1].responsible_person == f"Person {printed + 2}"
    assert str(rows[-1].due_date) == "2027-01-31"


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_two_stage_checklist_round_trip_through_libreoffice(tmp_path, fmt):
    """Seed 000 through LibreOffice: the worker and supervisor list the evidence, the file is
    picked for audit, the service manager judges it; each stage saved by LibreOffice."""
    import datetime as dt

    import sqlalchemy as sa

    from formtool import store
    from formtool.demo.fill import fill_return
    from formtool.generate import record_audits
    from formtool.programme.workflow import select_prepared
    from formtool.read.batch import import_paths
    from formtool.store import queries

    form = get_form("quality_practice")
    assert form.two_stage
    case = make_cases(tmp_path, form, 1)[0]
    db = store.open_store(f"sqlite:///{tmp_path / 'qp.db'}")
    record_audits(db, form, [case])
    everything = answers_for(form)
    roles = {f.key: f.role for f in form.fields()}
    preparer = {k: v for k, v in everything.items() if roles[k] in ("", "preparer")}
    preparer[form.judgements.status] = "Final"
    source = tmp_path / "stage1" / f"{case.audit_id}.{fmt}"
    source.parent.mkdir()
    source.write_bytes(fill_return(render(form, case, fmt), fmt, form, preparer))
    [saved] = convert([source], fmt, tmp_path / "saved1")
    [first] = import_paths(db, [saved], dt.date(2026, 11, 22))
    assert first.status == "imported", first.issues
    with db.engine.connect() as conn:
        assert store.audit_state(conn, case.audit_id) is store.AuditState.prepared
        prepared = queries.prepared_return(conn, case.audit_id)
        stored = store.return_answers(conn, prepared.id)
    evidence = [q for q in form.questions() if q.evidence and q.evidence_role == "preparer"]
    assert all(stored[q.key][1] == everything[q.evidence_key] for q in evidence)
    assert all(not stored[q.key][0] for q in evidence)  # judgements wait for the auditor
    assert select_prepared(
        db, case.due_month if hasattr(case, "due_month") else "2026-11"
    ).selected == (case.audit_id,)
    auditor = {k: v for k, v in everything.items() if roles[k] == "auditor"}
    auditor[evidence[0].evidence_key] = "Changed by the auditor"
    judged = tmp_path / "stage2" / f"{case.audit_id}.{fmt}"
    judged.parent.mkdir()
    judged.write_bytes(fill_return(prepared.content, fmt, form, auditor))
    [saved2] = convert([judged], fmt, tmp_path / "saved2")
    [second] = import_paths(db, [saved2], dt.date(2026, 11, 22))
    assert second.status == "updated", second.issues
    assert [(i.field, i.code.label) for i in second.issues if i.is_warning] == [
        (evidence[0].evidence_key, "evidence-changed")
    ]
    with db.engine.connect() as conn:
        assert store.audit_state(conn, case.audit_id) is store.AuditState.returned
        current = store.current_return(conn, case.audit_id)
        final = store.return_answers(conn, current.id)
        stages = (
            conn.execute(sa.select(store.returns.c.stage).order_by(store.returns.c.id))
            .scalars()
            .all()
        )
    assert stages == ["prepared", "audit"]
    for q in form.questions():
        assert final[q.key][0] == everything[q.key]
        if q.comment:
            assert final[q.comment_key][0] == everything[q.comment_key]
