"""Errors are data: an `Issue` says where, what and how to fix; `FormtoolError` stops a command.

Problems found inside an input (a definition, a case list, a returned form) are collected
as `Issue` objects so a batch can report all of them and go on. Input that cannot be used
at all raises a `FormtoolError` subclass, which only cli.py turns into a click error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class IssueCode(Enum):
    """Message templates. Each names the place, the problem and the fix."""

    # form definitions (formtool forms check)
    yaml_syntax = "[{file}:{line}] is not valid YAML: {value}. Fix the indentation or quoting."
    schema = "[{file}:{line} · {field}] {value}. See templates/forms/README.md for the format."
    duplicate_key = (
        "[{file}:{line} · {field}] key is used twice in this form. Give each answer its own id."
    )
    unknown_scale = (
        "[{file}:{line} · {field}] uses scale '{value}', which is not defined. "
        "Use one of the scales listed by `formtool forms scales` or define it under `scales:`."
    )
    # case lists (formtool generate)
    missing_column = (
        "[{file}] the case list lacks column(s) {field}, which form '{value}' needs. "
        "Add them to the header row (see `formtool forms show {value}`)."
    )
    missing_value = (
        "[{file} · row {location} · {field}] is empty but form '{value}' needs it. Fill it in."
    )
    bad_date = (
        "[{file} · row {location} · {field}] '{value}' is not a date. Use YYYY-MM-DD or DD/MM/YYYY."
    )
    duplicate_case = (
        "[{file} · row {location} · {field}] case '{value}' appears twice for the same form "
        "and month. Remove the duplicate row."
    )

    # returned forms (formtool import): these reject the file
    unreadable = "[{file}] {value}"
    not_in_database = (
        "[{file}] audit {value} is not in the database. Import into the database the form was "
        "generated with (--db), or generate it first."
    )
    wrong_form = (
        "[{file}] is form '{value}' but audit {field} was generated as form '{fix}'. "
        "Send the auditor the right form."
    )
    facts_altered = (
        "[{file} · {field}] pre-filled fact was changed from '{fix}' to '{value}'. Pre-filled "
        "facts cannot be edited; ask the auditor to use the form as sent."
    )
    checksum_mismatch = (
        "[{file}] the form's checksum {value} does not match audit {field} ({fix}): it was made "
        "for another version of this audit. Send the auditor the current form."
    )
    bad_choice = "[{file} · {field}] expects one of {fix}, got '{value}'. Pick from the list."
    bad_answer_date = "[{file} · {field}] '{value}' is not a date. Use DD/MM/YYYY."
    missing_answer = (
        "[{file} · {field}] is empty but the return is marked Final. Answer it, or set the "
        "status to Draft."
    )
    # returned forms: warnings, the file is still accepted
    draft_return = (
        "[{file} · completion.status] the return is not marked Final, so empty answers were "
        "not checked. Set the status to Final when the audit is complete."
    )
    incomplete_action = (
        "[{file} · {field}] action row has no {value}. Every action needs an action, a "
        "responsible person and a date."
    )
    past_action_date = "[{file} · {field}] action date {value} has already passed. Check the date."
    grade_inconsistent = "[{file} · {field}] graded '{value}' but {fix}. Check the grade."
    met_inconsistent = "[{file} · {field}] marked '{value}' but {fix}. Check the judgement."

    @property
    def is_warning(self) -> bool:
        return self in WARNINGS

    def format(self, **fields: object) -> str:
        return self.value.format(**{k: ("" if v is None else v) for k, v in fields.items()})


WARNINGS = frozenset(
    {
        IssueCode.draft_return,
        IssueCode.incomplete_action,
        IssueCode.past_action_date,
        IssueCode.grade_inconsistent,
        IssueCode.met_inconsistent,
    }
)


@dataclass(frozen=True)
class Issue:
    """One problem in one place of one input file."""

    code: IssueCode
    file: str
    field: str = ""
    location: str = ""
    value: str = ""
    fix: str = ""

    @property
    def message(self) -> str:
        return self.code.format(
            file=self.file,
            field=self.field,
            location=self.location,
            line=self.location,
            value=self.value,
            fix=self.fix,
        )

    def as_tuple(self) -> tuple[str, str]:
        return (self.field, self.code.name.replace("_", "-"))

    @property
    def is_warning(self) -> bool:
        return self.code.is_warning

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code.name.replace("_", "-"),
            "severity": "warning" if self.is_warning else "error",
            "file": self.file,
            "field": self.field,
            "location": self.location,
            "value": self.value,
            "message": self.message,
        }


class FormtoolError(Exception):
    """Input formtool cannot use at all. The message is one line: file, field, problem, fix."""


class DefinitionError(FormtoolError):
    """A form definition is missing or does not validate."""

    def __init__(self, issues: list[Issue] | str):
        self.issues = [] if isinstance(issues, str) else list(issues)
        text = issues if isinstance(issues, str) else "\n".join(i.message for i in issues)
        super().__init__(text)


class CaseListError(FormtoolError):
    """A case list (CSV/XLSX) cannot be used to generate forms."""

    def __init__(self, issues: list[Issue] | str):
        self.issues = [] if isinstance(issues, str) else list(issues)
        text = issues if isinstance(issues, str) else "\n".join(i.message for i in issues)
        super().__init__(text)
