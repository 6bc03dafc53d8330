"""Check a read return against its definition: allowed values, dates, required-when-final,
unaltered facts; then consistency warnings a QA officer would raise by eye, and a warning when
the urgent-concern question says Yes without saying what (read/concern.py).

Produces a `ReadResult(record, issues)`. Issues are collected, never raised; any issue that
is not a warning means the return is rejected and nothing is stored. What counts as final,
as the grade, or as a favourable answer comes from the definition, never from key names.

Two-stage tools (seed 000): a `prepared` return is checked only on the fields of the worker
and supervisor (role `preparer`); the judged return on the auditor's, and a change to the
prepared evidence is flagged.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from formtool import clock
from formtool.definitions import AUDIT, PREPARED, Field, FormDefinition, Item
from formtool.definitions.scales import KINDS, FieldKind, parse_date
from formtool.errors import Issue, IssueCode
from formtool.periods import show_date
from formtool.read import RawReturn
from formtool.read.cases import facts_checksum
from formtool.read.concern import concern_issues

#: Roles every action row needs, and how a message names them.
ACTION_NEEDS = (
    ("action", "an action"),
    ("responsible_person", "a responsible person"),
    ("due_date", "a date"),
)
#: Action dates that cannot be before the audit's form existed: one that is may have been
#: misread by the computer (day and month swapped).
DOUBTED_DATES = ("due_date", "sign_off_date")


@dataclass(frozen=True)
class ActionRow:
    table_key: str
    row: int
    values: dict[str, str]  # column role -> value (dates ISO); several columns may share one

    def as_store_row(self) -> dict[str, object]:
        """The row as the actions table holds it: dates as dates."""
        row: dict[str, object] = {"table_key": self.table_key, "row": self.row}
        for role, value in self.values.items():
            row[role] = (parse_date(value) if value else None) if role.endswith("date") else value
        return row


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
    answers: dict[str, tuple[str, str]]  # key -> (value, evidence)
    actions: tuple[ActionRow, ...] = ()
    grade: str = ""
    moderated_grade: str = ""

    @property
    def blank(self) -> bool:
        """Nothing answered and no action row: the form came back as it was sent."""
        return not self.actions and not any(v or c for v, c in self.answers.values())


@dataclass
class ReadResult:
    record: AuditReturn | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.record is not None and not any(not i.is_warning for i in self.issues)


@cache
def form_fields(form: FormDefinition) -> tuple[Field, ...]:
    """The form's fields, worked out once (a form has hundreds; every return asks)."""
    return tuple(form.fields())


@cache
def two_stage(form: FormDefinition) -> bool:
    """Whether the form is filled in two stages (FormDefinition.two_stage), once per form."""
    return any(f.role for f in form_fields(form))


def _normalise(f: Field, raw: str, file: str, issues: list[Issue]) -> str:
    if not raw:
        return ""
    value = KINDS[f.kind].parse(f.scale, raw)
    if value is not None:
        return value
    if f.kind is FieldKind.choice and f.scale is not None:
        issues.append(
            Issue(IssueCode.bad_choice, file, f.key, value=raw, expected="/".join(f.scale.choices))
        )
    else:
        issues.append(Issue(IssueCode.bad_answer_date, file, f.key, value=raw))
    return raw


def _in_stage(role: str, stage: str) -> bool:
    """Whether a field with this role is filled (and checked) at this stage."""
    return (
        not role
        or role == ("preparer" if stage == PREPARED else "auditor")
        or (stage == AUDIT and role == "preparer")
    )


def validate_return(
    raw: RawReturn,
    file: str,
    expected_facts: Mapping[str, str] | None = None,
    today: dt.date | None = None,
    stage: str = AUDIT,
    prepared: Mapping[str, tuple[str, str]] | None = None,
    checksum_key: bytes | None = None,
    issued: dt.date | None = None,
) -> ReadResult:
    """Validate one read return. `expected_facts` are the facts stored when it was
    generated; `prepared` the stored answers of the prepared stage (two-stage tools);
    `checksum_key` the database's identity key when the audit's forms carry a keyed
    checksum; `issued` the day its form was made (dates before it are doubted)."""
    form, identity = raw.form, raw.identity
    issues: list[Issue] = _fact_issues(raw, file, expected_facts, checksum_key)
    issues += [note.issue(file, identity.audit_id) for note in raw.notes]
    fields = [
        f
        for f in [*form_fields(form), *_added_row_fields(form, raw.values)]
        if _in_stage(f.role, stage)
    ]
    values = {f.key: _normalise(f, raw.values.get(f.key, ""), file, issues) for f in fields}
    judgements = form.judgements
    final = not judgements.status or values.get(judgements.status) == judgements.final
    answers: dict[str, tuple[str, str]] = {}
    actions: list[ActionRow] = []
    for _, item in form.items():
        if item.kind == "table":
            actions += _action_rows(item, values) if _in_stage(item.role, stage) else []
            continue
        if item.key not in values and item.evidence_key not in values:
            continue  # wholly the other stage's
        answers[item.key] = (values.get(item.key, ""), values.get(item.evidence_key, ""))
        if item.comment and item.comment_key in values:
            answers[item.comment_key] = (values[item.comment_key], "")
        if final and item.required and item.key in values and not values[item.key]:
            issues.append(Issue(IssueCode.missing_answer, file, item.key))
    if not final:
        issues.append(Issue(IssueCode.draft_return, file, judgements.status))
    today = today or clock.today()
    # The day the form was made, on the programme's clock (a clock set in the past, as in a
    # rehearsal, must not make every date look early).
    doubts = _date_doubts(actions, file, min(issued, today) if issued else None)
    doubted = {d.field.rsplit(".", 1)[0] for d in doubts if d.field.endswith(".due_date")}
    issues += [
        i
        for i in _action_issues(actions, file, today)
        if not (i.code is IssueCode.past_action_date and i.field in doubted)
    ]
    issues += doubts
    issues += _consistency_issues(form, answers, file)
    issues += concern_issues(form, values, file)  # a Yes warns, never refuses: see concern.py
    if stage == AUDIT and prepared is not None:
        issues += _evidence_changes(form, values, prepared, file)
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
        answers.get(judgements.grade, ("", ""))[0],
        answers.get(judgements.moderated_grade, ("", ""))[0],
    )
    return ReadResult(record, issues)


def _fact_issues(
    raw: RawReturn, file: str, expected: Mapping[str, str] | None, key: bytes | None
) -> list[Issue]:
    form, identity = raw.form, raw.identity
    read = {h.column: raw.values.get(h.key, "") for h in form.header}
    if expected is not None:
        changed = [
            Issue(
                IssueCode.facts_altered,
                file,
                f"header.{c}",
                value=read[c],
                expected=expected.get(c, ""),
            )
            for c in read
            if read[c] != expected.get(c, "")
        ]
        if changed:
            return changed
    if facts_checksum(identity.audit_id, form.id, form.version, read, key) != identity.checksum:
        return [
            Issue(
                IssueCode.checksum_mismatch,
                file,
                value=identity.checksum,
                expected="facts differ",
                audit_id=identity.audit_id,
            )
        ]
    return []


def _row_number(item: Item, key: str) -> int | None:
    rest = key[len(item.key) + 1 :] if key.startswith(item.key + ".") else ""
    number = rest.split(".", 1)[0]
    return int(number) if number.isdigit() else None


def _row_count(item: Item, values: Mapping[str, str]) -> int:
    """The form's rows, or more if the auditor added rows to the table."""
    prefix = item.key + "."
    numbers = [
        n for n in (_row_number(item, k) for k in values if k.startswith(prefix)) if n is not None
    ]
    return max([item.rows, *numbers])


def _added_row_fields(form: FormDefinition, raw: Mapping[str, str]) -> list[Field]:
    """Fields for action rows beyond the form's own, so they are checked like the rest."""
    return [
        item.cell_field(r, c)
        for item in form.tables()
        for r in range(item.rows + 1, _row_count(item, raw) + 1)
        for c in item.columns
    ]


def _action_rows(item: Item, values: Mapping[str, str]) -> list[ActionRow]:
    rows = []
    for r in range(1, _row_count(item, values) + 1):
        row: dict[str, str] = {}
        for c in item.columns:
            value = values.get(item.cell_key(r, c), "")
            row[c.role] = "\n".join(p for p in (row.get(c.role, ""), value) if p)
        if any(row.values()):
            rows.append(ActionRow(item.key, r, row))
    return rows


def _action_issues(rows: list[ActionRow], file: str, today: dt.date) -> list[Issue]:
    issues = []
    needs = ", ".join(label for _, label in ACTION_NEEDS)
    for row in rows:
        where = f"{row.table_key}.{row.row}"
        missing = [
            label for role, label in ACTION_NEEDS if role in row.values and not row.values[role]
        ]
        if missing:
            issues.append(
                Issue(
                    IssueCode.incomplete_action,
                    file,
                    where,
                    value=" or ".join(missing),
                    expected=needs,
                )
            )
        due = parse_date(row.values.get("due_date", "")) if row.values.get("due_date") else None
        signed = row.values.get("sign_off_date") or row.values.get("sign_off")
        if due and due < today and not signed:
            issues.append(Issue(IssueCode.past_action_date, file, where, value=show_date(due)))
    return issues


def _date_doubts(rows: list[ActionRow], file: str, issued: dt.date | None) -> list[Issue]:
    """Action dates outside what the audit makes plausible, with the other reading where
    day and month could have been swapped (a US-locale Excel turns 05/11 into 11 May)."""
    issues = []
    for row in rows:
        for role in DOUBTED_DATES:
            day = parse_date(row.values.get(role, "")) if row.values.get(role) else None
            if day is None:
                continue
            if issued is not None and day < issued:
                why = f"before this audit's form was made ({show_date(issued)})"
                issues.append(
                    Issue(
                        IssueCode.date_doubt,
                        file,
                        f"{row.table_key}.{row.row}.{role}",
                        value=show_date(day),
                        expected=why + _swapped(day),
                    )
                )
    return issues


def _swapped(day: dt.date) -> str:
    """The date with day and month exchanged, when that is a date too."""
    if day.day > 12 or day.day == day.month:
        return ""
    other = dt.date(day.year, day.day, day.month)
    return f"; read the other way round it is {show_date(other)}"


def _tally(items: list[Item], answers: Mapping[str, tuple[str, str]]) -> Counter[str]:
    """How many answers count favourable, partial and unfavourable."""
    return Counter(filter(None, (i.outcome(answers.get(i.key, ("", ""))[0]) for i in items)))


def _inconsistent(outcome: str | None, tally: Counter[str]) -> str:
    """Why a judgement contradicts its answers ("" if it does not)."""
    scored = sum(tally.values())
    if not scored:
        return ""
    if outcome == "favourable" and tally["unfavourable"] * 2 > scored:
        return f"{tally['unfavourable']} of {scored} scored answers are unfavourable"
    if outcome == "unfavourable" and tally["favourable"] * 5 >= scored * 4:
        return f"{tally['favourable']} of {scored} scored answers are favourable"
    return ""


def _consistency_issues(
    form: FormDefinition, answers: Mapping[str, tuple[str, str]], file: str
) -> list[Issue]:
    issues = []
    grade_item = form.item(form.judgements.grade)
    grade = answers.get(form.judgements.grade, ("", ""))[0]
    if grade_item is not None and grade:
        why = _inconsistent(grade_item.outcome(grade), _tally(form.questions(), answers))
        if why:
            issues.append(
                Issue(IssueCode.grade_inconsistent, file, grade_item.key, value=grade, expected=why)
            )
    for section in form.domains():
        item = form.item(section.judgement_key)
        judged = answers.get(section.judgement_key, ("", ""))[0]
        if item is None or not judged:
            continue
        why = _inconsistent(item.outcome(judged), _tally(list(section.questions), answers))
        if why:
            issues.append(
                Issue(IssueCode.met_inconsistent, file, item.key, value=judged, expected=why)
            )
    return issues


def _evidence_changes(
    form: FormDefinition,
    values: Mapping[str, str],
    prepared: Mapping[str, tuple[str, str]],
    file: str,
) -> list[Issue]:
    """Preparer fields the auditor changed (the evidence column of seed 000)."""
    issues = []
    for item in form.questions():
        if item.evidence and item.evidence_role == "preparer":
            before = prepared.get(item.key, ("", ""))[1]
            if values.get(item.evidence_key, "").strip() != before.strip():
                issues.append(Issue(IssueCode.evidence_changed, file, item.evidence_key))
    return issues
