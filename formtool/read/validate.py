"""Check a read return against its definition: allowed values, dates, required-when-final,
unaltered facts; then consistency warnings a QA officer would raise by eye.

Produces a `ReadResult(record, issues)`. Issues are collected, never raised; any issue that
is not a warning means the return is rejected and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from formtool.cases import facts_checksum
from formtool.definitions import Field, FormDefinition, Item
from formtool.errors import Issue, IssueCode
from formtool.read import RawReturn
from formtool.scales import FieldKind, format_date, parse_date

GOOD_GRADES = ("Outstanding", "Good")
ACTION_NEEDS = (
    ("action", "an action"),
    ("responsible_person", "responsible person"),
    ("by_whom", "responsible person"),
    ("date_required", "date"),
    ("by_when", "date"),
)


@dataclass(frozen=True)
class ActionRow:
    table_key: str
    row: int
    values: dict[str, str]  # column id -> value (dates ISO)


@dataclass(frozen=True)
class AuditReturn:
    """A validated return: canonical values by key, ready to store."""

    audit_id: str
    form_id: str
    form_version: int
    checksum: str
    method: str
    final: bool
    facts: dict[str, str]
    answers: dict[str, tuple[str, str]]  # key -> (value, comment/evidence)
    actions: tuple[ActionRow, ...] = ()

    @property
    def grade(self) -> str:
        return self.answers.get("overall.grade", ("", ""))[0]

    @property
    def moderated_grade(self) -> str:
        return self.answers.get("moderation.grade", ("", ""))[0]


@dataclass
class ReadResult:
    record: AuditReturn | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.record is not None and not any(not i.is_warning for i in self.issues)


def _normalise(f: Field, raw: str, file: str, issues: list[Issue]) -> str:
    if not raw:
        return ""
    if f.kind is FieldKind.choice and f.scale is not None:
        choice = f.scale.parse(raw)
        if choice is None:
            issues.append(
                Issue(IssueCode.bad_choice, file, f.key, value=raw, fix="/".join(f.scale.choices))
            )
            return raw
        return choice
    if f.kind is FieldKind.date:
        parsed = parse_date(raw)
        if parsed is None:
            issues.append(Issue(IssueCode.bad_answer_date, file, f.key, value=raw))
            return raw
        return parsed.isoformat()
    return raw


def check_return(
    raw: RawReturn,
    file: str,
    expected_facts: Mapping[str, str] | None = None,
    today: dt.date | None = None,
) -> ReadResult:
    """Validate one read return. `expected_facts` are the facts stored when it was generated."""
    form, identity = raw.form, raw.identity
    issues: list[Issue] = _fact_issues(raw, file, expected_facts)
    fields = form.fields() + _added_row_fields(form, raw.values)
    values = {f.key: _normalise(f, raw.values.get(f.key, ""), file, issues) for f in fields}
    final = values.get("completion.status") == "Final"
    answers: dict[str, tuple[str, str]] = {}
    actions: list[ActionRow] = []
    for _, item in form.items():
        if item.kind == "table":
            actions += _action_rows(item, values)
            continue
        comment = values.get(item.evidence_key, "") if item.evidence else ""
        answers[item.key] = (values[item.key], comment)
        if final and item.required and not values[item.key]:
            issues.append(Issue(IssueCode.missing_answer, file, item.key))
    if not final:
        issues.append(Issue(IssueCode.draft_return, file))
    issues += _action_issues(actions, file, today or dt.date.today())
    issues += _consistency_issues(form, answers, file)
    facts = {h.column: raw.values.get(h.key, "") for h in form.header}
    record = AuditReturn(
        identity.audit_id,
        form.id,
        form.version,
        identity.checksum,
        raw.method,
        final,
        facts,
        answers,
        tuple(actions),
    )
    return ReadResult(record, issues)


def _fact_issues(raw: RawReturn, file: str, expected: Mapping[str, str] | None) -> list[Issue]:
    form, identity = raw.form, raw.identity
    read = {h.column: raw.values.get(h.key, "") for h in form.header}
    if expected is not None:
        changed = [
            Issue(
                IssueCode.facts_altered, file, f"header.{c}", value=read[c], fix=expected.get(c, "")
            )
            for c in read
            if read[c] != expected.get(c, "")
        ]
        if changed:
            return changed
    if facts_checksum(identity.audit_id, form.id, form.version, read) != identity.checksum:
        return [
            Issue(
                IssueCode.checksum_mismatch,
                file,
                identity.audit_id,
                value=identity.checksum,
                fix="facts differ",
            )
        ]
    return []


def _row_count(item: Item, values: Mapping[str, str]) -> int:
    """The form's rows, or more if the auditor added rows to the table."""
    prefix = item.key + "."
    numbers = [int(k[len(prefix):].split(".", 1)[0]) for k in values
               if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()]
    return max([item.rows, *numbers])


def _added_row_fields(form: FormDefinition, raw: Mapping[str, str]) -> list[Field]:
    """Fields for action rows beyond the form's own, so they are checked like the rest."""
    return [Field(item.cell_key(r, c), c.label, c.kind)
            for _, item in form.items() if item.kind == "table"
            for r in range(item.rows + 1, _row_count(item, raw) + 1) for c in item.columns]


def _action_rows(item: Item, values: Mapping[str, str]) -> list[ActionRow]:
    rows = []
    for r in range(1, _row_count(item, values) + 1):
        row = {c.id: values.get(item.cell_key(r, c), "") for c in item.columns}
        if any(row.values()):
            rows.append(ActionRow(item.key, r, row))
    return rows


def _action_issues(rows: list[ActionRow], file: str, today: dt.date) -> list[Issue]:
    issues = []
    for row in rows:
        where = f"{row.table_key}.{row.row}"
        missing = [
            label
            for column, label in ACTION_NEEDS
            if column in row.values and not row.values[column]
        ]
        if missing:
            issues.append(
                Issue(
                    IssueCode.incomplete_action,
                    file,
                    where,
                    value=" or ".join(dict.fromkeys(missing)),
                )
            )
        due = row.values.get("date_required") or row.values.get("by_when") or ""
        signed = row.values.get("sign_off_date") or row.values.get("manager_sign_off")
        parsed = parse_date(due) if due else None
        if parsed and parsed < today and not signed:
            issues.append(
                Issue(IssueCode.past_action_date, file, where, value=format_date(parsed))
            )
    return issues


def _tally(answers: Mapping[str, tuple[str, str]], keys: list[str]) -> Counter:
    return Counter(
        answers[k][0] for k in keys if answers.get(k, ("", ""))[0] in ("Yes", "No", "Partially")
    )


def _consistency_issues(
    form: FormDefinition, answers: Mapping[str, tuple[str, str]], file: str
) -> list[Issue]:
    issues = []
    everything = _tally(answers, [q.key for q in form.questions()])
    answered = sum(everything.values())
    grade = answers.get("overall.grade", ("", ""))[0]
    if answered and grade in GOOD_GRADES and everything["No"] * 2 > answered:
        issues.append(
            Issue(
                IssueCode.grade_inconsistent,
                file,
                "overall.grade",
                value=grade,
                fix=f"{everything['No']} of {answered} answers are No",
            )
        )
    if answered and grade == "Inadequate" and everything["Yes"] * 5 >= answered * 4:
        issues.append(
            Issue(
                IssueCode.grade_inconsistent,
                file,
                "overall.grade",
                value=grade,
                fix=f"{everything['Yes']} of {answered} answers are Yes",
            )
        )
    for section in form.sections:
        met_key = f"{section.id}.met"
        if met_key not in answers:
            continue
        tally = _tally(answers, [q.key for q in section.questions])
        total, met = sum(tally.values()), answers[met_key][0]
        if total and met == "Met" and tally["No"] * 2 > total:
            issues.append(
                Issue(
                    IssueCode.met_inconsistent,
                    file,
                    met_key,
                    value=met,
                    fix=f"{tally['No']} of {total} answers are No",
                )
            )
        if total and met == "Not met" and tally["Yes"] == total:
            issues.append(
                Issue(
                    IssueCode.met_inconsistent,
                    file,
                    met_key,
                    value=met,
                    fix=f"all {total} answers are Yes",
                )
            )
    return issues
