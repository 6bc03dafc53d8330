"""The urgent-concern question a return answers: "Is there an immediate concern for the
child's safety or welfare?" (every shipped tool asks it first; seed 001 Appendix A para 14).

The definition names the question (`judgements.concern`); the texts of its section say what
the concern is and who was told. A form version without the question, or a draft that leaves
it blank, has "not asked" it: never "no". The duty to raise a concern is the auditor's, at
once; formtool is the backstop, so a Yes without its details is a warning, never a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from formtool.definitions import FormDefinition
from formtool.errors import Issue, IssueCode

if TYPE_CHECKING:
    from formtool.store import Store

YES, NO, NOT_ASKED = "yes", "no", "not asked"
#: What a message calls each text beside the question, in the order the section asks them.
TEXT_NAMES = ("what the concern is", "who was told, and when")

#: Values by key: as read (`RawReturn.values`) or as validated (`AuditReturn.answers`).
Values = Mapping[str, str] | Mapping[str, tuple[str, str]]


def _value(values: Values, key: str) -> str:
    found = values.get(key, "")
    return (found[0] if isinstance(found, tuple) else found).strip()


def concern_answer(form: FormDefinition, values: Values) -> str:
    """YES, NO, or NOT_ASKED: the form version lacks the question, or it is blank or not a
    Yes/No answer (a Final return leaving it blank is refused by validation)."""
    item = form.item(form.judgements.concern)
    if item is None or item.scale is None:
        return NOT_ASKED
    answer = item.scale.parse(_value(values, item.key))
    return {"Yes": YES, "No": NO}.get(answer or "", NOT_ASKED)


def concern_text(form: FormDefinition, values: Values) -> tuple[str, str]:
    """(what the concern is, who was told and when), "" where not written or not asked."""
    texts = [_value(values, item.key) for item in form.concern_texts()]
    details, told = [*texts, "", ""][:2]
    return details, told


def concern_issues(form: FormDefinition, values: Values, file: str) -> list[Issue]:
    """A warning when the answer is Yes but a text beside it is empty: the concern is raised
    all the same (the return is never refused for it), and the officer asks the auditor."""
    if concern_answer(form, values) != YES:
        return []
    missing = [
        name
        for name, item in zip(TEXT_NAMES, form.concern_texts(), strict=False)
        if not _value(values, item.key)
    ]
    if not missing:
        return []
    return [
        Issue(
            IssueCode.concern_without_details,
            file,
            form.judgements.concern,
            value=" or ".join(missing),
        )
    ]


def raise_answered_concern(
    db: Store, audit_id: str, form: FormDefinition, values: Values, user: str = ""
) -> int | None:
    """Raise the concern a Yes answers, now, without storing the answers: a rejected return
    (the child's safety does not wait for a typo to be fixed) or the web form's "tell the QA
    team now". Raised as a return raises it, so the same answer submitted later is the same
    concern, not two. Its id; None when the answer is not Yes or that concern is open already."""
    if concern_answer(form, values) != YES:
        return None
    details, told = concern_text(form, values)
    raised = db.raise_concern(audit_id, "return", details, told, None, user)
    return raised.id if raised is not None else None
