"""Chasing named audits, or every overdue one, from the browser: `formtool chase` (mail.deliver
with chase=True) limited to those audits, with one plain summary for the officer. The same
rules hold: an audit is chased at most once a day, only once it went out, and only when it
is overdue; the audits a role may not see (a member of staff's results) are never chased by
it, and naming one is refused."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from formtool import clock
from formtool.errors import FormtoolError, printable
from formtool.programme.activities import check_results, hidden_audits
from formtool.programme.mail import CHASE, MailResult, deliver, deliveries
from formtool.settings import DEFAULT, Settings
from formtool.store import OUTSTANDING, OutboxMessage, Store

SHOWN = 8  # audit ids listed in a sentence before "and N more"


@dataclass
class Chased:
    """What a chase of some audits did: the mail run (who was chased now), and the audits
    left alone, each with its reason."""

    mail: MailResult
    already: list[str] = field(default_factory=list)  # chased today (sent, sending, draft)
    not_sent: list[str] = field(default_factory=list)  # overdue but never sent out
    not_overdue: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the server refused: try again today
    unknown: list[str] = field(default_factory=list)  # may have gone: check the Sent Items
    none_overdue: bool = False  # every overdue audit was asked for, and there is none

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed or self.unknown)

    def summary(self) -> str:
        """One plain paragraph: who was chased for how many audits, then what was not and why."""
        people = [
            f"{printable(m.auditor) or m.address} for {_count(len(m.audit_ids), 'audit')}"
            for m in self.mail.messages
        ]
        if self.none_overdue:
            said = "Nobody was chased: no audit is overdue."
        elif not people:
            said = "Nobody was chased."
        elif self.mail.sent_via:
            said = f"Chased {_and(people)} by email via {self.mail.sent_via}."
        else:
            said = (
                f"Chase emails for {_and(people)} are ready as .eml drafts: download them, "
                "send them from Outlook, then press “I have sent these drafts”."
            )
        notes = [
            (self.already, "Already chased today, so not chased again"),
            (self.not_sent, "Never sent to the auditor, so not chased (send them first)"),
            (self.not_overdue, "Not overdue, so not chased"),
            (self.failed, "Refused by the mail server (chasing them again today tries again)"),
            (self.unknown, "May have gone: check the Sent Items"),
        ]
        parts = [said, *(f"{words}: {_ids(ids)}." for ids, words in notes if ids)]
        return " ".join(parts) + (f" {self.mail.notice}" if self.mail.notice else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _ids(ids: list[str]) -> str:
    more = len(ids) - SHOWN
    return ", ".join(ids[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def chase_audits(
    db: Store,
    audit_ids: Collection[str] | None,
    roles: Collection[str],
    sender: str,
    out_dir: Path,
    smtp: str | None = None,
    starttls: bool = False,
    smtp_user: str | None = None,
    settings: Settings = DEFAULT,
    user: str = "",
    ssl_context: ssl.SSLContext | None = None,
) -> Chased:
    """Chase these audits (None: every overdue audit the roles may see) as `formtool chase`
    does, over SMTP when `smtp` is given, else as .eml drafts in `out_dir`. An audit that
    does not exist stops it (FormtoolError); one the roles may not see too
    (NotPermittedError): nothing is chased."""
    today = clock.today()
    overdue = db.audit_rows(None, [s.value for s in OUTSTANDING], today)
    due_ids = {r.audit_id for r in overdue}
    if audit_ids is None:
        hidden = hidden_audits(db, {r.month for r in overdue}, roles)
        named, not_overdue = sorted(due_ids - hidden), []
    else:
        wanted = list(dict.fromkeys(audit_ids))
        _check_named(db, wanted, roles)
        named = [a for a in wanted if a in due_ids]
        not_overdue = [a for a in wanted if a not in due_ids]
    result = Chased(MailResult([]), not_overdue=not_overdue)
    result.none_overdue = audit_ids is None and not named
    if not named:
        return result
    result.mail = deliver(
        db,
        sender,
        out_dir,
        None,
        out_dir,
        chase=True,
        smtp=smtp,
        starttls=starttls,
        smtp_user=smtp_user,
        today=today,
        settings=settings,
        user=user,
        ssl_context=ssl_context,
        audit_ids=named,
    )
    mine = set(named)
    held = result.mail.already_sent + result.mail.in_progress + result.mail.drafted
    result.already = _carried(held, mine)
    result.not_sent = [a for a in result.mail.not_sent if a in mine]
    result.failed = _carried(result.mail.failed, mine)
    result.unknown = _carried(result.mail.unknown, mine)
    return result


def _carried(messages: list[OutboxMessage], mine: set[str]) -> list[str]:
    return sorted({a for m in messages for a in m.audit_ids if a in mine})


def _check_named(db: Store, wanted: list[str], roles: Collection[str]) -> None:
    found = {r.audit_id: r for r in db.audit_rows(audit_ids=wanted)}
    missing = [a for a in wanted if a not in found]
    if missing:
        raise FormtoolError(
            f"There is no audit {_ids([printable(a, 80) for a in missing])}: nothing was "
            "chased. Reload the page and choose again."
        )
    staff = [a for a in wanted if found[a].subject_kind != "case"]
    for audit_id in staff:  # NotPermittedError, in the programme's words
        check_results(db, audit_id, roles)


def mark_chases_sent(db: Store, day: dt.date, user: str = "") -> list[OutboxMessage]:
    """The officer sent the day's chase drafts: each is `sent`, its audits `chased`."""
    return db.mark_messages_sent(None, deliveries, user, None, [CHASE], day.isoformat())
