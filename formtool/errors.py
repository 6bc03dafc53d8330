"""Errors are data: an `Issue` says where, what and how to fix; `FormtoolError` stops a command.

Problems found inside an input (a definition, a case list, a returned form) are collected as
`Issue` objects so a batch can report all of them and go on. Input that cannot be used at all
raises a `FormtoolError` subclass, which only the command line (or a web view) turns into a
message. Every message is one line: text from files is shown with control characters escaped.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

MAX_SHOWN = 120  # characters of a value quoted in a message


class IssueCode(Enum):
    """Message templates. Each names the place, the problem and the fix.

    Fields: {file}, {field} (a stable key or column), {location} (row or line), {value}
    (what was found), {expected} (what was wanted), {audit} (the audit id).
    """

    # form definitions (formtool forms check)
    yaml_syntax = "[{file}:{location}] is not valid YAML: {value}. Fix the indentation or quoting."
    schema = "[{file}:{location} · {field}] {value}. See templates/forms/README.md for the format."
    duplicate_key = (
        "[{file}:{location} · {field}] key is used twice in this form. Give each answer its own id."
    )
    unknown_scale = (
        "[{file}:{location} · {field}] uses scale '{value}', which is not defined. Use one of "
        "{expected} or define it under `scales:`."
    )
    bad_reference = (
        "[{file}:{location} · {field}] names '{value}', which this form does not have. Use one "
        "of {expected}."
    )
    version_not_bumped = (
        "[{file}:{location} · version] {value} differs from the version {expected} that already "
        "generated forms. Raise `version:` so returns of the old forms stay readable."
    )
    id_clash = (
        "[{file}:{location} · id] '{value}' is already a form ({expected}). Give this tool an id "
        "of its own."
    )
    # programme policies (formtool programme check): {value} what is wrong, {expected} the fix
    bad_programme = "[{file} · line {location} · {field}] {value}. {expected}"
    # case lists (formtool generate)
    missing_column = (
        "[{file}] the case list lacks column(s) {field}, which form '{value}' needs. Add them to "
        "the header row (see `formtool forms show {value}`)."
    )
    missing_value = (
        "[{file} · row {location} · {field}] is empty but form '{value}' needs it. Fill it in."
    )
    bad_date = (
        "[{file} · row {location} · {field}] '{value}' is not a date. Use YYYY-MM-DD or DD/MM/YYYY."
    )
    duplicate_case = (
        "[{file} · row {location} · {field}] case '{value}' appears twice for the same form and "
        "month. Remove the duplicate row."
    )
    bad_email = (
        "[{file} · row {location} · {field}] '{value}' is not an email address. Fix it so the "
        "form can be sent."
    )
    bad_audit_id = "[{file} · row {location} · {field}] '{value}' is not an audit id: {expected}."

    # returned files (formtool import): these reject the file
    not_found = "[{file}] does not exist. Check the path."
    not_a_file = (
        "[{file}] is not a regular file ({value}). Name the saved form itself, or a folder of "
        "forms."
    )
    too_large = (
        "[{file}] is {value}; a return is at most {expected}. Ask the auditor to remove pasted "
        "images and save it again."
    )
    unsupported_type = (
        "[{file}] is not a form ({value}); formtool reads .docx and .xlsx forms and the .eml/.msg "
        "emails that carry them. Ask for the form as .docx or .xlsx."
    )
    not_a_zip = (
        "[{file}] is not a {expected} file (not a zip: truncated, damaged or renamed). Ask the "
        "auditor to send the file again."
    )
    damaged = "[{file}] is damaged ({value}). Ask the auditor to save the form again and resend it."
    encrypted = (
        "[{file}] is {value}, so it cannot be read. Ask the auditor to remove the password "
        "(File > Info > Protect Document or Protect Workbook > Encrypt with Password: delete it) "
        "and save it as {expected}."
    )
    macros = (
        "[{file}] contains macros ({value}). Ask the auditor to save it as a plain {expected} "
        "(no macros) and send it again."
    )
    zip_bomb = "[{file}] expands to far more data than a form holds ({value}); it was not opened."
    entities = (
        "[{file} · {field}] declares a DTD or XML entities, which Office never writes; it was "
        "not read. Ask for the form again."
    )
    bad_xml = (
        "[{file} · {field}] is not well-formed XML ({value}). Ask the auditor to save the form "
        "again and resend it."
    )
    no_document = (
        "[{file}] has no {expected} inside. Is it a form saved by Word, Excel, LibreOffice or "
        "Google Docs?"
    )
    too_much_text = (
        "[{file}] holds more text than a form can ({value}; at most {expected}). Ask the auditor "
        "to shorten it."
    )
    field_too_long = (
        "[{file} · {field}] holds {value}; an answer may hold at most {expected}. Ask the "
        "auditor to shorten it."
    )
    no_identity = (
        "[{file}] carries no formtool audit identity (no properties and no 'Audit ID:' line). "
        "Was it made by `formtool generate`?"
    )
    unknown_form = (
        "[{file}] is form '{value}', which this formtool does not know. Add its definition to "
        "the forms folder (FORMTOOL_FORMS) or check templates/forms."
    )
    unknown_version = (
        "[{file}] is form '{value}' version {expected}, which was never generated from this "
        "database. Import it into the database that generated it (--db)."
    )
    version_not_held = (
        "[{file} · {field}] {value} made with form '{field}' version {expected}, which this "
        "database does not hold: they cannot be read, packed or counted. Put that definition, "
        "with `version: {expected}`, in the team's forms folder (FORMTOOL_FORMS)."
    )
    bad_message = (
        "[{file}] cannot be read as an email ({value}). Save the email again from the mail "
        "program (Outlook: drag it to a folder) and import that."
    )
    no_attachment = (
        "[{file}] has no .docx or .xlsx attachment, so there is no return in it. Ask the auditor "
        "to reply with the completed form attached."
    )
    state_changed = "[{file}] audit {audit} {value}. Import the file again."
    read_failed = (
        "[{file}] could not be read ({value}). This is a bug in formtool: report it with the "
        "file if you can; the rest of the batch went on."
    )
    not_in_database = (
        "[{file}] audit {audit} is not in the database. Import into the database the form was "
        "generated with (--db), or generate it first."
    )
    wrong_form = (
        "[{file}] is form '{value}' but audit {audit} was generated as form '{expected}'. Send "
        "the auditor the right form."
    )
    facts_altered = (
        "[{file} · {field}] pre-filled fact was changed from '{expected}' to '{value}'. "
        "Pre-filled facts cannot be edited; ask the auditor to use the form as sent."
    )
    checksum_mismatch = (
        "[{file}] the form's checksum {value} does not match audit {audit} ({expected}): it was "
        "made for another version of this audit. Send the auditor the current form."
    )
    # what a file really is, when it is not the form it is named as (read/sniff.py)
    other_format = (
        "[{file}] is {value}, which formtool cannot read as a form. Ask the auditor to send the "
        "completed form they were sent, saved as {expected}."
    )
    picture = (
        "[{file}] is {value}: a photo or scan of a form cannot be read. Ask the auditor for the "
        "completed form file itself, saved as {expected}."
    )
    label_protected = (
        "[{file}] is encrypted by {value}, so only the people the label allows can open it and "
        "formtool cannot. Ask the auditor to remove the protection (Home > Sensitivity: a label "
        "without encryption; or File > Info > Protect Document > Restrict Access > Unrestricted "
        "Access), save it as {expected} and send it again."
    )
    strict_ooxml = (
        "[{file}] was saved as Strict Open XML, which formtool does not read. Ask the auditor to "
        "use File > Save As, choose {expected} (not Strict Open XML) and send it again."
    )
    copied_sheet = (
        "[{file}] the audit sheet was copied into a new workbook, which loses the form's answer "
        "cells. Ask the auditor to fill in and send the original file."
    )
    outside_package = (
        "[{file} · {field}] points outside the file ({value}); Office forms never do. It was not "
        "read: ask the auditor to save the form again and resend it."
    )
    ambiguous = (
        "[{file} · {field}] has two candidates for one answer ({value}), so what the auditor saw "
        "cannot be told. Ask the auditor to save the form again from Word or Excel and resend it."
    )
    hidden_answers = (
        "[{file} · {field}] the answers are on a sheet hidden from the auditor ({value}). Ask the "
        "auditor to fill in and send the original file."
    )
    returned_blank = (
        "[{file}] audit {audit} came back blank: no question is answered. Nothing was stored and "
        "the audit stays as it was; ask the auditor to complete the form and send it again."
    )
    refused_before = (
        "[{file}] is the same file an officer refused for audit {audit} ({value}). Ask the "
        "auditor to send the completed form themselves, or correct it and send it again."
    )
    bad_choice = "[{file} · {field}] expects one of {expected}, got '{value}'. Pick from the list."
    bad_answer_date = "[{file} · {field}] '{value}' is not a date. Use DD/MM/YYYY."
    missing_answer = (
        "[{file} · {field}] is empty but the return is marked Final. Answer it, or set the "
        "status to Draft."
    )
    # returned files: warnings, the file is still accepted (or, for not-a-form, skipped)
    not_a_form = (
        "[{file}] is not a form ({value}); skipped. Only .docx and .xlsx attachments are returns."
    )
    draft_return = (
        "[{file} · {field}] the return is not marked Final: it is kept as work in progress, "
        "not complete and not graded. Set the status to Final when the audit is complete."
    )
    older_return = (
        "[{file}] was {value}, before the current return ({expected}); it is kept as history "
        "and the current return stays. Import a newer copy if this one is right."
    )
    evidence_changed = (
        "[{file} · {field}] the evidence differs from what the worker and supervisor listed. "
        "Check that the auditor meant to change it."
    )
    incomplete_action = (
        "[{file} · {field}] action row lacks {value}. Every action needs {expected}."
    )
    past_action_date = "[{file} · {field}] action date {value} has already passed. Check the date."
    grade_inconsistent = "[{file} · {field}] graded '{value}' but {expected}. Check the grade."
    met_inconsistent = "[{file} · {field}] marked '{value}' but {expected}. Check the judgement."
    typed_outside = (
        "[{file} · {field}] '{value}' was typed outside the answer box; it is read as part of "
        "the answer. Check that the answer is what the auditor meant."
    )
    tracked_changes = (
        "[{file}] has tracked changes not yet accepted ({value}); they were read as if accepted. "
        "Check the answers, or ask the auditor to accept or reject them and resend."
    )
    date_doubt = (
        "[{file} · {field}] date {value} is {expected}. Check the date with the auditor: day and "
        "month may have been swapped by the computer's date settings."
    )
    after_close = (
        "[{file}] audit {audit} is already {value}: this return is kept as history and the "
        "audit's answers and grade stay. If it should count, reopen the audit (formtool "
        "reopen {audit} --reason ...): the newest return kept since then becomes current."
    )
    held_sender = (
        "[{file}] came from {value}, not from the auditor of audit {audit} ({expected}): it is "
        "held for an officer to accept or refuse (formtool held)."
    )
    concern_without_details = (
        "[{file} · {field}] says Yes, there is an immediate concern, but does not say {value}. "
        "The concern is raised all the same: ask the auditor now, and record the action taken."
    )
    reassigned = (
        "[{file}] is the copy of audit {audit} that went to {value} before the audit was "
        "reassigned to {expected}: it is held for an officer to accept or refuse (formtool "
        "held); the new copy is with {expected}."
    )
    concern_raised = (
        "[{file}] says there is an immediate concern for the child's safety or welfare in audit "
        "{audit}: concern {value} is raised, to be emailed at once to the programme's contacts for "
        "its team. Make sure they know now; record the action taken (formtool concerns)."
    )
    unprintable = (
        "[{file} · {field}] has characters no available font can print ({value}); they show as "
        "boxes in the PDF. Install a font that covers them (e.g. fonts-noto-cjk)."
    )

    @property
    def label(self) -> str:
        """The code as people see it: `bad-choice`."""
        return self.name.replace("_", "-")

    @property
    def is_warning(self) -> bool:
        return self in WARNINGS

    @classmethod
    def from_label(cls, label: str) -> IssueCode:
        return cls[label.replace("-", "_")]


WARNINGS = frozenset(
    {
        IssueCode.not_a_form,
        IssueCode.draft_return,
        IssueCode.older_return,
        IssueCode.evidence_changed,
        IssueCode.incomplete_action,
        IssueCode.past_action_date,
        IssueCode.grade_inconsistent,
        IssueCode.met_inconsistent,
        IssueCode.unprintable,
        IssueCode.typed_outside,
        IssueCode.tracked_changes,
        IssueCode.date_doubt,
        IssueCode.after_close,
        IssueCode.held_sender,
        IssueCode.concern_without_details,
        IssueCode.concern_raised,
        IssueCode.reassigned,
    }
)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object, limit: int | None = None) -> str:
    """Text as it may be shown on one line of a terminal or page: control characters
    (and bidirectional overrides) escaped, so a file name cannot forge lines or colours."""
    shown = _CONTROL.sub(
        lambda m: _ESCAPES.get(
            m[0], f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}"
        ),
        str(text),
    )
    if limit and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


@dataclass(frozen=True)
class Issue:
    """One problem in one place of one input file. Each field means one thing."""

    code: IssueCode
    file: str
    field: str = ""
    location: str = ""
    value: str = ""
    expected: str = ""
    audit_id: str = ""

    @property
    def message(self) -> str:
        return self.code.value.format(
            file=printable(self.file),
            field=printable(self.field),
            location=printable(self.location),
            value=printable(self.value, MAX_SHOWN),
            expected=printable(self.expected, MAX_SHOWN),
            audit=printable(self.audit_id),
        )

    @property
    def is_warning(self) -> bool:
        return self.code.is_warning

    def as_tuple(self) -> tuple[str, str]:
        return (self.field, self.code.label)

    def as_data(self) -> dict[str, str]:
        """What is stored with a return: everything but the file (the return knows it)."""
        data = asdict(self)
        data.pop("file")
        data["code"] = self.code.label
        return {k: v for k, v in data.items() if v}

    @classmethod
    def from_data(cls, data: dict[str, Any], file: str) -> Issue:
        fields = {
            k: str(v)
            for k, v in data.items()
            if k in ("field", "location", "value", "expected", "audit_id")
        }
        return cls(IssueCode.from_label(data["code"]), file, **fields)

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code.label,
            "severity": "warning" if self.is_warning else "error",
            "file": self.file,
            "field": self.field,
            "location": self.location,
            "value": self.value,
            "expected": self.expected,
            "audit_id": self.audit_id,
            "message": self.message,
        }


class FormtoolError(Exception):
    """Input formtool cannot use at all. The message is one line: file, field, problem, fix."""


class IssuesError(FormtoolError):
    """Input with problems listed as issues (one line each)."""

    def __init__(self, issues: list[Issue] | str):
        self.issues = [] if isinstance(issues, str) else list(issues)
        text = issues if isinstance(issues, str) else "\n".join(i.message for i in issues)
        super().__init__(text)


class DefinitionError(IssuesError):
    """A form definition is missing or does not validate."""


class CaseListError(IssuesError):
    """A case list (CSV/XLSX) cannot be used to generate forms."""


class Rejected(FormtoolError):
    """A returned file cannot be read as a form: one issue says why and what to do."""

    def __init__(
        self, code: IssueCode, value: object = "", expected: object = "", field: str = ""
    ) -> None:
        self.code, self.value, self.expected, self.field = code, str(value), str(expected), field
        super().__init__(code.label)

    def issue(self, file: str, audit_id: str = "") -> Issue:
        return Issue(
            self.code, file, self.field, value=self.value, expected=self.expected, audit_id=audit_id
        )


class NotPermittedError(FormtoolError):
    """The signed-in role may not see this (staff data the programme keeps to named roles);
    the message says who may. The web workspace answers 403."""


class AccountError(FormtoolError):
    """An account cannot be added, changed or used: the message says why and what to do."""
