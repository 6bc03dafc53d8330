"""`formtool demo`: the whole cycle on synthetic data, with nothing to set up.

All names are obviously made up (family names like "Example" and "Sample", staff named
after their role) so no demo output can be mistaken for a real child's record.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from formtool.cases import Case, write_case_list
from formtool.deadlines import last_calendar_day
from formtool.definitions import FormDefinition, get_form
from formtool.fill import fill_docx, fill_xlsx, strip_controls
from formtool.generate import GeneratedForm, generate
from formtool.imports import import_paths
from formtool.mail import build_messages, record_sent, write_eml
from formtool.moderation import moderate, moderation_sample
from formtool.packs.file import file_pack, month_audits
from formtool.packs.pmu import pmu_pack
from formtool.programme import run_allocation
from formtool.read import read_path
from formtool.reports import status
from formtool.scales import FieldKind, format_date
from formtool.store import masked, open_store

GIVEN = (
    "Alex",
    "Sam",
    "Jordan",
    "Casey",
    "Riley",
    "Morgan",
    "Jamie",
    "Robin",
    "Charlie",
    "Frankie",
    "Billie",
    "Drew",
    "Kit",
    "Rowan",
    "Sky",
)
FAMILY = (
    "Example",
    "Sample",
    "Specimen",
    "Testcase",
    "Placeholder",
    "Fictional",
    "Madeup",
    "Dummy",
    "Mockton",
    "Notreal",
)
TEAMS = (
    "Team North (synthetic)",
    "Team South (synthetic)",
    "Team East (synthetic)",
    "Team West (synthetic)",
)
ETHNICITY = ("White British", "Mixed", "Asian British", "Black British", "Not recorded")
GENDER = ("Female", "Male", "Not recorded")
AUDIT_TYPES = ("Random sample", "Manager's choice", "Thematic", "Re-audit")
def _staff(role: str, team: int, n: int) -> str:
    return f"{role} {chr(65 + team)}{n} (synthetic)"


def synthetic_facts(prefix: str, index: int, due: dt.date, rng: random.Random
                    ) -> dict[str, str]:
    """Every column any form can print, made up; staff and auditor are never in one team."""
    team = rng.randrange(len(TEAMS))
    auditor_team = (team + 1 + rng.randrange(len(TEAMS) - 1)) % len(TEAMS)
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    born = due - dt.timedelta(days=rng.randrange(365, 17 * 365))
    return {
        "case_number": f"SYN{prefix}{index:04d}", "family_name": family, "given_names": given,
        "dob": born.isoformat(), "gender": rng.choice(GENDER),
        "ethnicity": rng.choice(ETHNICITY), "primary_language": "English",
        "worker": _staff("Worker", team, rng.randrange(1, 4)),
        "manager": _staff("Manager", team, 1), "team": TEAMS[team],
        "auditor": _staff("Auditor", auditor_team, rng.randrange(1, 3)),
        "audit_type": rng.choice(AUDIT_TYPES), "due_date": due.isoformat(),
        "carer_names": f"{given} and Partner {family}",
        "approval_date": (due - dt.timedelta(days=rng.randrange(200, 3000))).isoformat(),
        "approval_levels": rng.choice(("Short term, 0-18, 2 children",
                                       "Long term, 5-18, 1 child")),
        "children_placed": f"Child {rng.randrange(10, 99)} (synthetic)",
        "provider_names": f"{given} {family}",
        "approval_terms": rng.choice(("Staying Put", "Supported Lodgings")),
        "lcs_number": f"LCS{rng.randrange(10000, 99999)}", "religion": "Not recorded",
        "practising": "No", "languages": "English", "disabilities": "None recorded",
        "sexuality": "Not recorded", "client_group": "Children and families",
    }


def synthetic_case(form: FormDefinition, index: int, due: dt.date, rng: random.Random
                   ) -> dict[str, str]:
    """One made-up case row with every column the form's header shows."""
    values = synthetic_facts(form.id[:2].upper(), index, due, rng)
    return {h.column: values.get(h.column, "") for h in form.header} | {
        c: values[c] for c in ("case_number", "auditor", "due_date")}


POPULATION = {  # category -> how many synthetic cases the demo's population holds
    "cin": 60, "cp": 40, "lac": 40, "early_help": 40, "foster_carer": 14,
    "prospective_adopter": 5, "supported_lodgings": 6}
DEMO_PLAN = {"samples": [
    {"name": "Control sample", "form": "csc", "categories": ["cin", "cp", "lac"], "size": 20,
     "at_least": {"placed_for_adoption": 1}},
    {"name": "Early help", "form": "early_help", "categories": ["early_help"], "size": 6},
    {"name": "Foster carers", "form": "foster_carer", "categories": ["foster_carer"], "size": 6},
    {"name": "Prospective adopters", "form": "prospective_adopter",
     "categories": ["prospective_adopter"], "size": 3},
    {"name": "Supported lodgings", "form": "supported_lodgings",
     "categories": ["supported_lodgings"], "size": 2},
    {"name": "Quality practice checklist", "form": "quality_practice",
     "categories": ["cin", "cp", "lac"], "size": 4},
]}


def synthetic_population(due: dt.date, rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for category, count in POPULATION.items():
        for i in range(1, count + 1):
            facts = synthetic_facts(category[:2].upper(), i, due, rng)
            audited = due - dt.timedelta(days=rng.randrange(30, 900))
            rows.append({k: v for k, v in facts.items()
                         if k not in ("auditor", "due_date", "audit_type")} | {
                "category": category.replace("_", " "),
                "placed_for_adoption": "Yes" if category == "lac" and i <= 3 else "No",
                "last_audited": audited.isoformat() if rng.random() < 0.3 else ""})
    return rows


def synthetic_auditors(month: str) -> list[dict[str, str]]:
    """Four per team; two of sixteen (12.5%) on break this month."""
    rows = []
    for team in range(len(TEAMS)):
        for n in range(1, 5):
            name = _staff("Auditor", team, n)
            rows.append({"name": name, "email": f"auditor.{chr(97 + team)}{n}@example.invalid",
                         "team": TEAMS[team],
                         "break_months": month if (team, n) in ((0, 4), (2, 4)) else ""})
    return rows


EVIDENCE = {
    "Yes": (
        "Seen alone at school on {d}; views recorded in the visit note.",
        "Recorded in the assessment dated {d}, with the family's views.",
        "Clear evidence in case notes and supervision record of {d}.",
    ),
    "Partially": (
        "Some evidence (visit {d}) but the record does not show the analysis.",
        "Partly recorded; the plan of {d} does not reflect it.",
    ),
    "No": (
        "No record found since {d}. Discussed with the worker; action set below.",
        "Not evidenced in the file; raised with the team manager on {d}.",
    ),
    "N/A": ("Not applicable to this case.",),
}
QUALITY = {  # case quality -> weights for Yes / Partially / No / N/A, and the likely grade
    "strong": ((70, 20, 3, 7), "Good"),
    "mixed": ((40, 35, 18, 7), "Requires Improvement with elements of good practice"),
    "weak": ((15, 30, 48, 7), "Inadequate"),
}


def synthetic_answers(
    form: FormDefinition, case: Case, rng: random.Random, today: dt.date
) -> dict[str, str]:
    """Plausible completed-audit answers: consistent grades, SMART actions, Final status."""
    quality = rng.choices(list(QUALITY), weights=(45, 40, 15))[0]
    weights, grade = QUALITY[quality]
    seen = format_date(today - dt.timedelta(days=rng.randrange(5, 60)))
    answers: dict[str, str] = {}
    for section, item in form.items():
        if item.kind == "question":
            choices = item.scale.choices
            pick = rng.choices(("Yes", "Partially", "No", "N/A"), weights)[0]
            value = pick if pick in choices else choices[0]
            answers[item.key] = value
            if item.evidence:
                answers[item.evidence_key] = rng.choice(EVIDENCE[value]).format(d=seen)
        elif item.kind == "table" and section.id in ("next_steps", "improvement_plan"):
            for row in range(1, rng.randrange(2, 4)):
                due = format_date(today + dt.timedelta(days=rng.randrange(14, 60)))
                cells = {
                    "recommendation": "Strengthen the child's voice in the plan",
                    "action": "Update the plan with the child's views and review at "
                    "the next core group",
                    "responsible_role": "Social worker",
                    "identified_by": "Auditor",
                    "responsible_person": case.facts.get("worker", "Worker"),
                    "by_whom": case.facts.get("worker", "Worker"),
                    "date_required": due,
                    "by_when": due,
                }
                for column in item.columns:
                    if column.id in cells:
                        answers[item.cell_key(row, column)] = cells[column.id]
    for section in form.sections:
        for item in section.items:
            if item.kind == "choice" and item.id == "met":
                tally = [answers.get(q.key) for q in section.questions]
                no_share = tally.count("No") / max(1, len(tally))
                answers[item.key] = (
                    "Met" if no_share < 0.2 else "Partially met" if no_share < 0.5 else "Not met"
                )
            elif (
                item.kind == "choice"
                and item.id in ("grade", "judgement")
                and section.id != "moderation"
            ):
                answers[item.key] = grade
            elif item.kind == "text" and section.id in (
                "conclusion",
                "overall",
                "assessment",
                "family_finding",
                "placement",
            ):
                answers[item.key] = (
                    f"{quality.title()} practice overall: the file shows "
                    f"{'consistent' if quality == 'strong' else 'uneven'} "
                    "recording of the child's lived experience."
                )
    answers.update(
        {
            "completion.status": "Final",
            "completion.completed_by": case.facts.get("auditor", ""),
            "completion.completed_on": format_date(today),
        }
    )
    return {k: v for k, v in answers.items() if k in {f.key for f in form.fields()}}


def _returns(produced: list[GeneratedForm], rng: random.Random, today: dt.date,
             returns_dir: Path) -> list[Path]:
    """Each auditor returns one of the two formats, filled in."""
    written = []
    for item in produced:
        if item.format != ("docx" if int(item.case.case_number[-1]) % 2 else "xlsx"):
            continue
        form = get_form(item.case.form_id)
        dates = frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)
        answers = synthetic_answers(form, item.case, rng, today)
        data = item.path.read_bytes()
        filled = (fill_docx(data, answers) if item.format == "docx"
                  else fill_xlsx(data, answers, dates))
        path = returns_dir / item.path.name
        path.write_bytes(filled)
        written.append(path)
    return written


def _break_some(returns: list[Path]) -> list[str]:
    """Spoil three returns the ways real ones go wrong, so the demo shows rejections."""
    notes = []
    docx = next(p for p in returns if p.suffix == ".docx")
    question = read_path(docx).form.questions()[0].key
    docx.write_bytes(strip_controls(fill_docx(docx.read_bytes(), {question: "Maybe"})))
    notes.append(f"{docx.name}: controls stripped (as by Google Docs), 'Maybe' typed")
    xlsx = next(p for p in returns if p.suffix == ".xlsx")
    xlsx.write_bytes(fill_xlsx(xlsx.read_bytes(), {"header.case_number": "EDITED-1"}))
    notes.append(f"{xlsx.name}: a pre-filled fact edited")
    truncated = returns[-1]
    truncated.write_bytes(truncated.read_bytes()[:2000])
    notes.append(f"{truncated.name}: truncated in transit")
    return notes


def run_demo(out_dir: Path, seed: int = 2026, today: dt.date | None = None,
             db_url: str | None = None) -> dict[str, Any]:
    """Population -> allocation -> forms -> emails -> filled returns (a few broken) ->
    import -> moderation -> packs, all synthetic. Returns where everything went."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    due = last_calendar_day(today.year, today.month)
    month = f"{due:%Y-%m}"
    if db_url is None:
        for stale in out_dir.glob("formtool.db*"):
            stale.unlink()  # the demo starts from an empty database each time
        db_url = f"sqlite:///{out_dir / 'formtool.db'}"
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = open_store(db_url)
    for folder in ("forms", "returns", "mail", "packs"):
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    inputs = out_dir / "inputs"
    write_case_list(inputs / "population.csv", synthetic_population(due, rng))
    write_case_list(inputs / "auditors.csv", synthetic_auditors(month))
    (inputs / "plan.yaml").write_text(yaml.safe_dump(DEMO_PLAN, sort_keys=False))
    allocation = run_allocation(engine, inputs / "population.csv", inputs / "auditors.csv",
                                month, inputs / "plan.yaml", seed, out_dir / "allocation.csv")
    produced = generate(None, out_dir / "allocation.csv", out_dir / "forms", "both",
                        engine=engine)
    messages = build_messages(engine, "qa-team@example.invalid", out_dir / "forms", month,
                              today=today)
    emails = write_eml(messages, out_dir / "mail", "audits")
    record_sent(engine, messages, chase=False)
    returns_dir = out_dir / "returns"
    returns_dir.mkdir(parents=True)
    returned = _returns(produced, rng, today, returns_dir)
    report: dict[str, Any] = {
        "out": str(out_dir), "db": masked(db_url), "inputs": str(inputs),
        "allocation": str(out_dir / "allocation.csv"), "allocated": len(allocation.rows),
        "unallocated": allocation.unallocated, "on_break": allocation.on_break,
        "forms_dir": str(out_dir / "forms"), "files": len(produced),
        "forms": dict(Counter(r["form"] for r in allocation.rows)),
        "mail_dir": str(out_dir / "mail"), "emails": len(emails),
        "returns_dir": str(returns_dir), "broken": _break_some(returned)}
    outcomes = import_paths(engine, [returns_dir], today)
    report["imported"] = {s: sum(o.status == s for o in outcomes)
                          for s in ("imported", "updated", "unchanged", "rejected")}
    report["in_progress"] = [o.audit_id for o in outcomes if any(
        i.code.label == "draft-return" for i in o.issues) and o.status != "rejected"]
    report["rejected"] = [o.as_dict() for o in outcomes if o.status == "rejected"]
    report["status"] = status(engine, today=today).as_dict()
    report["moderated"] = _moderate_sample(engine, month, rng)
    file_dir, pmu_dir = out_dir / "packs" / "file", out_dir / "packs" / "pmu"
    report["file_pack"] = [str(p) for p in file_pack(
        engine, month_audits(engine, month), file_dir, ("docx", "pdf"),
        bundle_name=f"file-pack-{month}.pdf") if p.name.startswith("file-pack")]
    report["file_pack_dir"] = str(file_dir)
    report["pmu_pack"] = [str(p) for p in pmu_pack(engine, pmu_dir, month=month, as_of=today)]
    return report


def _moderate_sample(engine, month: str, rng: random.Random) -> list[dict]:
    """A head of service moderates the 10% sample: agrees mostly, re-grades one."""
    results = []
    for i, row in enumerate(moderation_sample(engine, month, 0.10, seed=1)):
        scale = get_form(row.audit_id and _form_of(engine, row.audit_id)).grade_scale
        grade = row.auditor_grade if i or scale is None else rng.choice(scale.choices[1:4])
        results.append(moderate(engine, row.audit_id, grade, "Head of Service (synthetic)",
                                "monthly moderation sample").as_dict())
    return results


def _form_of(engine, audit_id: str) -> str:
    from formtool import store

    with engine.connect() as conn:
        return str(store.audit_row(conn, audit_id).form_id)
