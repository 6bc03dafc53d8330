"""The private web-form link's whole life: issued at delivery, checked, exchanged for a session
through a one-time code emailed to the allocated address, revoked, and the drafts it saves.

A link is a bearer key to a child's data, and emails are forwarded and pre-opened by mail
scanners, so a link alone opens nothing: `check_link` (a GET) changes nothing and says nothing
about the audit; `request_code` emails a 6-digit code (valid 10 minutes, at most 3 an hour per
link) to the person the link was sent to, and `exchange_code` trades link + code for a session
of 4 hours bound to that audit and stage. Only SHA-256 hashes of the token, the code and the
session are stored; the plaintext token exists only in the email.

A link is usable while its audit is outstanding for the link's stage (the preparers' stage of a
two-stage tool, or the audit), on the copy it was issued for (a reassignment makes a new copy),
not revoked (a newer link for the stage replaces it: a chase, an amendment), and until its
`expires_on`: the audit's due date (or the day it was issued, if later) plus the programme's
amendment window, and never more than the policy's `web_link_days` after it was issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, NamedTuple

from formtool import clock
from formtool.definitions import PREPARED
from formtool.errors import FormtoolError
from formtool.programme.rules import active_policy, amendment_due_for
from formtool.read.limits import MAX_FIELD_CHARS, MAX_TEXT_CHARS
from formtool.read.validate import two_stage
from formtool.settings import Settings
from formtool.store import AuditState, Store

S = AuditState
STAGES = ("prepare", "audit")
CODE_VALID = dt.timedelta(minutes=10)
CODES_PER_WINDOW, CODE_WINDOW = 3, dt.timedelta(hours=1)
MAX_CODE_TRIES = 5  # wrong codes before the code is void
#: Wrong codes over a link's whole life before it is locked: a stolen link cannot be worked
#: through the million codes a few at a time (the auditor is given a new link).
MAX_WRONG_CODES = 20
#: A form session lasts while it is used (each save or page extends it by SESSION_IDLE), up
#: to SESSION_MAX from the code: a long audit is not cut off, a forgotten one does not linger.
SESSION_IDLE = dt.timedelta(hours=2)
SESSION_MAX = dt.timedelta(hours=12)
MAX_TOKEN_CHARS = 100  # a token is 43 characters; anything much longer is not one
MAX_DRAFT_KEYS = 5_000  # a form's fields and action cells, with room to spare
MAX_KEY_CHARS = 200
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
#: The states in which the auditor (or preparer) still owes a return; which stage is open in
#: them is decided by `open_stage`.
_OWED = frozenset({S.allocated, S.sent, S.in_progress, S.awaiting_audit, S.amendment_requested})

#: What the person holding a link reads when it is refused: no fact, no audit id.
_SAID = {
    "unknown": "This form link is not valid. Check that you opened the whole link from the "
    "email, or ask the QA team for a new link.",
    "expired": "This form link has expired. Ask the QA team for a new link.",
    "replaced": "This form link has been replaced by a newer one. Use the link in the most "
    "recent email, or ask the QA team for a new link.",
    "reassigned": "This audit has been given to someone else, so this link no longer opens it. "
    "Your unsaved answers were not passed on. If you think this is wrong, ask the QA team.",
    "locked": "This form link is locked: too many wrong codes were typed with it. Ask the QA "
    "team for a new link.",
    "closed": "This form is no longer open through this link. If you still need to fill it "
    "in, ask the QA team for a new link.",
    "throttled": "Too many codes were asked for with this link. Wait an hour and ask again, "
    "or ask the QA team for help.",
    "wrong_code": "That code is not right. Type the 6-digit code from the latest email; after "
    f"{MAX_CODE_TRIES} wrong tries, ask for a new code.",
    "no_code": "That code has expired or was already used. Ask for a new code.",
    "session_ended": "Your time on this form has ended. Open the link from your email again "
    "and ask for a new code; your saved answers are kept.",
}


class LinkRefused(FormtoolError):
    """A link, code or session that opens nothing. `reason` is a short code for logs
    (unknown, expired, replaced, closed, throttled, wrong_code, no_code, session_ended);
    the message is one plain line for the auditor, naming no fact."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(_SAID[reason])


class WebLinkError(FormtoolError):
    """A link cannot be made (no web address set, a draft too large): one line, the fix."""


@dataclass(frozen=True)
class LinkAccess:
    """What a usable link (or a session bought with one) opens: one audit's one stage."""

    link_id: int
    audit_id: str
    stage: str  # "prepare" | "audit"
    name: str  # the person the link was sent to (auditor, or the preparing worker)
    address: str  # their email address: where the one-time code goes
    expires_on: dt.date
    amendment: str = ""  # the reason of an amendment request made since the stage's last return


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _code_hash(db: Store, link_id: int, code: str) -> str:
    """A code's keyed hash: six digits under a plain hash would be read back from a copy of
    the database in a moment; under the server's own key they cannot."""
    key = db.server_secret("web form codes").encode("ascii")
    return hmac.new(key, f"{link_id}:{code}".encode(), hashlib.sha256).hexdigest()


def link_expiry(db: Store, audit: Any, today: dt.date) -> dt.date:
    """The last day a link issued `today` works: the due date (today, if later) plus the
    programme's amendment window, capped at the policy's web_link_days after today."""
    policy = active_policy(db)
    base = max(audit.due_date, today)
    amended = amendment_due_for(policy, audit.form_id, audit.month, base)
    end = max(base, amended) if amended is not None else base
    return min(end, today + dt.timedelta(days=policy.web_link_days))


class NewLink(NamedTuple):
    """A link just issued: its plaintext token (put it in the email, keep it nowhere else),
    the last day it works, and its id (to retire the older ones once the email has gone)."""

    token: str
    until: dt.date
    link_id: int


def issue_link(db: Store, audit_id: str, stage: str, today: dt.date | None = None) -> str:
    """A new link for the audit's stage (its plaintext token); the stage's earlier live
    links are revoked ("replaced") at once."""
    return issue_link_until(db, audit_id, stage, today, replace=True).token


def issue_link_until(
    db: Store,
    audit_id: str,
    stage: str,
    today: dt.date | None = None,
    replace: bool = False,
) -> NewLink:
    """A new link for an email. The earlier links of the stage stay usable (the email may
    fail, or be a draft an officer sends later, or never) until `retire_older_links` once it
    has gone; with `replace` they are revoked at once."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    today = today or clock.today()
    audit = db.require_audit(audit_id)
    token = secrets.token_urlsafe(32)
    expires = link_expiry(db, audit, today)
    copy = int(audit.copy or 1)
    link_id = db.add_web_link(audit_id, copy, stage, token_hash(token), expires, replace)
    return NewLink(token, expires, link_id)


def retire_older_links(db: Store, audit_id: str, stage: str, link_id: int) -> int:
    """The email carrying link `link_id` has gone (sent over SMTP): the stage's earlier
    links stop working ("replaced"). How many. Links in .eml drafts are never retired this
    way: formtool cannot tell which draft went from Outlook."""
    return db.retire_web_links(audit_id, stage, link_id)


def keep_newest_link(db: Store, audit_id: str, stage: str) -> int:
    """The email carrying the stage's newest link has gone: the earlier ones stop. How many."""
    ids = [link.id for link in db.web_links_of(audit_id) if link.stage == stage]
    return retire_older_links(db, audit_id, stage, max(ids)) if ids else 0


def link_url(settings: Settings, token: str) -> str:
    """The link as the email gives it; WebLinkError when formtool.toml sets no web_address."""
    address = settings.web_address.strip()
    if not address:
        raise WebLinkError(
            "No web address is set for form links: set web_address in formtool.toml to the "
            "web workspace's address (e.g. https://formtool.council.gov.uk), then send again."
        )
    return f"{address.rstrip('/')}/form/{token}"


def open_stage(found: Any, two_stage: bool) -> str | None:
    """Which stage of a link's audit (the store's WebLink) still owes a return: "prepare",
    "audit", or None."""
    state = S(found.audit.state)
    if state not in _OWED:
        return None
    if state is S.amendment_requested:
        return "prepare" if found.current_stage == PREPARED else "audit"
    if state is S.awaiting_audit or not two_stage:
        return "audit"
    if state is S.in_progress:
        return "audit" if found.prepared else "prepare"
    return "prepare"  # allocated or sent: still with the preparers


def owed_stage(db: Store, audit_id: str) -> str | None:
    """The stage an audit still owes a return for ("prepare" or "audit"), or None when it
    owes none (a new link would open nothing)."""
    audit = db.require_audit(audit_id)
    if S(audit.state) not in _OWED:
        return None
    form = db.form_for(audit.form_id, audit.form_version)
    two = form is not None and two_stage(form)
    stage = db.return_context(audit_id, two)[1]
    return "prepare" if stage == PREPARED else "audit"


def _two_stage(db: Store, found: Any) -> bool:
    if found.link.stage == "prepare" or found.prepared:
        return True
    form = db.form_for(found.audit.form_id, found.audit.form_version)
    return form is not None and form.two_stage


def _access(db: Store, found: Any, today: dt.date) -> LinkAccess:
    """The link's access, or LinkRefused saying why it opens nothing."""
    if found is None:
        raise LinkRefused("unknown")
    link, audit = found.link, found.audit
    if link.revoked_at is not None:
        reason = link.revoked_reason
        raise LinkRefused(reason if reason in ("replaced", "locked") else "closed")
    if int(audit.copy or 1) != link.copy:
        raise LinkRefused("reassigned")
    if open_stage(found, _two_stage(db, found)) != link.stage:
        raise LinkRefused("closed")
    if today > link.expires_on:
        raise LinkRefused("expired")
    preparing = link.stage == "prepare"
    name = audit.worker if preparing else audit.auditor
    address = audit.preparer_email if preparing else audit.auditor_email
    amendment = ""
    if audit.state == S.amendment_requested.value:
        amendment = found.amendment.partition(": ")[2].strip() or found.amendment
    return LinkAccess(
        link.id, audit.audit_id, link.stage, name, address.strip(), link.expires_on, amendment
    )


def _find(db: Store, token: str) -> Any:
    if not 0 < len(token) <= MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        return None
    return db.web_link(token_hash(token))


def check_link(db: Store, token: str, today: dt.date | None = None) -> LinkAccess:
    """What the link opens (LinkRefused if nothing). Changes nothing: safe for a GET."""
    return _access(db, _find(db, token), today or clock.today())


def request_code(db: Store, token: str, now: dt.datetime) -> tuple[LinkAccess, str]:
    """A new one-time code for the link (the previous one void), to email to
    `LinkAccess.address` with `code_message`; LinkRefused("throttled") past 3 an hour."""
    access = check_link(db, token)
    code = f"{secrets.randbelow(10**6):06d}"
    made = db.set_web_code(
        access.link_id,
        _code_hash(db, access.link_id, code),
        now,
        CODE_VALID,
        CODES_PER_WINDOW,
        CODE_WINDOW,
    )
    if not made:
        raise LinkRefused("throttled")
    return access, code


def code_message(access: LinkAccess, code: str, sender: str, settings: Settings) -> EmailMessage:
    """The email carrying the one-time code: no fact, no link, no audit id."""
    from formtool.programme.mail import POLICY, display_name, signature

    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = Address(display_name(access.name), addr_spec=access.address)
    message["Subject"] = f"[{settings.marking}] Your one-time code for the audit form"
    lines = [
        f"Dear {display_name(access.name)},",
        "",
        f"Your one-time code is: {code}",
        "",
        f"Type it on the form page within {CODE_VALID.seconds // 60} minutes. It works once.",
        "If you did not ask for a code, ignore this email: nobody can open the form without it.",
    ]
    message.set_content("\n".join(lines + signature(settings)))
    return message


def exchange_code(db: Store, token: str, code: str, now: dt.datetime) -> tuple[str, LinkAccess]:
    """Trade the link and its code for a session (its plaintext token, for the cookie) bound
    to the link's audit and stage. A code works once; 5 wrong tries void it."""
    access = check_link(db, token)
    typed = re.sub(r"\s+", "", code[:40])
    session = secrets.token_urlsafe(32)
    outcome = db.use_web_code(
        access.link_id,
        _code_hash(db, access.link_id, typed),
        now,
        MAX_CODE_TRIES,
        token_hash(session),
        now + SESSION_IDLE,
        MAX_WRONG_CODES,
    )
    if outcome != "ok":
        said = {"wrong": "wrong_code", "locked": "locked"}
        raise LinkRefused(said.get(outcome, "no_code"))
    return session, access


def form_session(
    db: Store, session_token: str, now: dt.datetime, today: dt.date | None = None
) -> LinkAccess:
    """What the session opens, re-checking its link as `check_link` does (LinkRefused)."""
    if not 0 < len(session_token) <= MAX_TOKEN_CHARS or not _TOKEN.fullmatch(session_token):
        raise LinkRefused("session_ended")
    session = db.web_session(token_hash(session_token))
    if session is None or now >= session.expires_at:
        raise LinkRefused("session_ended")
    access = _access(db, db.web_link_by_id(session.link_id), today or clock.today())
    until = min(session.created_at + SESSION_MAX, now + SESSION_IDLE)
    if until > session.expires_at:  # in use: it lasts (never past SESSION_MAX)
        db.extend_web_session(session.id_hash, until)
    return access


def end_form_session(db: Store, session_token: str) -> None:
    db.end_web_session(token_hash(session_token[:MAX_TOKEN_CHARS]))


def revoke_links(db: Store, audit_id: str, reason: str, stage: str | None = None) -> int:
    """Revoke the audit's live links (of `stage`, or every stage); how many."""
    return db.revoke_web_links(audit_id, reason, stage)


def save_draft(db: Store, access: LinkAccess, values: Mapping[str, str], now: dt.datetime) -> None:
    """Keep the form's answers so far for the link's audit and stage (replacing the last
    draft); WebLinkError when the draft is larger than any form's answers can be."""
    if len(values) > MAX_DRAFT_KEYS:
        raise WebLinkError(
            f"The form sent {len(values):,} answers, more than {MAX_DRAFT_KEYS:,}: reload the "
            "page and try again."
        )
    total = 0
    for key, value in values.items():
        if len(key) > MAX_KEY_CHARS or len(value) > MAX_FIELD_CHARS:
            raise WebLinkError(
                f"The answer to {key[:80]} is longer than {MAX_FIELD_CHARS:,} characters: "
                "shorten it and save again."
            )
        total += len(value)
    if total > MAX_TEXT_CHARS:
        raise WebLinkError(
            f"The answers are longer than {MAX_TEXT_CHARS:,} characters in all: shorten the "
            "longest and save again."
        )
    text = json.dumps(dict(values), sort_keys=True, ensure_ascii=False)
    db.save_web_draft(access.audit_id, access.stage, text, now)


def load_draft(db: Store, access: LinkAccess) -> dict[str, str]:
    """The link's audit and stage's saved answers ({} if none)."""
    text = db.web_draft(access.audit_id, access.stage)
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


def drop_draft(db: Store, audit_id: str, stage: str) -> None:
    """The stage's final return is stored: its draft goes (it holds children's data)."""
    db.drop_web_drafts([audit_id], stage)


#: What a dry run shows where the link will be.
LINK_LATER = "(a private link is created when the email is sent)"


def link_lines(address: str, chase: bool = False) -> list[str]:
    """What a web-format email says instead of the attachment instructions (each audit's
    link is on its own line under it, with the day it works until)."""
    return [
        "How to complete it: open the private link under each audit in a browser (a phone or "
        f"tablet works too). A one-time code will be emailed to this address ({address}) when "
        "you open it. Each link works until the date beside it and opens only that audit: "
        "please do not forward this email."
        + (" Use this email's link: those in earlier emails may no longer work." if chase else ""),
    ]
