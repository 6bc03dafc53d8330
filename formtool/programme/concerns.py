"""Immediate concerns for a child's safety or welfare: raised the moment a return (or a draft)
answers Yes, or by an officer from an audit's page, and never left to wait for the audit cycle.

The duty is the auditor's, at once (seed 001 App A para 14; 002 5.9 and 6.17; 004): formtool
is the backstop. A concern is recorded with its return in one transaction (store/returns.py),
then emailed to the programme policy's contacts for the audit's team, once per concern,
through the outbox like every other email (claimed before it goes). The email carries the
audit id, the team and where to look, never the concern's own words. Without an SMTP server in
formtool.toml the email waits, and every command says so loudly until it has gone
(`formtool concerns --send`). A concern stays open, with a red banner on the dashboard and the
audit's page, until an officer records the action taken.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from formtool.errors import FormtoolError, printable
from formtool.periods import show_time
from formtool.programme.mail import POLICY, MailError, send_smtp, valid_address
from formtool.programme.policy import Policy
from formtool.settings import Settings
from formtool.store import Concern, Delivery, MessageState, Store

CONCERN = "concern"  # the outbox purpose: one message per concern (its id is the round)
M = MessageState


class ConcernError(FormtoolError):
    """A concern that cannot be raised or actioned; the message says why and the fix."""


def raise_by_officer(db: Store, policy: Policy, audit_id: str, details: str, user: str) -> Concern:
    """An officer raises a concern from the audit's page (no return needed)."""
    if not details.strip():
        raise ConcernError("Say what the concern is (--details), in a sentence.")
    db.require_audit(audit_id)
    concern = db.raise_concern(audit_id, "officer", details.strip(), "", None, user)
    assert concern is not None  # an officer's concern is always new
    return concern


def record_action(db: Store, concern_id: int, action: str, user: str) -> Concern:
    """The action taken on a concern: it closes the concern and lifts the banner."""
    if not action.strip():
        raise ConcernError('Say what action was taken (--action N --taken "..."), in a sentence.')
    concern = db.concern(concern_id)
    if concern is None:
        raise ConcernError(
            f"There is no concern {concern_id}. `formtool concerns` lists them with their numbers."
        )
    if not concern.open:
        raise ConcernError(
            f"Concern {concern_id} was already actioned by {concern.action_by} on "
            f"{show_time(concern.action_at) if concern.action_at else 'an unknown day'}: "
            f"{concern.action_taken}"
        )
    return db.record_concern_action(concern_id, action.strip(), user)


def unsent(db: Store, concerns: Iterable[Concern] | None = None) -> list[Concern]:
    """Concerns (of `concerns`, or all) whose email has not gone: none sent yet, or the last
    attempt failed; one sent, being sent or of unknown fate (check the Sent Items) is not
    sent again."""
    waiting = db.unsent_concerns(CONCERN)
    if concerns is None:
        return waiting
    wanted = {c.id for c in concerns}
    return [c for c in waiting if c.id in wanted]


def loud_line(db: Store) -> str:
    """One line every command prints while a concern's email has not gone ("" if none)."""
    waiting = unsent(db)
    if not waiting:
        return ""
    return (  # no audit ids: it prints after every command, whoever runs it
        f"URGENT: {len(waiting)} immediate concern(s) for a child's safety not yet emailed. "
        "Make sure the contacts know now; see `formtool concerns --open`, set smtp in "
        "formtool.toml and run `formtool concerns --send`."
    )


@dataclass
class SendResult:
    sent: list[tuple[Concern, tuple[str, ...]]] = field(default_factory=list)  # (it, to whom)
    failed: list[tuple[Concern, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": [{"concern": c.id, "to": list(to)} for c, to in self.sent],
            "failed": [{"concern": c.id, "error": e} for c, e in self.failed],
        }


def contacts(policy: Policy, concern: Concern) -> tuple[str, ...]:
    """Who hears of the concern: the programme's contacts for its team (its fallback for a
    team it does not list), as the policy in force says when the email goes."""
    return policy.concerns.contacts(concern.team)


def send_emails(
    db: Store,
    settings: Settings,
    policy: Policy,
    user: str,
    concerns: Iterable[Concern] | None = None,
) -> SendResult:
    """Email every concern not yet emailed (or just `concerns`) to the policy's contacts for
    its team, through the settings' SMTP server, each claimed in the outbox first so it goes
    once. No server set: MailError."""
    waiting = unsent(db, concerns)
    result = SendResult()
    if not waiting:
        return result
    if not settings.smtp:
        raise MailError(
            'No SMTP server is set, so concern emails cannot go. Add smtp = "HOST:PORT" and '
            "mail_from to formtool.toml, then run `formtool concerns --send`."
        )
    sender = settings.mail_from or "formtool@example.invalid"

    def run(smtp: smtplib.SMTP) -> None:
        for concern in waiting:
            to = tuple(c for c in contacts(policy, concern) if real_address(c))
            if not to:  # an email to nobody real must not count as sent
                result.failed.append((concern, _nobody(policy, concern)))
                continue
            _send_one(db, smtp, concern, to, sender, settings, user, result)

    send_smtp(settings.smtp, False, settings.smtp_user or None, run)
    return result


def _send_one(
    db: Store,
    smtp: smtplib.SMTP,
    concern: Concern,
    to: tuple[str, ...],
    sender: str,
    settings: Settings,
    user: str,
    result: SendResult,
) -> None:
    message = _email(concern, sender, to, settings)
    claim = db.claim_message(
        concern.month,
        CONCERN,
        str(concern.id),
        "audit",
        ", ".join(to),
        [concern.audit_id],
        lambda ids: str(message["Subject"]),
        user,
    )
    if claim.message_id is None:
        return  # another run has it
    try:
        smtp.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
        error = printable(str(exc), 200)
        db.settle_message(claim.message_id, M.failed, _deliveries(concern), user, error)
        result.failed.append((concern, error))
        return
    except (OSError, smtplib.SMTPException) as exc:
        db.settle_message(claim.message_id, M.unknown, _deliveries(concern), user, str(exc))
        raise
    db.settle_message(claim.message_id, M.sent, _deliveries(concern), user)
    result.sent.append((concern, to))


def real_address(address: str) -> bool:
    """An address someone reads: valid, and not a placeholder from a shipped policy (the
    reserved .invalid and example domains)."""
    domain = address.rsplit("@", 1)[-1].lower()
    placeholder = domain.endswith(".invalid") or domain.split(".")[0] == "example"
    return valid_address(address) and not placeholder


def placeholders(policy: Policy) -> list[str]:
    """The policy's concern contacts that are placeholders, to be replaced by the council's."""
    named = [*policy.concerns.fallback, *(a for t in policy.concerns.teams.values() for a in t)]
    return [a for a in dict.fromkeys(named) if not real_address(a)]


def _nobody(policy: Policy, concern: Concern) -> str:
    return (
        f"the programme '{policy.name}' names no real contact for {concern.team or 'its team'} "
        "(only placeholders): put the council's addresses under concerns: in its policy file "
        "and run `formtool programme use` with it"
    )


def _deliveries(concern: Concern) -> Any:
    def deliveries(message: Any) -> list[Delivery]:
        return [
            Delivery(a, "concern emailed", f"concern {concern.id} to {message.recipient}")
            for a in message.audit_ids
        ]

    return deliveries


def _email(concern: Concern, sender: str, to: tuple[str, ...], settings: Settings) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = ", ".join(to)
    message["Subject"] = (
        f"[{settings.marking}] URGENT: immediate concern for a child's safety, audit "
        f"{concern.audit_id}"
    )
    where = (
        f"{settings.web_address.rstrip('/')}/audits/{concern.audit_id}"
        if settings.web_address
        else f"formtool: `formtool concerns --open`, audit {concern.audit_id}"
    )
    raised = "an auditor's return" if concern.source == "return" else "a QA officer"
    message.set_content(
        "\n".join(
            [
                f"An immediate concern for a child's safety or welfare was raised by {raised} "
                f"in case file audit {concern.audit_id} ({concern.team or 'no team named'}).",
                "",
                "Please act on it now; do not wait for the audit cycle. The concern itself is "
                "not in this email: read it here, signed in:",
                where,
                "",
                "Record the action taken on the audit's page (or `formtool concerns --action "
                f'{concern.id} --taken "..."`), so the QA team knows it has been dealt with.',
            ]
        )
    )
    return message


def as_dict(concern: Concern, emailed: bool, to: tuple[str, ...]) -> dict[str, Any]:
    def when(at: dt.datetime | None) -> str | None:
        return at.isoformat(sep=" ") if at else None

    return {
        "id": concern.id,
        "audit_id": concern.audit_id,
        "month": concern.month,
        "team": concern.team,
        "source": concern.source,
        "raised_at": when(concern.raised_at),
        "raised_by": concern.raised_by,
        "told": concern.told,
        "contacts": list(to),
        "emailed": emailed,
        "open": concern.open,
        "action_taken": concern.action_taken,
        "action_by": concern.action_by,
        "action_at": when(concern.action_at),
    }
