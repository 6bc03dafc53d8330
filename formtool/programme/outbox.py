"""The month's outbox as the officer sees it: which emails went, which are drafts waiting to be
marked sent, which failed (the next send tries again) and which are unknown (check the Sent
Items); and marking drafts sent (`formtool send --mark-sent`, the browser's "I have sent these
drafts"). Sending itself is programme/mail.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formtool.periods import show_time
from formtool.programme.mail import deliveries, outbox_entry
from formtool.store import MessageState, OutboxMessage, Store

M = MessageState


@dataclass(frozen=True)
class MarkedSent:
    """`send --mark-sent`: the month's drafts (and unknown messages) now recorded as sent."""

    month: str
    messages: list[OutboxMessage]

    @property
    def audits(self) -> int:
        return sum(len(m.audit_ids) for m in self.messages)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "marked_sent": [outbox_entry(m) for m in self.messages],
            "audits": self.audits,
        }


def mark_sent(db: Store, month: str, user: str = "") -> MarkedSent:
    """The officer sent the month's .eml drafts (or found the unknown messages in the Sent
    Items): each becomes `sent`, its audits `sent` with a `sent` event (a chase: `chased`)."""
    return MarkedSent(month, db.mark_messages_sent(month, deliveries, user))


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
    """One line for a message the officer must act on: to whom, what and when."""
    return (
        f'to {message.recipient}, "{message.subject}" ({len(message.audit_ids)} audit(s); '
        f"{show_time(message.created_at)} UTC)"
        + (f": {message.last_error}" if message.last_error else "")
    )
