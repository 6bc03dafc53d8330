"""Answers given in the browser in: the web form (web/webform.py) is a third way to return the
same audit tool, read back through the same validation and the same store as a Word or Excel
file (batch.py), so a web return is a return like any other: its answers, actions, grade,
events and concerns.

What differs is only where the values come from. The facts are the audit's own (the page
shows them read-only, so they cannot be altered), the status is what the button said ("Submit
as final"), and the return's original bytes are its canonical JSON: the values as submitted,
with the audit, form version, stage, who submitted it and when, sorted and hashed like a
returned file. The PDF the auditor downloads is made from the stored return by the web layer
(packs sit above this one) and kept beside it (`Store.set_return_receipt`).

One channel per audit and stage: when a Word or Excel return for the stage is already final
and current, the web return is stored held for an officer, and the other way round
(store/returns.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from formtool import clock, store
from formtool.definitions import AUDIT, PREPARED, FormDefinition
from formtool.definitions.identity import Identity
from formtool.errors import Issue, IssueCode
from formtool.read import RawReturn
from formtool.read.batch import return_record
from formtool.read.concern import YES, concern_answer, concern_text, raise_answered_concern
from formtool.read.validate import ReadResult, two_stage, validate_return
from formtool.store import WEB_METHOD, Store

#: The link stages (programme/weblinks.py) and the return stages they fill.
RETURN_STAGES = {"prepare": PREPARED, "audit": AUDIT}


@dataclass
class WebSubmission:
    """What "Submit as final" did: `status` is rejected (nothing stored: `issues` say why,
    by field), or the store's imported / updated / held / unchanged."""

    status: str
    issues: list[Issue] = field(default_factory=list)
    return_id: int | None = None
    held: str = ""
    concern_id: int | None = None

    @property
    def stored(self) -> bool:
        return self.status in ("imported", "updated", "held", "history")


@dataclass(frozen=True)
class WebAudit:
    """What the form page of one audit and stage needs from the store."""

    audit: Any  # the store's audit row
    form: FormDefinition
    stage: str  # the return stage now: PREPARED or AUDIT
    facts: dict[str, str]
    prepared: Mapping[str, tuple[str, str]] | None


def web_audit(db: Store, audit_id: str) -> WebAudit:
    """The audit behind a link: its row, definition, facts and (two-stage) prepared answers.
    A FormtoolError when the audit (or its form version) is not in this database."""
    audit = db.audit_row(audit_id)
    if audit is None:
        raise store.unknown_audit(audit_id)
    form = db.form_for(audit.form_id, audit.form_version)
    if form is None:
        raise store.unknown_audit(audit_id)
    _, stage, prepared = db.return_context(audit_id, two_stage(form))
    return WebAudit(audit, form, stage, store.audit_facts(audit), prepared)


def file_name(audit_id: str, stage: str) -> str:
    """How a web return is named wherever a returned file's name is shown."""
    return f"{audit_id} web form{' (prepared)' if stage == PREPARED else ''}.json"


def form_values(
    form: FormDefinition, facts: Mapping[str, str], answers: Mapping[str, str], final: bool
) -> dict[str, str]:
    """The values a reader would have found in a returned file: the facts as issued, the
    answers given, and the status the button set."""
    values = {h.key: facts.get(h.column, "") for h in form.header}
    values.update(answers)
    status = form.judgements.status
    if status:
        values[status] = form.judgements.final if final else ""
    return values


def canonical_bytes(audit: WebAudit, values: Mapping[str, str], by: str, at: dt.datetime) -> bytes:
    """The web return's original bytes: what was submitted, sorted, in UTF-8 JSON."""
    body = {
        "audit_id": audit.audit.audit_id,
        "form_id": audit.form.id,
        "form_version": audit.form.version,
        "stage": audit.stage,
        "submitted_by": by,
        "submitted_at": at.replace(microsecond=0).isoformat(),
        "values": dict(sorted(values.items())),
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def _validated(
    db: Store,
    found: WebAudit,
    answers: Mapping[str, str],
    now: dt.datetime,
    today: dt.date | None,
) -> tuple[RawReturn, ReadResult]:
    audit = found.audit
    checksum, audit_id = str(audit.checksum), str(audit.audit_id)
    identity = Identity(audit_id, found.form.id, found.form.version, checksum)
    values = form_values(found.form, found.facts, answers, final=True)
    raw = RawReturn(identity, found.form, values, WEB_METHOD, now.replace(tzinfo=None))
    key = db.identity_key() if audit.checksum_scheme == "hmac" else None
    issued = audit.created_at.date()
    name = file_name(audit_id, found.stage)
    result = validate_return(
        raw, name, found.facts, today, found.stage, found.prepared, key, issued
    )
    return raw, result


def submit(
    db: Store,
    audit_id: str,
    link_stage: str,
    answers: Mapping[str, str],
    by: str,
    user: str = "",
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> WebSubmission:
    """Validate and store the answers of one audit's stage as its final return. `by`: the
    address the link was sent to (the return's sender); `user`: who the events name."""
    found = web_audit(db, audit_id)
    name = file_name(audit_id, found.stage)
    if RETURN_STAGES.get(link_stage) != found.stage:
        state = str(found.audit.state)
        issue = Issue(IssueCode.state_changed, name, value=state, audit_id=audit_id)
        return WebSubmission("rejected", [issue])
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)  # real time
    raw, result = _validated(db, found, answers, now, today)
    if not result.accepted or result.record is None:
        # as a rejected file does: a child's safety does not wait for a typo to be fixed
        raised = raise_answered_concern(db, audit_id, found.form, raw.values, user)
        return WebSubmission("rejected", list(result.issues), concern_id=raised)
    record = result.record
    concern = None
    if concern_answer(found.form, record.answers) == YES:
        concern = store.RaisedConcern(*concern_text(found.form, record.answers))
    data = canonical_bytes(found, raw.values, by, now)
    file = store.ReturnFile(
        name,
        data,
        hashlib.sha256(data).hexdigest(),
        now,
        by,
        None,
        "",
        today or clock.today(),
    )
    row = return_record(result, concern)
    try:
        stored = db.store_return(row, file, found.stage, two_stage(found.form), user)
    except store.StateError as exc:
        issue = Issue(IssueCode.state_changed, name, value=str(exc), audit_id=audit_id)
        return WebSubmission("rejected", [issue])
    issues = list(result.issues)
    concern_id = stored.concern.id if stored.concern is not None else None
    return WebSubmission(stored.status, issues, stored.return_id, stored.held, concern_id)
