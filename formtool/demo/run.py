"""`formtool demo`: the whole cycle on synthetic data, with nothing to set up.

Each step calls the same library function as its command (allocate, generate, send, import,
select, moderation-sample, pack) and is reported as it happens. All data is made up (see
synthetic.py).
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.definitions import get_form
from formtool.errors import IssueCode
from formtool.periods import Month, show_date
from formtool.programme.deadlines import last_calendar_day
from formtool.read.cases import write_case_list
from formtool.settings import DEFAULT, Settings
from formtool.store import FILE_PACK, PMU_PACK, REPORT, masked, open_store

#: Population categories -> how many synthetic cases the demo's population holds.
POPULATION = {
    "cin": 60,
    "cp": 40,
    "lac": 40,
    "early_help": 40,
    "foster_carer": 14,
    "prospective_adopter": 5,
    "supported_lodgings": 6,
}
SENDER = "qa-team@example.invalid"


@dataclass
class Step:
    number: int
    title: str
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.number, "title": self.title, "lines": self.lines}

    def text(self) -> str:
        """The step as `formtool demo` prints it."""
        return "\n".join(
            [f"{self.number:>2}. {self.title}", *(f"      {line}" for line in self.lines)]
        )


@dataclass
class DemoReport:
    out: str
    db: str
    steps: list[Step] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "db": self.db,
            "steps": [s.as_dict() for s in self.steps],
            **self.figures,
        }


class _Run:
    """One demo run: where things go, the random source, and the step reporter."""

    def __init__(
        self,
        out_dir: Path,
        seed: int,
        today: dt.date,
        db_url: str,
        on_step: Callable[[Step], None] | None,
        settings: Settings,
        own_database: bool = False,
    ) -> None:
        self.out, self.rng, self.today = out_dir, random.Random(seed), today
        self.settings = settings
        self.due = last_calendar_day(today.year, today.month)
        self.month = Month.of(self.due)
        self.db = open_store(db_url)
        # The demo's own database has a published identity key, so its forms are the same
        # on every run; a council's database makes its own secret one.
        if own_database:
            self.db.fix_identity_key(f"formtool demo {seed} (not secret)")
        self.report = DemoReport(str(out_dir), masked(db_url))
        self.on_step = on_step

    def step(self, title: str, *lines: str) -> None:
        step = Step(len(self.report.steps) + 1, title, list(lines))
        self.report.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)


def _fresh(out_dir: Path, db_url: str | None) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in ("inputs", "forms", "returns", "mail", "packs"):  # packs/ holds activities/
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    if db_url is not None:
        return db_url
    for stale in out_dir.glob("formtool.db*"):
        stale.unlink()  # the demo starts from an empty database each time
    return f"sqlite:///{out_dir / 'formtool.db'}"


def run_demo(
    out_dir: Path,
    seed: int = 2026,
    today: dt.date | None = None,
    db_url: str | None = None,
    on_step: Callable[[Step], None] | None = None,
    settings: Settings = DEFAULT,
) -> DemoReport:
    """Population -> allocation -> forms -> emails -> returns (a few broken, two by email) ->
    import -> the checklist's second stage -> moderation -> packs. Returns what happened."""
    with _fewer_collections():
        return _run_demo(out_dir, seed, today, db_url, on_step, settings)


#: The cycle collector's thresholds while the demo runs (Python's are 700, 10, 10).
DEMO_GC = (10_000, 10, 10)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cycles less often while the demo runs. It makes millions of short-lived objects
    (forms, documents, PDFs) and keeps the month's file packs alive until they are bundled;
    at Python's rate of a collection every 700 new objects, walking them took ~10% of its
    CPU time. Refcounting still frees everything without cycles at once."""
    before = gc.get_threshold()
    gc.set_threshold(*DEMO_GC)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _run_demo(
    out_dir: Path,
    seed: int,
    today: dt.date | None,
    db_url: str | None,
    on_step: Callable[[Step], None] | None,
    settings: Settings,
) -> DemoReport:
    run = _Run(
        out_dir,
        seed,
        today or clock.today(),
        _fresh(out_dir, db_url),
        on_step,
        settings,
        own_database=db_url is None,
    )
    _allocate(run)
    produced = _generate(run)
    _send(run)
    _returns(run, produced)
    _second_stage(run)
    _moderate(run)
    _packs(run)
    database = run.report.db if db_url else out_dir / "formtool.db"
    run.step(
        "Browse it in the web workspace: give yourself an account (it asks for a password), "
        "then serve",
        f"formtool users add YOUR-NAME --role moderator --db {database}",
        f"formtool serve --db {database}",
    )
    return run.report


def _allocate(run: _Run) -> None:
    from formtool.demo.synthetic import synthetic_auditors, synthetic_population, synthetic_staff
    from formtool.programme.allocation import run_allocation

    inputs = run.out / "inputs"
    population = synthetic_population(run.due, run.rng, POPULATION)
    write_case_list(inputs / "population.csv", population)
    write_case_list(inputs / "auditors.csv", _with_groups(synthetic_auditors(run.month)))
    write_case_list(inputs / "staff.csv", synthetic_staff(population))
    plan = inputs / "plan.yaml"
    shutil.copy(Path(str(resources.files("formtool.templates") / "plans" / "demo.yaml")), plan)
    run.step("Synthetic population, auditors and plan", str(inputs))
    allocation = run_allocation(
        run.db,
        inputs / "population.csv",
        inputs / "auditors.csv",
        run.month,
        plan,
        2026,
        run.out / "allocation.csv",
        staff_path=inputs / "staff.csv",
        themes={"dip_sample": DIP_THEME},
    )
    forms = Counter(r["form"] for r in allocation.rows if not r.get("activity"))
    run.step(
        f"Allocated {len(allocation.rows)} audits for {run.month}, due {show_date(allocation.due)}",
        str(run.out / "allocation.csv"),
        *(f"{get_form(f).name}: {n}" for f, n in forms.items()),
        *(f"{r['name']}: {r['audits']} (activity run {r['run']})" for r in allocation.runs),
        *(f"not allocated: {note}" for note in allocation.unallocated),
    )
    run.report.figures["allocated"] = len(allocation.rows)
    run.report.figures["forms"] = dict(forms)
    run.report.figures["activities"] = {r["activity"]: r["audits"] for r in allocation.runs}
    _thematic(run, inputs, allocation.rows)


#: The demo's auditors who are team managers (hull's dip samples and observations are theirs).
TEAM_MANAGERS = ("Auditor A1 (synthetic)", "Auditor B1 (synthetic)")
THEME = "Neglect: is the child's daily experience known? (synthetic)"
DIP_THEME = "Children who go missing from home (synthetic)"


def _with_groups(auditors: list[dict[str, str]]) -> list[dict[str, str]]:
    return [a | {"group": "team managers" if a["name"] in TEAM_MANAGERS else ""} for a in auditors]


def _thematic(run: _Run, inputs: Path, allocated: list[dict[str, str]]) -> None:
    """The officer starts a thematic audit on a theme, three child protection cases drawn
    (`formtool activity start thematic --where category=cp --size 3`); its audits join the
    month's case list, so one `generate` makes every form."""
    from formtool.programme.rules import active_policy
    from formtool.programme.runs import RunRequest, start_run

    request = RunRequest(
        "thematic", str(run.month), inputs / "population.csv", inputs / "auditors.csv",
        where=("category=cp",), size=3, theme=THEME, owner="Lead A (synthetic)", seed=2026,
    )  # fmt: skip
    started = start_run(run.db, active_policy(run.db), request, run.out / "thematic.csv", "demo")
    write_case_list(run.out / "allocation.csv", allocated + started.rows)
    run.step(
        f"Thematic audit started: run {started.run.id}, {len(started.rows)} cases",
        str(run.out / "thematic.csv"),
        f"theme: {THEME}",
    )
    run.report.figures["thematic_run"] = started.run.id
    run.report.figures["thematic_audits"] = len(started.rows)


def _generate(run: _Run) -> list[Any]:
    from formtool.generate import generate

    produced = generate(
        None,
        run.out / "allocation.csv",
        run.out / "forms",
        "both",
        db=run.db,
        settings=run.settings,
    )
    run.step(
        f"Pre-filled forms: {len(produced)} .docx/.xlsx and a manifest", str(run.out / "forms")
    )
    run.report.figures["files"] = len(produced)
    return produced


def _deliver(run: _Run) -> Any:
    """`formtool send` for the month's forms not yet sent, as .eml drafts, which the officer
    sends from Outlook and marks sent (`formtool send --mark-sent`)."""
    from formtool.programme.mail import deliver
    from formtool.programme.outbox import mark_sent

    result = deliver(
        run.db,
        SENDER,
        run.out / "forms",
        run.month,
        run.out / "mail",
        today=run.today,
        settings=run.settings,
    )
    mark_sent(run.db, run.month)
    return result


def _send(run: _Run) -> None:
    result = _deliver(run)
    preparing = sum(m.stage == "prepare" for m in result.messages)
    run.report.figures["emails"] = len(result.written)  # the second stage adds more below
    run.step(
        f"Emails: {len(result.messages)} drafts, one form per audit in each auditor's "
        f"format ({preparing} to workers preparing checklists)",
        str(run.out / "mail"),
    )


def _returns(run: _Run, produced: list[Any]) -> None:
    from formtool.read.batch import counts, import_paths

    folder = run.out / "returns"
    folder.mkdir(parents=True)
    written = _fill_returns(run, produced, folder)
    broken = _break_some(written)
    emailed = _email_two(written, folder)
    run.step(
        "Completed returns",
        str(folder),
        *(f"deliberately broken: {b}" for b in broken),
        f"arrived by email: {emailed}",
    )
    outcomes = import_paths(run.db, [folder], run.today)
    tally = counts(outcomes)
    run.step(
        "Imported: " + ", ".join(f"{n} {s}" for s, n in tally.items() if n),
        *(f"rejected: {o.issues[0].message}" for o in outcomes if o.status == "rejected"),
        *(f"held: {o.issues[-1].message}" for o in outcomes if o.status == "held"),
        *(
            f"urgent: {i.message}"
            for o in outcomes
            for i in o.issues
            if i.code is IssueCode.concern_raised
        ),
    )
    run.report.figures["imported"] = tally
    _accept_held(run)


def _accept_held(run: _Run) -> None:
    """The officer checks who sent each held return (one auditor emailed a colleague's
    form) and accepts it, as `formtool held --accept` does."""
    from formtool.programme.workflow import accept_held

    held = run.db.held_returns()
    for row in held:
        accept_held(run.db, row.return_id, "demo")
    if held:
        run.step(
            "Held returns accepted by the officer",
            *(f"return {r.return_id} of {r.audit_id}, sent by {r.sender}" for r in held),
        )


def _fill_returns(run: _Run, produced: list[Any], folder: Path) -> list[Path]:
    """Each auditor returns the format they were sent, filled in (the worker, for a
    checklist's first stage). One auditor found an immediate concern for the child: the
    second one-stage Excel return (the first is spoilt in `_break_some`)."""
    from formtool.demo.fill import concern_answers, fill_return
    from formtool.demo.synthetic import synthetic_answers

    own = [item for item in produced if item.format == item.case.form_format]
    excel = [i for i in own if i.format == "xlsx" and not get_form(i.case.form_id).two_stage]
    concern = excel[1] if len(excel) > 2 else None
    written = []
    for item in own:
        form = get_form(item.case.form_id)
        roles = ("", "preparer") if form.two_stage else ("", "preparer", "auditor")
        answers = synthetic_answers(form, item.case, run.rng, run.today, roles)
        if item is concern:
            answers |= concern_answers(form, raised=True, day=run.today)
        path = folder / item.path.name
        path.write_bytes(fill_return(item.path.read_bytes(), item.format, form, answers))
        written.append(path)
    return written


def _break_some(returns: list[Path]) -> list[str]:
    """Spoil three returns the ways real ones go wrong, so the demo shows rejections."""
    from formtool.demo.fill import fill_docx, fill_xlsx, strip_controls
    from formtool.read import read_path

    docx = next(p for p in returns if p.suffix == ".docx")
    question = read_path(docx).form.questions()[0].key
    docx.write_bytes(strip_controls(fill_docx(docx.read_bytes(), {question: "Maybe"})))
    xlsx = next(p for p in returns if p.suffix == ".xlsx")
    xlsx.write_bytes(fill_xlsx(xlsx.read_bytes(), {"header.case_number": "EDITED-1"}))
    case_files = [p for p in returns if not re.match(r"[A-Z]{2,5}\d+-", p.name)]
    truncated = case_files[-1]  # an activity's return (TH5-...) is never the broken one
    truncated.write_bytes(truncated.read_bytes()[:2000])
    return [
        f"{docx.name}: controls stripped (as by Google Docs), 'Maybe' typed",
        f"{xlsx.name}: a pre-filled fact edited",
        f"{truncated.name}: truncated in transit",
    ]


def _email_two(returns: list[Path], folder: Path) -> str:
    """Two good returns arrive attached to one email reply, saved as .eml: one auditor
    sends a colleague's form with their own, so that one is held for an officer."""
    pair = [p for p in returns[1:-1] if p.suffix == ".docx"][1:3]
    message = EmailMessage()
    message["From"] = '"Auditor B1 (synthetic)" <auditor.b1@example.invalid>'
    message["Date"] = "Mon, 23 Nov 2026 09:15:00 +0000"
    message["Subject"] = "RE: case file audits"
    message.set_content("Completed audits attached.")
    for path in pair:
        message.add_attachment(
            path.read_bytes(), maintype="application", subtype="octet-stream", filename=path.name
        )
        path.unlink()
    (folder / "reply.eml").write_bytes(message.as_bytes())
    return f"reply.eml carrying {', '.join(p.name for p in pair)}"


def _second_stage(run: _Run) -> None:
    """Seed 000: pick prepared files per team, send them on, the auditor judges them."""
    from formtool.demo.fill import fill_return
    from formtool.demo.synthetic import synthetic_answers
    from formtool.programme.workflow import select_prepared
    from formtool.read.batch import import_paths
    from formtool.read.cases import Case

    selection = select_prepared(run.db, run.month, seed=1)
    if not selection.selected and not selection.filed:
        return
    sent_on = _deliver(run)
    run.report.figures["emails"] = run.report.figures.get("emails", 0) + len(sent_on.written)
    folder = run.out / "returns" / "judged"
    folder.mkdir()
    for audit_id in selection.selected:
        prepared = run.db.prepared_return(audit_id)
        audit = run.db.audit_row(audit_id)
        form = get_form(audit.form_id, audit.form_version)
        case = Case(audit_id, form.id, form.version, {"auditor": audit.auditor})
        answers = synthetic_answers(form, case, run.rng, run.today, ("auditor",))
        suffix = prepared.file_name.rsplit(".", 1)[-1]
        (folder / prepared.file_name.split(" › ")[-1]).write_bytes(
            fill_return(prepared.content, suffix, form, answers)
        )
    outcomes = import_paths(run.db, [folder], run.today)
    run.step(
        f"Quality practice: {len(selection.selected)} prepared file(s) picked for audit "
        f"and sent on, {len(selection.filed)} filed as prepared, not audited",
        f"judged returns imported: {sum(o.status != 'rejected' for o in outcomes)}",
    )


def _moderate(run: _Run) -> None:
    """A head of service moderates the 10% sample: agrees mostly, re-grades one."""
    from formtool.programme.moderation import (
        moderate,
        moderation_pool,
        moderation_sample,
        target_words,
    )
    from formtool.programme.rules import active_policy
    from formtool.programme.status import status

    report = status(run.db, run.month, run.today)
    run.step("Status: " + ", ".join(f"{n} {s}" for s, n in report.by_state.items()))
    pool = len(moderation_pool(run.db, run.month))
    picked = moderation_sample(run.db, run.month, active_policy(run.db).moderation.rate, seed=1)
    lines = []
    for i, row in enumerate(picked):
        scale = get_form(_form_of(run, row.audit_id)).grade_scale
        grade = row.auditor_grade if i or scale is None else run.rng.choice(scale.choices[1:4])
        result = moderate(
            run.db,
            row.audit_id,
            grade,
            "Head of Service (synthetic)",
            "monthly moderation sample",
        )
        lines.append(f"{row.audit_id}: {result.auditor_grade} -> {result.moderated_grade}")
    rate = f"{len(picked) / pool:.0%}" if pool else "-"
    run.step(
        f"Moderated {len(picked)} of {pool} graded audits ({rate} achieved; "
        f"{target_words(active_policy(run.db))})",
        *lines,
    )
    run.report.figures["moderated"] = len(picked)


def _form_of(run: _Run, audit_id: str) -> str:
    return str(run.db.audit_row(audit_id).form_id)


def _packs(run: _Run) -> None:
    from formtool.packs.file import file_pack, month_audits
    from formtool.packs.pmu import pmu_pack

    file_dir, pmu_dir = run.out / "packs" / "file", run.out / "packs" / "pmu"
    filed_ids = month_audits(run.db, run.month)
    filed = file_pack(
        run.db,
        filed_ids,
        file_dir,
        ("docx", "pdf"),
        bundle_name=f"file-pack-{run.month}.pdf",
        settings=run.settings,
    )
    run.db.record_files(filed.files, FILE_PACK, audit_ids=filed_ids, month=str(run.month))
    run.step(
        f"File packs: {len(filed.files) - 1} documents for the children's records",
        f"bundle: {file_dir / f'file-pack-{run.month}.pdf'}",
    )
    run.report.figures["file_pack"] = [str(p) for p in filed.files]
    written = pmu_pack(run.db, pmu_dir, month=run.month, as_of=run.today, settings=run.settings)
    run.db.record_files(written, PMU_PACK, month=str(run.month))
    run.step("PMU pack", *map(str, written))
    run.report.figures["pmu_pack"] = [str(p) for p in written]
    _activity_reports(run)


def _activity_reports(run: _Run) -> None:
    """The thematic run's group summary report and the month's observation summary
    (`formtool activity report RUN`, `formtool activity report --observation MONTH`)."""
    from formtool.packs.activity import group_report, observation_report
    from formtool.programme.allocation import load_staff

    folder = run.out / "packs" / "activities"
    run_id = run.report.figures["thematic_run"]
    written = group_report(run.db, run_id, folder, "demo", run.settings)
    practitioners = [
        s for s in load_staff(run.out / "inputs" / "staff.csv") if s["role"] != "team manager"
    ]
    written += observation_report(
        run.db, str(run.month), folder, "demo", practitioners, settings=run.settings
    )
    run.db.record_files(written, REPORT, month=str(run.month))
    run.step(
        "Activity reports: the thematic audit's group summary, the observations", *map(str, written)
    )
    run.report.figures["activity_reports"] = [str(p) for p in written]
