"""The month's outbox as the officer sees it: which emails went, which are drafts waiting to be
marked sent, which failed (the next send tries again) and which are unknown (check the Sent
Items); and marking them sent (`formtool send --mark-sent`, the browser's "I have sent these
drafts" and, for each unknown email, "It is in the Sent Items"). Sending itself is
programme/mail.py.

The officer chooses per email: `--mark-sent MONTH` alone marks the month's .eml drafts (the
officer wrote them and says they went); an email of unknown fate is marked sent only when
named by one of its audits (`--audit ID`), since some may have gone and others not.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from formtool.periods import show_time
from formtool.programme.mail import MailError, deliveries, outbox_entry
from formtool.store import MessageState, OutboxMessage, Store

M = MessageState


@dataclass(frozen=True)
class MarkedSent:
    """`send --mark-sent`: the messages now recorded as sent, and the month's emails of
    unknown fate still left for the officer to name."""

    month: str
    messages: list[OutboxMessage]
    unknown: list[OutboxMessage] = field(default_factory=list)

    @property
    def audits(self) -> int:
        return sum(len(m.audit_ids) for m in self.messages)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "marked_sent": [outbox_entry(m) for m in self.messages],
            "audits": self.audits,
            "unknown": [outbox_entry(m) for m in self.unknown],
        }


def mark_sent(db: Store, month: str, user: str = "", audit_ids: Collection[str] = ()) -> MarkedSent:
    """The officer sent the month's .eml drafts, or (naming `audit_ids`) the drafts and
    unknown emails carrying those audits went: each becomes `sent`, its audits `sent` with a
    `sent` event (a chase: `chased`). A named audit with no such email stops it before
    anything is marked (MailError saying what its email is)."""
    if audit_ids:
        _check_named(db.outbox_messages(month), month, audit_ids)
    marked = db.mark_messages_sent(month, deliveries, user, list(audit_ids) or None)
    left = [m for m in db.outbox_messages(month) if m.state is M.unknown]
    return MarkedSent(month, marked, left)


def _check_named(held: list[OutboxMessage], month: str, audit_ids: Collection[str]) -> None:
    states: dict[str, set[MessageState]] = {}
    for m in held:
        for a in m.audit_ids:
            states.setdefault(a, set()).add(m.state)
    wrong = [
        f"{a} ({_what(states[a])})" if a in states else f"{a} (no email in {month})"
        for a in dict.fromkeys(audit_ids)
        if not states.get(a, set()) & {M.drafted, M.unknown}
    ]
    if wrong:
        raise MailError(
            f"Nothing was marked sent: {', '.join(wrong)}. Only an .eml draft or an email of "
            f"unknown fate can be marked sent; `formtool send --month {month} --dry-run` lists "
            "the unknown ones with their audits."
        )


def _what(states: set[MessageState]) -> str:
    said = {
        M.sent: "its email is sent",
        M.queued: "its email is being sent now",
        M.failed: "its email failed: the next send tries it again",
    }
    return "; ".join(said[s] for s in sorted(states) if s in said)


@dataclass(frozen=True)
class MonthOutbox:
    """Every email of a month that holds its audits now, by state."""

    month: str
    messages: list[OutboxMessage]

    def _in(self, state: MessageState) -> list[OutboxMessage]:
        return [m for m in self.messages if m.state is state]

    @property
    def sent(self) -> list[OutboxMessage]:
        return self._in(M.sent)

    @property
    def sent_audits(self) -> int:
        return sum(len(m.audit_ids) for m in self.sent)

    @property
    def drafted(self) -> list[OutboxMessage]:
        return self._in(M.drafted)

    @property
    def failed(self) -> list[OutboxMessage]:
        return self._in(M.failed)

    @property
    def unknown(self) -> list[OutboxMessage]:
        return self._in(M.unknown)

    @property
    def queued(self) -> list[OutboxMessage]:
        return self._in(M.queued)


def month_outbox(db: Store, month: str) -> MonthOutbox:
    return MonthOutbox(month, db.outbox_messages(month))


def describe_message(message: OutboxMessage) -> str:
    """One line for a message the officer must act on: to whom, what, which audits (any one
    names the message to `--audit`) and when."""
    return (
        f'to {message.recipient}, "{message.subject}" (audits {", ".join(message.audit_ids)}; '
        f"{show_time(message.created_at)} UTC)"
        + (f": {message.last_error}" if message.last_error else "")
    )


def describe_superseded(message: OutboxMessage) -> str:
    """One line for this run's message that another formtool took over meanwhile."""
    outcome = {
        M.sent: "sent, but another formtool had already taken it over: check the Sent Items "
        "for a second copy",
        M.drafted: "written as a draft, but another formtool had already taken it over: "
        "send only one of the two",
        M.failed: "refused by the server; another formtool had already taken it over and "
        "its outcome counts",
        M.unknown: "may have gone, and another formtool had already taken it over: check "
        "the Sent Items for a second copy",
    }.get(message.state, str(message.state))
    return (
        f"to {message.recipient} (audits {', '.join(message.audit_ids)}; "
        f"{show_time(message.created_at)} UTC): {outcome}"
    )


def unknown_hint(month: str, same_command: bool = True) -> str:
    """What to do about emails of unknown fate, one at a time."""
    again = (
        "run the same command again with --resend-unknown --audit ID"
        if same_command
        else f"`formtool send --month {month} --resend-unknown --audit ID` (a reminder: "
        "`formtool chase`)"
    )
    return (
        f"For each one: if it is in the Sent Items, `formtool send --mark-sent {month} "
        f"--audit ID` (any one of its audits); if not, {again}."
    )
