"""The audit database's tables, and the audit state machine every state change goes through.

The invariants a shared team store needs are declared here so the database enforces them, not
the code's luck: one current return per audit (a partial unique index), one return per audit
and content, one grade row per audit.
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa


class AuditState(StrEnum):
    """Where an audit is in the monthly cycle. Values are what the database stores."""

    allocated = "allocated"
    sent = "sent"
    in_progress = "in progress"  # a Draft return came back: not complete, not graded
    prepared = "prepared"  # two-stage tools: worker and supervisor listed the evidence
    awaiting_audit = "awaiting audit"  # two-stage: a prepared file picked for the auditor
    filed_unaudited = "filed unaudited"  # two-stage: prepared, not picked; on file as it is
    returned = "returned"
    amendment_requested = "amendment requested"
    checked = "checked"
    moderated = "moderated"
    actions_signed_off = "actions signed off"
    closed = "closed"
    exempted = "exempted"  # agreed not to be done (seed 001 App A para 4): nobody's quota


S = AuditState
#: Every allowed move: from-state -> the states it may move to. Nothing else is possible.
TRANSITIONS: dict[AuditState, frozenset[AuditState]] = {
    S.allocated: frozenset({S.sent, S.in_progress, S.prepared, S.returned, S.exempted}),
    S.sent: frozenset({S.in_progress, S.prepared, S.returned, S.exempted}),
    S.in_progress: frozenset({S.in_progress, S.prepared, S.returned, S.exempted}),
    S.prepared: frozenset({S.prepared, S.awaiting_audit, S.filed_unaudited}),
    S.awaiting_audit: frozenset({S.in_progress, S.returned}),
    S.amendment_requested: frozenset({S.in_progress, S.returned}),
    S.returned: frozenset(
        {S.in_progress, S.returned, S.checked, S.amendment_requested, S.moderated}
    ),
    S.checked: frozenset({S.moderated, S.actions_signed_off, S.closed}),
    S.moderated: frozenset({S.moderated, S.actions_signed_off, S.closed}),
    S.actions_signed_off: frozenset({S.closed}),
    S.filed_unaudited: frozenset(),
    S.closed: frozenset(),
    S.exempted: frozenset(),
}
#: The auditor (or preparer) still owes a return: counted as outstanding, overdue after the
#: due date, and chased.
OUTSTANDING = frozenset(
    {S.allocated, S.sent, S.in_progress, S.amendment_requested, S.awaiting_audit}
)
#: A complete return is in: counted as completed (and graded, once it has a grade).
COMPLETED = frozenset({S.returned, S.checked, S.moderated, S.actions_signed_off, S.closed})

#: Why a return is held (returns.held).
HELD_SENDER, HELD_LOCKED, REFUSED = "sender", "after accepted", "refused"
HELD_REASSIGNED = "reassigned"  # a copy the audit had before it was reassigned
#: A final return by one channel (a file, or the web form) when the other's final return for
#: the same stage is already current: the first one stands until an officer decides.
HELD_CHANNEL = "other channel"
#: States after an officer has accepted the return: a later return waits for a reopen.
ACCEPTED = frozenset({S.checked, S.moderated, S.actions_signed_off, S.closed})

metadata = sa.MetaData()

audits = sa.Table(
    "audits",
    metadata,
    sa.Column("audit_id", sa.String(80), primary_key=True),
    sa.Column("form_id", sa.String(60), nullable=False, index=True),
    sa.Column("form_version", sa.Integer, nullable=False),
    sa.Column("case_number", sa.String(80), nullable=False, index=True),
    sa.Column("auditor", sa.String(200), nullable=False, index=True),
    sa.Column("auditor_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("team", sa.String(200), nullable=False, server_default="", index=True),
    sa.Column("worker", sa.String(200), nullable=False, server_default=""),
    sa.Column("manager", sa.String(200), nullable=False, server_default=""),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("due_date", sa.Date, nullable=False, index=True),
    sa.Column("state", sa.String(30), nullable=False, server_default="allocated", index=True),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("facts", sa.Text, nullable=False),  # JSON: header column -> value
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column(
        "allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), nullable=True, index=True
    ),
    sa.Column("preparer_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("form_format", sa.String(8), nullable=False, server_default="docx"),
    # How the identity checksum is made: "hmac" (keyed with the database's own secret, so
    # only formtool can mint it) or "sha256" (audits issued before keying, until closed).
    sa.Column("checksum_scheme", sa.String(10), nullable=False, server_default="sha256"),
    # The due date the audit was allocated with; the current one (due_date) moves while an
    # amendment is with the auditor. None: never moved.
    sa.Column("original_due_date", sa.Date, nullable=True),
    # Which copy of the form is current: 1, and one more each time it is reassigned.
    sa.Column("copy", sa.Integer, nullable=False, server_default="1"),
    # The programme's activity the audit belongs to ("": the monthly case-file audit), the run
    # of it (activity_runs) and whose work it looks at: a case, a supervisor, a practitioner.
    sa.Column("activity", sa.String(30), nullable=False, server_default=""),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("activity_runs.id"), nullable=True, index=True),
    sa.Column("subject_kind", sa.String(20), nullable=False, server_default="case"),
)

#: One run of a programme activity (a thematic audit on a theme, a month's dip samples or
#: observations): its audits point at it, and its report reads it. Ids are numbered under the
#: allocation lock (they are part of the audit ids), never by a sequence.
activity_runs = sa.Table(
    "activity_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("activity", sa.String(30), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("theme", sa.Text, nullable=False, server_default=""),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    # The group's agreed overall findings and key messages (seed 001 4.13).
    sa.Column("findings", sa.Text, nullable=False, server_default=""),
    # How its subjects were chosen, in words (a filter, "named by the officer", ...).
    sa.Column("chosen", sa.Text, nullable=False, server_default=""),
    sa.Column("review_of", sa.Integer, sa.ForeignKey("activity_runs.id"), nullable=True),
    sa.Column("on_demand", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), nullable=True),
    sa.Column("programme", sa.String(60), nullable=False, server_default=""),
    sa.Column("programme_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime, nullable=True),
    sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
)

#: The copies of an audit's form before it was reassigned: a return of one is recognised
#: (its checksum) and held for an officer, never thrown away (the work may be good).
audit_copies = sa.Table(
    "audit_copies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("copy", sa.Integer, nullable=False),
    sa.Column("auditor", sa.String(200), nullable=False),
    sa.Column("auditor_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("facts", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("checksum_scheme", sa.String(10), nullable=False),
    sa.Column("replaced_at", sa.DateTime, nullable=False),
    sa.Column("replaced_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
)

allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("mode", sa.String(10), nullable=False),  # first / add / replace
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("audits", sa.Integer, nullable=False),
    sa.Column("replaced", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # The programme policy (and its version in `programmes`) the allocation ran under.
    sa.Column("programme", sa.String(60), nullable=False, server_default=""),
    sa.Column("programme_version", sa.Integer, nullable=False, server_default="0"),
)

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("content", sa.LargeBinary, nullable=False),  # the original bytes, for tracing
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sa.Column("supersedes", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
    sa.Column("is_current", sa.Boolean, nullable=False),
    sa.Column("method", sa.String(30), nullable=False),
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),  # JSON issue data
    # When the file says it was saved (else the email's sent date, else the import time):
    # returns are ordered by it, so an older return arriving late never becomes current.
    sa.Column("saved_at", sa.DateTime, nullable=True),
    sa.Column("sender", sa.String(400), nullable=False, server_default=""),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("message_name", sa.String(500), nullable=False, server_default=""),
    sa.Column("stage", sa.String(12), nullable=False, server_default="audit"),
    # Why a stored return is not current: "" (none, or simply older), HELD_SENDER (from an
    # address not the auditor's: waits for an officer), HELD_LOCKED (arrived after the audit
    # was accepted: waits for a reopen), REFUSED (an officer refused it).
    sa.Column("held", sa.String(20), nullable=False, server_default=""),
    # The programme's date when it came in (formtool's clock, which tests and rehearsals set):
    # deadlines that run from a return (a review four weeks after an inadequate grade) count
    # from it, never from the machine's clock. None: imported before this was kept.
    sa.Column("received_on", sa.Date, nullable=True),
    # When retention removed the original bytes (content is then empty; answers stay).
    sa.Column("content_removed_at", sa.DateTime, nullable=True),
    # A web form's return (method "web"): the PDF of the answers as submitted, which the
    # auditor downloads at submission, and its SHA-256; empty for a returned file.
    sa.Column("receipt", sa.LargeBinary, nullable=True),
    sa.Column("receipt_hash", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("audit_id", "content_hash", name="uq_returns_audit_content"),
    sa.Index(
        "uq_returns_one_current",
        "audit_id",
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    ),
)

answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("value", sa.Text, nullable=False, server_default=""),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),  # a question's evidence
    sa.UniqueConstraint("return_id", "key", name="uq_answers_return_key"),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
    sa.Column("table_key", sa.String(200), nullable=False),  # e.g. next_steps.actions
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("recommendation", sa.Text, nullable=False, server_default=""),
    sa.Column("action", sa.Text, nullable=False, server_default=""),
    sa.Column("responsible_role", sa.String(200), nullable=False, server_default=""),
    sa.Column("responsible_person", sa.String(200), nullable=False, server_default=""),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("sign_off", sa.String(200), nullable=False, server_default=""),
    sa.Column("sign_off_date", sa.Date, nullable=True),
    sa.Column("comments", sa.Text, nullable=False, server_default=""),
)

grades = sa.Table(
    "grades",
    metadata,
    sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), primary_key=True),
    sa.Column("auditor_grade", sa.String(80), nullable=False, server_default=""),
    sa.Column("moderated_grade", sa.String(80), nullable=False, server_default=""),
    sa.Column("moderated_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("moderated_at", sa.DateTime, nullable=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("event", sa.String(40), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("user_name", sa.String(200), nullable=False, server_default=""),
    # A reopened audit's moderation and sign-off events stay, marked with the reopen event.
    sa.Column("superseded_by", sa.Integer, nullable=True),
)

form_versions = sa.Table(
    "form_versions",
    metadata,
    # Every definition version that generated forms, as it was: old returns stay readable.
    sa.Column("form_id", sa.String(60), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),  # resolved definition, canonical JSON
    sa.Column("created_at", sa.DateTime, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("role", sa.String(60), nullable=False),  # roles, comma-separated: officer,admin
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id
    sa.Column("created_at", sa.DateTime, nullable=False),
    # Accounts are deactivated, never deleted: history keeps meaning the same person.
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("password_set_at", sa.DateTime, nullable=True),
    # TOTP (RFC 6238) second factor: the base32 secret ("" = not enrolled) and the last time
    # step accepted, so one code never signs in twice.
    sa.Column("totp_secret", sa.String(64), nullable=False, server_default=""),
    sa.Column("totp_enrolled_at", sa.DateTime, nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0"),
    # "local" (a password here) or "oidc" (the council's identity provider signs them in;
    # oidc_subject is "issuer|sub", and the roles come from the provider's claims).
    sa.Column("source", sa.String(10), nullable=False, server_default="local"),
    sa.Column("oidc_subject", sa.String(400), nullable=False, server_default=""),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # Only the SHA-256 of the cookie's random id: a copy of the database signs nobody in.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(80), sa.ForeignKey("users.name"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    # How it signed in: password, password+totp, oidc; "totp-pending" (password right, code
    # not yet given) opens nothing but the code page.
    sa.Column("method", sa.String(20), nullable=False, server_default="password"),
    sa.Index("ix_sessions_user_name", "user_name"),
)

sign_in_throttle = sa.Table(
    "sign_in_throttle",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # addr:..., acct:...|addr, name:...
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),  # seconds since the epoch
)

access_log = sa.Table(
    "access_log",
    metadata,
    # Append-only: database triggers refuse UPDATE, and DELETE outside the retention purge.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("user_name", sa.String(200), nullable=False),  # web:NAME or cli:LOGIN
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("audit_id", sa.String(80), nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_access_log_at", "at"),
    sa.Index("ix_access_log_user_name", "user_name"),
    sa.Index("ix_access_log_audit_id", "audit_id"),
)

access_log_purging = sa.Table(
    "access_log_purging", metadata, sa.Column("id", sa.Integer, primary_key=True)
)

# --- the outbox (issue 18): every email is claimed here before it goes, so it goes once ---
#: A message's life: queued (claimed, being sent) -> sent | failed (the server refused it;
#: the next send tries again) | unknown (queued and never finished: check the Sent Items;
#: never sent again on its own). `.eml` drafts are `drafted` until the officer marks them
#: sent. A claim is one audit's part in one message, unique per (audit, purpose, round):
#: the round is '' for the distribution and picked-for-audit emails (once per audit), the
#: chase date for a chase (one a day) and the request for an amendment email, so the
#: database, not luck, stops a second send of the same thing.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("purpose", sa.String(30), nullable=False),  # distribution, chase, ...
    sa.Column("stage", sa.String(12), nullable=False, server_default="audit"),  # or prepare
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("user_name", sa.String(200), nullable=False, server_default=""),
    # The later message that took this one's claims over (a retry, a resend): history now.
    sa.Column("superseded_by", sa.Integer, nullable=True),
)

outbox_claims = sa.Table(
    "outbox_claims",
    metadata,
    sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("round", sa.String(40), nullable=False, server_default=""),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("outbox.id"), nullable=False, index=True),
    sa.UniqueConstraint("audit_id", "purpose", "round", name="uq_outbox_claims_once"),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),  # e.g. the web session signing key
    sa.Column("value", sa.String(200), nullable=False),
)

server_heartbeat = sa.Table(
    "server_heartbeat",
    metadata,
    # One row per running `formtool serve`, refreshed every 30 s and removed when it stops
    # cleanly: `formtool restore` refuses while one was seen in the last 2 minutes.
    sa.Column("server", sa.String(64), primary_key=True),  # a random id per server start
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("seen_at", sa.DateTime, nullable=False),
)

#: The council's programme policies as they were used: one row per version, one active.
programmes = sa.Table(
    "programmes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),  # JSON: the policy as loaded
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("name", "version", name="uq_programmes_name_version"),
)

#: A chosen slot an allocation left for an auditor to name (audit_id set once named).
chosen_slots = sa.Table(
    "chosen_slots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), nullable=True),
    sa.Column("auditor", sa.String(200), nullable=False),
    sa.Column("sample", sa.String(200), nullable=False),
    sa.Column("form_id", sa.String(60), nullable=False),
    sa.Column("team", sa.String(200), nullable=False, server_default=""),
    sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: Challenges to an audit's grade (seed 001 App A paras 21-22): open until the senior
#: moderator decides; the decision is the moderated grade, and it stands.
challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("raised_at", sa.DateTime, nullable=False),
    sa.Column("raised_by", sa.String(200), nullable=False),  # who challenges the grade
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("senior_moderator", sa.String(200), nullable=False),  # an account's name
    sa.Column("decided_at", sa.DateTime, nullable=True),
    sa.Column("grade", sa.String(80), nullable=False, server_default=""),
    sa.Column("decision", sa.Text, nullable=False, server_default=""),
)

#: Immediate concerns for a child's safety or welfare: from a return that answered Yes or
#: raised by an officer; open until an officer records the action taken.
concerns = sa.Table(
    "concerns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
    sa.Column("source", sa.String(12), nullable=False),  # "return" or "officer"
    sa.Column("team", sa.String(200), nullable=False, server_default=""),
    sa.Column("details", sa.Text, nullable=False, server_default=""),
    sa.Column("told", sa.Text, nullable=False, server_default=""),  # who was told, and when
    sa.Column("raised_at", sa.DateTime, nullable=False),
    sa.Column("raised_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("action_taken", sa.Text, nullable=False, server_default=""),
    sa.Column("action_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("action_at", sa.DateTime, nullable=True),
)

#: Files an import rejected (issue 22), one row per distinct file (its bytes): against the
#: audit its identity names when that audit is in the store (with an event on the audit),
#: else an "unmatched file" (audit_id None) until an officer marks it dealt with. The same
#: file rejected again is counted on its row, never a second row. Every text is bounded.
rejections = sa.Table(
    "rejections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # sha256 of the file's bytes (of its name and reason when it could not be read at all)
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # Not a foreign key: `allocate --replace` drops audits nothing was stored for, and a file
    # rejected against one stays on record (then shown as unmatched, claiming that id).
    sa.Column("audit_id", sa.String(80), nullable=True, index=True),
    sa.Column("claimed_id", sa.String(80), nullable=False, server_default=""),
    sa.Column("file_name", sa.String(500), nullable=False),  # as shown: "reply.msg › a.docx"
    sa.Column("sender", sa.String(400), nullable=False, server_default=""),
    sa.Column("sent_at", sa.DateTime, nullable=True),  # the email's sent date
    sa.Column("code", sa.String(40), nullable=False),  # the issue code: not-a-zip, ...
    sa.Column("reason", sa.Text, nullable=False, server_default=""),  # its one-line message
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False),
    sa.Column("received_on", sa.Date, nullable=True),  # the programme's date, the last time
    sa.Column("times", sa.Integer, nullable=False, server_default="1"),
    sa.Column("imported_by", sa.String(200), nullable=False, server_default=""),
    # The audit's newest return id when the file first came: a return stored after it (a
    # higher id) supersedes the rejection; ids, unlike times, never tie.
    sa.Column("returns_before", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dealt_at", sa.DateTime, nullable=True),  # an unmatched file dealt with
    sa.Column("dealt_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("dealt_note", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("fingerprint", name="uq_rejections_fingerprint"),
)

# --- data protection (issue 23) ---
#: Every file formtool wrote to disk that holds personal data or figures (forms, packs,
#: exports, email drafts, backups, subject-access zips), so retention and erasure can find
#: and remove it. Not foreign keys: the row outlives the audit it came from.
stored_files = sa.Table(
    "stored_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.String(1000), nullable=False),  # absolute, as written
    sa.Column("kind", sa.String(30), nullable=False),  # form, file pack, pmu pack, ...
    sa.Column("audit_id", sa.String(80), nullable=True),
    sa.Column("case_number", sa.String(80), nullable=True),
    sa.Column("month", sa.String(7), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("written_at", sa.DateTime, nullable=False),
    sa.Column("written_on", sa.Date, nullable=True),  # the programme's date (the clock)
    sa.Column("written_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("removed_at", sa.DateTime, nullable=True),
    sa.Column("removed_why", sa.String(200), nullable=False, server_default=""),
    sa.Index("ix_stored_files_audit_id", "audit_id"),
    sa.Index("ix_stored_files_case_number", "case_number"),
    sa.Index("ix_stored_files_kind_written", "kind", "written_on"),
)

#: Anonymised counts kept per period when audits are removed (retention or erasure), so the
#: figures already reported stay reproducible: one row per month, tool, team, measure
#: ("audits", "grade", "kss", ...) and value ("Good", "kss1|Requires improvement", ...).
period_summaries = sa.Table(
    "period_summaries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("form_id", sa.String(60), nullable=False),
    sa.Column("team", sa.String(200), nullable=False, server_default=""),
    sa.Column("measure", sa.String(40), nullable=False),
    sa.Column("value", sa.String(200), nullable=False, server_default=""),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint(
        "month", "form_id", "team", "measure", "value", name="uq_period_summaries_cell"
    ),
)

#: The register of data-protection work: retention runs, subject access, corrections and
#: erasures, with why, who authorised and who did it. `reference` never holds the person's
#: identifiers (an erasure must not keep what it erased): a request number or the kind.
data_requests = sa.Table(
    "data_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),  # retention, subject access, ...
    sa.Column("subject", sa.String(30), nullable=False, server_default=""),  # child | staff
    sa.Column("reference", sa.String(200), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("authorised_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("done_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("done_at", sa.DateTime, nullable=False),
    sa.Column("done_on", sa.Date, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),  # JSON counts
)

#: OpenID Connect sign-ins under way: the state (hashed), nonce and PKCE verifier from the
#: redirect to the provider until its callback, used once, in the database so any worker can
#: finish what another started.
oidc_sign_ins = sa.Table(
    "oidc_sign_ins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("code_verifier", sa.String(130), nullable=False),
    sa.Column("next", sa.String(2000), nullable=False, server_default=""),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# --- several workers (issue 24): what the workspace shares lives here, not in one process ---

#: Allocation previews shown and not yet confirmed: made on one worker, confirmed on any
#: (the browser holds the random token, the database its SHA-256), removed on confirming or
#: after a few hours.
allocation_previews = sa.Table(
    "allocation_previews",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("user_name", sa.String(80), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
)

#: A preview's uploaded files (population, auditors, plan, staff), within the upload limits.
allocation_preview_files = sa.Table(
    "allocation_preview_files",
    metadata,
    sa.Column(
        "token_hash",
        sa.String(64),
        sa.ForeignKey("allocation_previews.token_hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(20), primary_key=True),  # population, auditors, plan, staff
    sa.Column("name", sa.String(255), nullable=False),  # as uploaded (made safe)
    sa.Column("content", sa.LargeBinary, nullable=False),
)

#: Small shared facts of the workspace by name: a generation counter bumped on every change
#: (`reports`: a worker's cached report counts only while the generation is the one it was
#: drawn at) and a short JSON text (`allocated YYYY-MM`: the last allocation confirmed).
workspace_state = sa.Table(
    "workspace_state",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("value", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

#: Background duties taken once across every worker and host: the first to insert the
#: (duty, day) row does it (the nightly backup, the daily access-log purge).
duty_claims = sa.Table(
    "duty_claims",
    metadata,
    sa.Column("duty", sa.String(80), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("server", sa.String(64), nullable=False),  # server_heartbeat.server
    sa.Column("host", sa.String(200), nullable=False, server_default=""),
    sa.Column("pid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
)

# --- web forms (issue 25): the private link an auditor fills the tool through ---

#: A private form link: a random token (only its SHA-256 kept) bound to one audit, one stage
#: and the copy of the audit it was issued for (a reassigned audit's old links die). It opens
#: nothing by itself: the page sends a one-time code (its SHA-256 here, for 10 minutes) to the
#: allocated address, and the code buys a short session (web_sessions).
web_links = sa.Table(
    "web_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id",
        sa.String(80),
        sa.ForeignKey("audits.audit_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("copy", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(12), nullable=False),  # "prepare" | "audit"
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    sa.Column("revoked_reason", sa.String(40), nullable=False, server_default=""),
    sa.Column("code_hash", sa.String(64), nullable=False, server_default=""),  # "": none live
    sa.Column("code_expires_at", sa.DateTime, nullable=True),
    sa.Column("code_tries", sa.Integer, nullable=False, server_default="0"),
    # Codes sent since codes_window_start (the rate limit: a few an hour per link).
    sa.Column("codes_sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("codes_window_start", sa.DateTime, nullable=True),
    sa.Column("wrong_codes", sa.Integer, nullable=False, server_default="0"),  # ever
)

#: A form session bought with a link and its one-time code: only the SHA-256 of the cookie.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column(
        "link_id",
        sa.Integer,
        sa.ForeignKey("web_links.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

#: The answers a web form saved before it was submitted, per audit and stage (children's
#: data: dropped when the stage's final return is stored, by erasure and by retention).
web_drafts = sa.Table(
    "web_drafts",
    metadata,
    sa.Column(
        "audit_id",
        sa.String(80),
        sa.ForeignKey("audits.audit_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(12), primary_key=True),
    sa.Column("values_json", sa.Text, nullable=False),  # JSON: field key -> value
    sa.Column("saved_at", sa.DateTime, nullable=False),
)
