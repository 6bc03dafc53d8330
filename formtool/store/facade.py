"""`Store`: the audit database as one object, the only way the rest of formtool reaches it.

Every public method is one unit of work: it opens its own connection (reads) or transaction
(writes), so where a transaction starts and ends is decided here and nowhere else. Reads return
rows (attribute access, no SQLAlchemy types needed by the caller) or plain values. Where a step
must decide something in the middle of a transaction (an allocation reads the history under
its lock), the caller passes the decision in as a function and the store runs it inside.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from formtool.definitions import FormDefinition, FormResolver
from formtool.errors import Issue
from formtool.periods import show_date
from formtool.store import (
    access,
    activities,
    audits,
    catalog,
    heartbeat,
    listing,
    outbox,
    programmes,
    queries,
    rejections,
    returns,
    users,
)
from formtool.store import backup as backups
from formtool.store.audits import StateError
from formtool.store.catalog import UnknownVersionsError
from formtool.store.engine import lock, now
from formtool.store.protection import ProtectionStore
from formtool.store.retention import RetentionStore
from formtool.store.schema import HELD_CHANNEL, HELD_REASSIGNED, HELD_SENDER, AuditState
from formtool.store.shared import SharedStore
from formtool.store.signin import SignInStore
from formtool.store.subjects import SubjectStore
from formtool.store.weblinks import WebLinkStore

#: Returns held for an officer to accept or refuse.
FOR_OFFICER = (HELD_SENDER, HELD_REASSIGNED, HELD_CHANNEL)

T = TypeVar("T")

#: The database refused or failed (not the input): commands stop with a one-line error.
DatabaseError = sa.exc.SQLAlchemyError
#: The database server itself said no (a permission, a constraint, a lost connection): not a
#: mistake in formtool's own use of SQLAlchemy, which stays a DatabaseError.
DriverError = sa.exc.DBAPIError


@dataclass(frozen=True)
class Move:
    """One audit's state change, as `move_state` makes it (see store/audits.py)."""

    audit_id: str
    allowed_from: tuple[AuditState, ...]
    to: AuditState
    event: str
    detail: str = ""
    why: str = ""
    due: dt.date | None = None  # the audit's new due date (an amendment), if it moves


@dataclass(frozen=True)
class AuditRecords:
    """What the database holds for one audit: its row with grades and current return (as
    `audit_rows` gives it), the current return's answers and action rows, every return it had
    and its events."""

    row: Any
    answers: dict[str, tuple[str, str]]
    actions: list[Any]
    history: list[Any]
    events: list[Any]


class AllocationReads:
    """What an allocation reads (and may clear) inside its own locked transaction."""

    def __init__(self, conn: sa.Connection, may_write: bool) -> None:
        self._conn, self._may_write = conn, may_write
        self.replaced = 0

    def month_allocations(self, month: str) -> list[Any]:
        return audits.month_allocations(self._conn, month)

    def allocation_history(
        self, since: str, until: str, year_from: str, year_to: str, counting: Collection[str] = ()
    ) -> tuple[set[str], Any]:
        return audits.allocation_history(self._conn, since, until, year_from, year_to, counting)

    def case_months(self) -> list[Any]:
        return queries.case_months(self._conn)

    def graded_before(self, month: str) -> list[Any]:
        return queries.graded_before(self._conn, month)

    def auditor_months(
        self, first: str, last: str, counting: Collection[str] = ()
    ) -> list[tuple[str, str]]:
        """(auditor, month) for each month first..last an auditor had an audit that counts."""
        return audits.auditor_months(self._conn, first, last, counting)

    def month_runs(self, month: str) -> list[Any]:
        """The month's activity runs (with their audits counted)."""
        return activities.runs(self._conn, months=[month])

    def run_subjects(self, run_ids: Collection[int]) -> list[tuple[int, str, str]]:
        """(run, subject, auditor) of the audits of these runs."""
        return activities.run_subjects(self._conn, run_ids)

    def next_run_id(self) -> int:
        """The number the next activity run takes (runs are numbered under the lock)."""
        return activities.next_run_id(self._conn)

    def subject_months(self, activity: str) -> dict[str, str]:
        return activities.subject_months(self._conn, activity)

    def month_case_file_audits(self, month: str) -> list[Any]:
        return activities.month_case_file_audits(self._conn, month)

    def drop_unstarted(self, month: str) -> int:
        """`allocate --replace`: remove the month's audits nothing has happened to yet."""
        if not self._may_write:
            raise RuntimeError("a preview reads the history; it never changes it")
        self.replaced = audits.drop_unstarted(self._conn, month)
        programmes.drop_open_choices(self._conn, month)
        activities.drop_empty_runs(self._conn, month)
        return self.replaced


@dataclass(frozen=True)
class Planned:
    """An allocation's outcome for the store: the audits and the definitions that make them."""

    records: list[audits.AuditRecord]
    forms: list[FormDefinition]
    choices: list[dict[str, str]] = field(default_factory=list)  # chosen slots left open
    runs: list[activities.RunRecord] = field(default_factory=list)  # activity runs it starts


class Store(ProtectionStore, RetentionStore, SubjectStore, SignInStore, SharedStore, WebLinkStore):
    """The audit database (SQLite or PostgreSQL), opened by `open_store`. The audit cycle's
    methods are here; data protection's and sign-in's in their own modules (units.py)."""

    def __repr__(self) -> str:
        return f"Store({self.url})"

    # --- form definitions (catalog.py) ---------------------------------------------------

    def form_for(self, form_id: str, version: int) -> FormDefinition | None:
        """The definition of `form_id` at `version`, current or stored; None if unknown."""
        return catalog.form_for(self.engine, form_id, version)

    def forms_of(self, audits: Iterable[Any], what: str) -> dict[str, FormDefinition]:
        """Each audit's definition by audit id; UnknownVersionsError names every audit whose
        form version this database does not hold (nothing is skipped in silence)."""
        return catalog.forms_of(self.engine, audits, what)

    def unknown_versions(self) -> dict[tuple[str, int], list[str]]:
        """Audits whose form version this database cannot resolve, by (form, version)."""
        return catalog.unknown_versions(self.engine)

    def resolver(self) -> FormResolver:
        """A reader's resolver backed by this database's snapshots."""
        return catalog.resolver(self.engine)

    def version_issues(self, forms: Iterable[FormDefinition]) -> list[Issue]:
        """`forms check` against the database: definitions changed without a new version."""
        return catalog.version_issues(self.engine, forms)

    # --- audits: reading -----------------------------------------------------------------

    def audit_rows(
        self,
        months: Collection[str] | None = None,
        states: Collection[str] | None = None,
        overdue_on: dt.date | None = None,
        audit_ids: Collection[str] | None = None,
        run_id: int | None = None,
        case_numbers: Collection[str] | None = None,
        brief: bool = False,
    ) -> list[Any]:
        """Audits with their grades and current return, in audit id order (`run_id`: one
        activity run's; `case_numbers`: those cases' audits; `brief`: without the facts)."""
        with self._read() as conn:
            return queries.audit_rows(
                conn, months, states, overdue_on, audit_ids, run_id, case_numbers, brief
            )

    def audit_list(
        self,
        sort: str = "audit",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
        **where: Any,
    ) -> listing.ListPage:
        """The audit list: the audits the filter (`where`: listing.ListFilter's fields) lets
        through, sorted, `limit` of them from `offset`, and how many match in all."""
        with self._read() as conn:
            found = listing.ListFilter(**where)
            return listing.audit_list(conn, found, sort, descending, offset, limit)

    def audit_list_choices(self, **where: Any) -> tuple[list[str], list[str]]:
        """The teams and auditors of the audits the filter lets through."""
        with self._read() as conn:
            return listing.list_choices(conn, listing.ListFilter(**where))

    def staff_activities(self) -> list[str]:
        """The activities with audits about a member of staff (staff data)."""
        with self._read() as conn:
            return listing.staff_activities(conn)

    # --- activity runs -------------------------------------------------------------------

    def activity_runs(
        self, activity: str | None = None, months: Collection[str] | None = None
    ) -> list[Any]:
        """Runs of the programme's activities with their audits counted, newest first."""
        with self._read() as conn:
            return activities.runs(conn, activity, months)

    def require_run(self, run_id: int) -> Any:
        """One run (StateError, one line with the fix, if there is none)."""
        with self._read() as conn:
            return activities.require_run(conn, run_id)

    def set_run(
        self,
        run_id: int,
        user: str,
        theme: str | None = None,
        owner: str | None = None,
        findings: str | None = None,
    ) -> Any:
        """Change a run's theme, owner or the group's agreed findings."""
        with self._write() as conn:
            return activities.set_run(conn, run_id, user, theme, owner, findings)

    def audit_row(self, audit_id: str) -> Any:
        """The audit's own row (None if there is no such audit)."""
        with self._read() as conn:
            return audits.audit_row(conn, audit_id)

    def require_audit(self, audit_id: str) -> Any:
        """The audit's own row; StateError (one line, with the fix) if there is no such
        audit."""
        row = self.audit_row(audit_id)
        if row is None:
            raise audits.unknown_audit(audit_id)
        return row

    def audit_state(self, audit_id: str) -> AuditState:
        with self._read() as conn:
            return audits.audit_state(conn, audit_id)

    def audit_records(self, audit_id: str) -> AuditRecords | None:
        """Everything held for one audit (None if there is no such audit)."""
        with self._read() as conn:
            rows = queries.audit_rows(conn, audit_ids=[audit_id])
            if not rows:
                return None
            row = rows[0]
            return AuditRecords(
                row,
                returns.return_answers(conn, row.return_id) if row.return_id else {},
                list(returns.return_actions(conn, row.return_id)) if row.return_id else [],
                queries.return_history(conn, audit_id),
                queries.audit_events(conn, audit_id),
            )

    def prepared_return(self, audit_id: str) -> Any:
        """The preparer's return of a two-stage audit (None if there is none)."""
        with self._read() as conn:
            return queries.prepared_return(conn, audit_id)

    def prepared_returns(self, audit_ids: Iterable[str]) -> dict[str, Any]:
        with self._read() as conn:
            return {a: queries.prepared_return(conn, a) for a in audit_ids}

    def return_content(self, return_id: int) -> Any:
        """A stored return's audit, file name and bytes (None if there is none)."""
        with self._read() as conn:
            return queries.return_content(conn, return_id)

    def set_return_receipt(self, return_id: int, pdf: bytes) -> str:
        """Keep the PDF of a web return's answers beside it (its "original bytes" with the
        JSON: read/web.py); its SHA-256."""
        with self._write() as conn:
            return returns.set_receipt(conn, return_id, pdf)

    def return_receipt(self, return_id: int) -> bytes | None:
        """The PDF kept with a web return (None: none kept, or removed by retention)."""
        with self._read() as conn:
            return returns.receipt(conn, return_id)

    def answers_by_return(self, return_ids: Iterable[int]) -> Any:
        with self._read() as conn:
            return queries.answers_by_return(conn, return_ids)

    def graded_rows(
        self,
        months: Collection[str] | None = None,
        case_numbers: Collection[str] | None = None,
        facts: bool = True,
        other_than: Collection[str] = (),
    ) -> list[Any]:
        """The audits of `months` (or of `case_numbers`, outside the months `other_than`)
        with only the columns figures and follow-ups read (`facts`: the pre-filled facts
        too), in audit id order."""
        with self._read() as conn:
            return queries.graded_rows(conn, months, case_numbers, facts, other_than)

    def audit_facts(self, audit_ids: Iterable[str]) -> dict[str, str]:
        """Audit id -> its pre-filled facts (JSON text), for many audits in few queries."""
        with self._read() as conn:
            return queries.audit_facts(conn, audit_ids)

    def answer_counts(
        self, months: Collection[str], states: Collection[str], keys: Collection[str]
    ) -> list[Any]:
        """(form_id, key, value, n) over the current returns of the case-file audits of
        `months` in `states`: the PMU figures' answer tallies, counted by the database."""
        with self._read() as conn:
            return queries.answer_counts(conn, months, states, keys)

    def action_counts(
        self, months: Collection[str], states: Collection[str], as_of: dt.date
    ) -> dict[str, int]:
        """Those audits' actions: raised, completed, open and overdue on `as_of`."""
        with self._read() as conn:
            return queries.action_counts(conn, months, states, as_of)

    def status_counts(self, months: Collection[str] | None, today: dt.date) -> list[Any]:
        """The audits of `months` (None: all) by (team, auditor, state, late) with how many:
        the month's status, counted by the database."""
        with self._read() as conn:
            return queries.status_counts(conn, months, today)

    def grade_counts(self, months: Collection[str]) -> list[Any]:
        """The case-file audits of `months` by (form_id, form_version, state, auditor_grade,
        moderated_grade) with how many: the trend's figures."""
        with self._read() as conn:
            return queries.grade_counts(conn, months)

    def actions_by_return(self, return_ids: Iterable[int]) -> list[Any]:
        with self._read() as conn:
            return queries.actions_by_return(conn, return_ids)

    def action_total(self, return_ids: Iterable[int]) -> int:
        """How many action rows these returns hold."""
        with self._read() as conn:
            return queries.action_total(conn, return_ids)

    def action_dicts(self, return_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The action rows of these returns, each as a dict of its columns."""
        return [dict(row._mapping) for row in self.actions_by_return(return_ids)]

    def export_rows(self) -> tuple[list[Any], list[Any], list[Any]]:
        """For `formtool export`: every answer row, every audit, every current action row."""
        with self._read() as conn:
            answer_rows = queries.export_answer_rows(conn)
            audit_list = queries.audit_rows(conn)
            actions = queries.actions_by_return(
                conn, {r.return_id for r in audit_list if r.return_id}
            )
        return answer_rows, audit_list, actions

    # --- audits: changing ----------------------------------------------------------------

    def record_audits(
        self, forms: Iterable[FormDefinition], records: Iterable[audits.AuditRecord], user: str
    ) -> int:
        """Add generated audits (state `allocated`) with the definitions that made their forms;
        refuses a changed definition whose version was not raised. How many were new."""
        with self._write() as conn:
            catalog.record_snapshots(conn, forms)
            return audits.upsert_audits(conn, records, user=user)

    def move(self, move: Move, user: str = "") -> AuditState:
        """One audit's state change; the state it had before."""
        return self.move_all([move], user)[0]

    def move_all(self, moves: Iterable[Move], user: str = "") -> list[AuditState]:
        """State changes in one transaction: all happen, or none."""
        with self._write() as conn:
            before = []
            for m in moves:
                before.append(
                    audits.move_state(
                        conn, m.audit_id, m.allowed_from, m.to, m.event, m.detail, user, m.why
                    )
                )
                if m.due is not None:
                    audits.set_due(conn, m.audit_id, m.due)
            return before

    def open_actions(self, audit_id: str) -> list[str]:
        """The current return's action rows (`table.row`) still needing a manager's sign-off."""
        with self._read() as conn:
            return returns.open_actions(conn, audit_id)

    def sign_off_action(
        self,
        audit_id: str,
        table_key: str,
        row: int,
        signed_by: str,
        on: dt.date,
        user: str,
        named: str = "",
    ) -> None:
        """Record a manager's sign-off on one action row, with an event naming it (`named`:
        as the form says it), while the audit is accepted and its actions are not yet
        signed off (StateError, one line, otherwise)."""
        with self._write() as conn:
            state = audits.audit_state(conn, audit_id, for_update=True)
            if state not in (AuditState.checked, AuditState.moderated):
                raise StateError(
                    f"Audit {audit_id} is {state.value}: an action is signed off once the "
                    "return is accepted and before the audit's actions are signed off."
                )
            if not returns.sign_off_row(conn, audit_id, table_key, row, signed_by, on):
                raise StateError(
                    f"Action {row} of audit {audit_id} is signed off already, or not in "
                    "its current return. Reload the page to see it."
                )
            what = named or f"action {row} of {table_key}"
            detail = f"{what} signed off by {signed_by} on {show_date(on)}"
            audits.record_event(conn, audit_id, "action signed off", detail, user)

    def move_once_signed_off(
        self, move: Move, user: str = "", check_in: Collection[AuditState] | None = None
    ) -> AuditState:
        """Move an audit on only if its current return has no action row lacking a manager's
        sign-off (checked in every state, or only in the states of `check_in`); raises
        `returns.OpenActions` naming the rows otherwise. The state it had before."""
        with self._write() as conn:
            state = audits.audit_state(conn, move.audit_id, for_update=True)
            if check_in is None or state in check_in:
                missing = returns.open_actions(conn, move.audit_id)
                if missing:
                    raise returns.OpenActions(move.audit_id, missing)
            return audits.move_state(
                conn,
                move.audit_id,
                move.allowed_from,
                move.to,
                move.event,
                move.detail,
                user,
                why=move.why,
            )

    def record_events(self, events: Iterable[tuple[str, str, str]], user: str = "") -> None:
        """(audit id, event, detail) for each, in one transaction."""
        with self._write() as conn:
            for audit_id, event, detail in events:
                audits.record_event(conn, audit_id, event, detail, user)

    # --- the outbox: every email claimed before it goes (outbox.py) ---------------------

    def held_claims(
        self, audit_ids: Collection[str], purposes: Collection[str], round_: str = ""
    ) -> dict[tuple[str, str], outbox.MessageState]:
        """(audit id, purpose) -> the state of the message already holding that claim."""
        with self._read() as conn:
            return outbox.held_claims(conn, audit_ids, purposes, round_)

    def claim_message(
        self,
        month: str,
        purpose: str,
        round_: str,
        stage: str,
        recipient: str,
        audit_ids: Iterable[str],
        subject_for: Callable[[tuple[str, ...]], str],
        user: str = "",
        again: Collection[outbox.MessageState] = (),
    ) -> outbox.Claim:
        """Claim the audits' part in one new queued message, in one transaction under the
        outbox lock: audits another message holds (sent, queued, unknown, drafted; unknown
        and drafted ones not in `again`) are left out, failed ones are taken over."""
        with self._write() as conn:
            return outbox.claim(
                conn, month, purpose, round_, stage, recipient, audit_ids, subject_for, user, again
            )

    def settle_message(
        self,
        message_id: int,
        state: outbox.MessageState,
        deliveries: Callable[[outbox.OutboxMessage], Iterable[outbox.Delivery]] = lambda m: (),
        user: str = "",
        error: str = "",
    ) -> outbox.OutboxMessage:
        """A claimed message's outcome (sent, drafted, failed or unknown) with what it means
        for the audits it still holds (events, `allocated` -> `sent`), in one transaction."""
        with self._write() as conn:
            return outbox.settle(conn, message_id, state, deliveries, user, error)

    def mark_messages_sent(
        self,
        month: str | None,
        deliveries: Callable[[outbox.OutboxMessage], Iterable[outbox.Delivery]],
        user: str = "",
        audit_ids: Collection[str] | None = None,
        purposes: Collection[str] | None = None,
        round_: str | None = None,
    ) -> list[outbox.OutboxMessage]:
        """The officer says these went: the month's drafts, or with `audit_ids` its drafts and
        messages of unknown fate carrying those audits; each is sent now. `purposes` and
        `round_` narrow it to one kind (a day's chase drafts, an amendment email)."""
        with self._write() as conn:
            return outbox.mark_sent(conn, month, deliveries, user, audit_ids, purposes, round_)

    def outbox_messages(
        self,
        month: str | None = None,
        purposes: Collection[str] | None = None,
        round_: str | None = None,
    ) -> list[outbox.OutboxMessage]:
        """Messages holding claims now, oldest first (a stale queued one shows as unknown)."""
        with self._read() as conn:
            return outbox.messages(conn, month, purposes, round_)

    def events_named(
        self, audit_ids: Collection[str], names: Collection[str]
    ) -> dict[str, list[tuple[dt.datetime, str]]]:
        """Audit id -> its events of these names as (time, name), oldest first."""
        with self._read() as conn:
            return outbox.events_named(conn, audit_ids, names)

    def moderate(
        self,
        audit_id: str,
        grade: str,
        by: str,
        detail: str,
        user: str,
        moves_from: Collection[AuditState],
        regrades_in: Collection[AuditState],
        decision: str | None = None,
    ) -> tuple[AuditState, str | None]:
        """Record a moderated grade: an audit in `moves_from` becomes `moderated`, one in
        `regrades_in` keeps its state. (state after, the auditor's grade) or, when the audit
        is in neither, (its state, None) and nothing is written. With `decision` (why), it is
        the senior moderator's decision on the audit's open challenge, recorded with it; after
        that the grade stands (StateError)."""
        with self._write() as conn:
            state = audits.audit_state(conn, audit_id, for_update=True)
            decided = programmes.decided_challenge(conn, audit_id)
            if decided is not None:
                raise StateError(
                    f"Audit {audit_id}'s grade was decided on challenge by "
                    f"{decided.senior_moderator} ({decided.grade}); that decision stands."
                )
            if state not in moves_from and state not in regrades_in:
                return state, None
            if decision is not None:
                programmes.decide_challenge(conn, audit_id, grade, decision, user)
            if state in moves_from:
                audits.move_state(
                    conn, audit_id, [state], AuditState.moderated, "moderated", detail, user
                )
                state = AuditState.moderated
            else:
                audits.record_event(conn, audit_id, "moderated", detail, user)
            return state, audits.record_moderation(conn, audit_id, grade, by)

    def allocate(
        self,
        month: str,
        mode: str,
        seed: int,
        plan: Callable[[AllocationReads], Planned],
        user: str = "",
        programme: tuple[str, int] = ("", 0),
    ) -> int:
        """One allocation under the allocation lock: `plan` reads the history (and may clear
        the month's unstarted audits) in this transaction, then its audits are recorded with
        the programme (name, version) it ran under and the chosen slots it left open.
        Returns how many unstarted audits it replaced."""
        with self._write() as conn:
            lock(conn, "formtool allocation")
            reads = AllocationReads(conn, may_write=True)
            planned = plan(reads)
            catalog.record_snapshots(conn, planned.forms)

            def record_runs(allocation_id: int) -> None:
                activities.record_runs(conn, planned.runs, allocation_id, user, programme)

            allocation_id = audits.record_allocation(
                conn,
                month,
                mode,
                seed,
                planned.records,
                reads.replaced,
                user,
                programme,
                record_runs,
            )
            programmes.add_choices(conn, month, allocation_id, planned.choices)
            return reads.replaced

    def preview_allocation(self, work: Callable[[AllocationReads], T]) -> T:
        """Run `work` on the history an allocation would read, changing nothing."""
        with self._read() as conn:
            return work(AllocationReads(conn, may_write=False))

    # --- returns -------------------------------------------------------------------------

    def known_content(self, content_hash: str) -> str | None:
        """The audit a file with these exact bytes was already stored for, if any."""
        with self._read() as conn:
            return returns.known_content(conn, content_hash)

    def known_return(self, content_hash: str) -> Any:
        """The stored return with exactly these bytes (id, audit_id, held), if any."""
        with self._read() as conn:
            return returns.known_return(conn, content_hash)

    def return_context(self, audit_id: str, two_stage: bool) -> tuple[Any, str, Any]:
        """What reading a return for `audit_id` needs: the audit row (None if unknown), the
        stage a return would be now, and the preparer's answers (two-stage forms; or None)."""
        with self._read() as conn:
            audit = audits.audit_row(conn, audit_id)
            if audit is None:
                return None, "", None
            stage = returns.return_stage(conn, audit_id, two_stage)
            prepared = queries.prepared_return(conn, audit_id) if two_stage else None
            answers = returns.return_answers(conn, prepared.id) if prepared is not None else None
            return audit, stage, answers

    def store_return(
        self,
        record: returns.ReturnRecord,
        file: returns.ReturnFile,
        stage: str,
        two_stage: bool = False,
        user: str = "",
        hold: str = "",
    ) -> returns.Stored:
        """Store one validated return (held for an officer when `hold` says why); tried
        again once if the database refused it for a concurrent writer (a deadlock, or a
        duplicate another process stored first)."""
        try:
            return returns.store_return(self.engine, record, file, stage, two_stage, user, hold)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            if isinstance(exc, sa.exc.OperationalError) and "deadlock" not in str(exc).lower():
                raise
            return returns.store_return(self.engine, record, file, stage, two_stage, user, hold)

    def held_returns(self, reasons: Collection[str] = FOR_OFFICER) -> list[returns.HeldReturn]:
        """Returns waiting for an officer (by default: those from a stranger's address, those
        of a copy the audit had before it was reassigned, and a final return by one channel
        when the other's came first)."""
        with self._read() as conn:
            return returns.held_returns(conn, list(reasons))

    def _grades_of(self, conn: sa.Connection, audit_id: str, return_id: int) -> tuple[str, str]:
        """A stored return's grade and moderated grade, by its form's judgements."""
        audit = audits.audit_row(conn, audit_id)
        form = catalog.form_in(conn, audit.form_id, audit.form_version)
        if form is None:
            missing = {(audit.form_id, audit.form_version): [audit_id]}
            raise UnknownVersionsError(missing, f"Audit {audit_id}")
        answers = returns.return_answers(conn, return_id)
        j = form.judgements
        return answers.get(j.grade, ("", ""))[0], answers.get(j.moderated_grade, ("", ""))[0]

    def accept_held(self, return_id: int, user: str = "") -> returns.Stored:
        """An officer accepts a held return: it takes its place as if just imported."""
        with self._write() as conn:
            held = returns.held_return(conn, return_id, list(FOR_OFFICER))
            if held is None:
                raise StateError(returns.not_held(conn, return_id))
            grade, moderated = self._grades_of(conn, held.audit_id, held.id)
            return returns.release_held(conn, held, grade, moderated, user)

    def return_audit(self, return_id: int) -> str:
        """The audit a stored return belongs to ("" if there is no such return)."""
        with self._read() as conn:
            return str(returns.audit_of(conn, return_id) or "")

    def refuse_held(self, return_id: int, reason: str, user: str = "") -> str:
        """An officer refuses a held return: it stays as history, marked refused. Its audit."""
        with self._write() as conn:
            held = returns.held_return(conn, return_id, list(FOR_OFFICER))
            if held is None:
                raise StateError(returns.not_held(conn, return_id))
            returns.refuse_held(conn, held, reason, user)
            return str(held.audit_id)

    # --- rejected files (rejections.py) ----------------------------------------------------

    def record_rejection(
        self, rejection: rejections.Rejection, user: str = ""
    ) -> rejections.Recorded:
        """Record a file an import rejected (against its audit, with an event, or unmatched);
        the same file again is counted on its row."""
        with self._write() as conn:
            return rejections.record(conn, rejection, user)

    def rejected_files(
        self, audit_id: str | None = None, open_only: bool = False, rejection_id: int | None = None
    ) -> list[Any]:
        """Rejected files newest first, with their audit's state and whether a later return
        superseded them (see rejections.rows)."""
        with self._read() as conn:
            return rejections.rows(conn, audit_id, open_only, rejection_id)

    def deal_with_rejection(self, rejection_id: int, note: str, user: str = "") -> Any:
        """An officer marks an unmatched file dealt with, with a note; its row after."""
        with self._write() as conn:
            return rejections.deal_with(conn, rejection_id, note, user)

    def reopen(
        self, audit_id: str, reason: str, user: str = ""
    ) -> tuple[AuditState, returns.Stored | None]:
        """Reopen an accepted audit (see returns.reopen); the newest return kept since it
        was accepted takes its place. (state before, what became of that return or None)"""
        with self._write() as conn:
            if audits.audit_row(conn, audit_id) is None:
                raise StateError(f"Audit {audit_id} is not in the database")
            before, waiting = returns.reopen(conn, audit_id, reason, user)
            if waiting is None:
                return before, None
            grade, moderated = self._grades_of(conn, audit_id, waiting.id)
            why = "kept since the audit was accepted; current after the reopen"
            return before, returns.release_held(conn, waiting, grade, moderated, user, why)

    def identity_key(self) -> bytes:
        """The database's own key for form identity checksums (made once, kept in it)."""
        return self.server_secret("identity").encode("ascii")

    def fix_identity_key(self, text: str) -> bool:
        """Give a database without one a known identity key: for the demo only, whose
        forms are then the same on every run. False (nothing changed) if it has a key."""
        with self._write() as conn:
            return users.plant_secret(conn, "identity", text)

    def checksum_schemes(self, audit_ids: Iterable[str]) -> dict[str, str]:
        """Audit id -> how its forms' checksum is made, for those already recorded."""
        with self._read() as conn:
            return audits.checksum_schemes(conn, list(audit_ids))

    def unkeyed_audits(self) -> int:
        """Open audits whose forms still carry the unkeyed checksum (issued before keying)."""
        with self._read() as conn:
            return audits.unkeyed_open(conn)

    # --- accounts, sessions, the server's secret (users.py) ------------------------------

    # --- the programme: policy, chosen slots, concerns (programmes.py) ---------------------

    def use_policy(
        self, name: str, snapshot: dict[str, Any], user: str = ""
    ) -> tuple[programmes.StoredPolicy, bool]:
        """Make the policy active (a new version if its content changed); (it, new?)."""
        with self._write() as conn:
            return programmes.use_policy(conn, name, snapshot, user)

    def active_policy(self) -> programmes.StoredPolicy | None:
        """The programme policy in force; None: none chosen yet (the default applies)."""
        with self._read() as conn:
            return programmes.active_policy(conn)

    def policy_versions(self) -> list[programmes.StoredPolicy]:
        with self._read() as conn:
            return programmes.policy_versions(conn)

    def open_choices(self, month: str | None = None) -> list[Any]:
        """Chosen slots an allocation left for auditors to name, not yet named."""
        with self._read() as conn:
            return programmes.open_choices(conn, month)

    def name_choices(
        self,
        month: str,
        named: list[tuple[int, audits.AuditRecord]],
        forms: list[FormDefinition],
        user: str = "",
    ) -> int:
        """Record the cases auditors chose for open slots (slot id, audit) as the month's
        audits, in one transaction under the allocation lock; a slot named meanwhile by
        another run stops it with nothing recorded."""
        with self._write() as conn:
            lock(conn, "formtool allocation")
            for _, record in named:  # checked before the lock: another run may have named it
                if audits.audit_row(conn, record.audit_id) is not None:
                    raise StateError(
                        f"Audit {record.audit_id} was recorded by another run while this one "
                        "checked it; nothing was recorded. Check `formtool status`."
                    )
            catalog.record_snapshots(conn, forms)
            audits.upsert_audits(conn, [record for _, record in named], None, user)
            for slot_id, record in named:
                if not programmes.fill_choice(conn, slot_id, record.audit_id):
                    raise StateError(
                        f"The chosen slot for {record.auditor} in {month} was named by someone "
                        "else while this ran; nothing was recorded. Check `formtool status`."
                    )
                audits.record_event(conn, record.audit_id, "chosen", "named by the auditor", user)
            return len(named)

    def reassign(self, record: audits.AuditRecord, reason: str, user: str = "") -> int:
        """Give the audit to another auditor as a new copy of its form; its copy number."""
        with self._write() as conn:
            return programmes.reassign(conn, record, reason, user)

    def earlier_copy(self, audit_id: str, checksum: str) -> Any:
        """The copy before a reassignment whose form carries this checksum, if any."""
        with self._read() as conn:
            return programmes.earlier_copy(conn, audit_id, checksum)

    def challenges(self, audit_id: str) -> list[Any]:
        with self._read() as conn:
            return programmes.challenge_rows(conn, audit_id)

    def add_challenge(
        self, audit_id: str, by: str, reason: str, senior: str, user: str = ""
    ) -> int:
        """Record a challenge to the audit's grade, for the senior moderator to decide."""
        with self._write() as conn:
            return programmes.add_challenge(conn, audit_id, by, reason, senior, user)

    def raise_concern(
        self,
        audit_id: str,
        source: str,
        details: str,
        told: str,
        return_id: int | None = None,
        user: str = "",
    ) -> programmes.Concern | None:
        """Record an immediate concern (None: the same one is already open)."""
        with self._write() as conn:
            return programmes.raise_concern(conn, audit_id, source, details, told, return_id, user)

    def concerns(
        self, open_only: bool = False, audit_id: str | None = None
    ) -> list[programmes.Concern]:
        with self._read() as conn:
            return programmes.concern_list(conn, open_only, audit_id)

    def unsent_concerns(self, purpose: str) -> list[programmes.Concern]:
        """Concerns whose email (outbox purpose `purpose`) has not gone, oldest first."""
        with self._read() as conn:
            return programmes.unsent_concerns(conn, purpose)

    def concern(self, concern_id: int) -> programmes.Concern | None:
        with self._read() as conn:
            return programmes.concern_by_id(conn, concern_id)

    def record_concern_action(
        self, concern_id: int, action: str, user: str = ""
    ) -> programmes.Concern:
        with self._write() as conn:
            return programmes.record_action(conn, concern_id, action, user)

    def user(self, name: str) -> Any:
        with self._read() as conn:
            return users.user(conn, name)

    def active_user(self, name: str) -> Any:
        """The active account called `name`, or AccountError saying there is none."""
        with self._read() as conn:
            return users.require_user(conn, name)

    def users(self, include_inactive: bool = False) -> list[Any]:
        with self._read() as conn:
            return users.all_users(conn, include_inactive)

    def active_admins(self) -> list[str]:
        with self._read() as conn:
            return users.active_admins(conn)

    def add_user(self, name: str, role: str, password_hash: str, must_change: bool) -> bool:
        """A new account, or a deactivated one of that name active again; False if an active
        account has the name."""
        with self._write() as conn:
            users.lock_accounts(conn)
            return users.add_user(conn, name, role, password_hash, must_change) or (
                users.reactivate_user(conn, name, role, password_hash, must_change)
            )

    def deactivate_user(self, name: str) -> None:
        """Deactivate an active account (never the last admin) and end its sessions."""
        with self._write() as conn:
            users.lock_accounts(conn)
            found = users.require_user(conn, name)
            users.keep_an_admin(conn, found.name, ())
            users.deactivate_user(conn, found.name)

    def set_roles(self, name: str, roles: tuple[str, ...]) -> Any:
        """New roles for an active account (never taking the last admin's); its sessions end.
        The account's row after."""
        with self._write() as conn:
            users.lock_accounts(conn)
            found = users.require_user(conn, name)
            users.keep_an_admin(conn, found.name, roles)
            users.set_role(conn, found.name, ",".join(roles))
            users.end_user_sessions(conn, found.name)
            return users.user(conn, found.name)

    def set_password(self, name: str, password_hash: str, must_change: bool) -> None:
        """A new password hash for an active account; every session of it ends."""
        with self._write() as conn:
            found = users.require_user(conn, name)
            users.set_password_hash(conn, found.name, password_hash, must_change)
            users.end_user_sessions(conn, found.name)

    def rehash_password(self, name: str, old_hash: str, new_hash: str) -> None:
        with self._write() as conn:
            users.rehash_password(conn, name, old_hash, new_hash)

    def require_password_change(self, name: str, password_hash: str) -> None:
        with self._write() as conn:
            users.set_password_hash(conn, name, password_hash, must_change=True)

    def add_session(self, id_hash: str, name: str, address: str, at: dt.datetime) -> None:
        with self._write() as conn:
            users.add_session(conn, id_hash, name, address, at)

    def session(self, id_hash: str) -> Any:
        with self._read() as conn:
            return users.session(conn, id_hash)

    def touch_session(self, id_hash: str, at: dt.datetime) -> None:
        with self._write() as conn:
            users.touch_session(conn, id_hash, at)

    def end_session(self, id_hash: str) -> None:
        with self._write() as conn:
            users.end_session(conn, id_hash)

    def live_sessions(self, idle_since: dt.datetime, created_since: dt.datetime) -> list[Any]:
        """End the sessions idle or alive too long, then list the rest."""
        with self._write() as conn:
            users.end_stale_sessions(conn, idle_since, created_since)
            return users.all_sessions(conn)

    def sign_out(self, name: str | None) -> int:
        """End the sessions of `name` (an account, active or not), or of everybody (None)."""
        with self._write() as conn:
            if name is None:
                return users.end_all_sessions(conn)
            return users.end_user_sessions(conn, users.require_user(conn, name, active=False).name)

    def server_secret(self, name: str = "session") -> str:
        return users.server_secret(self.engine, name)

    # --- the sign-in throttle's counters ------------------------------------------------

    def throttle(
        self,
        keys: list[str],
        clock: Callable[[], float],
        decide: Callable[[dict[str, tuple[int, float]], float], tuple[T, list[str], float]],
    ) -> T:
        """One sign-in attempt under the sign-in lock: `decide(counts, now)` (the time read
        under the lock, so no attempt is stored later than it) says its answer, which keys
        to count a failure against, and before when old failures are forgotten."""
        with self._write() as conn:
            lock(conn, "formtool sign-in")
            at = clock()
            answer, count, forget_before = decide(users.throttle_rows(conn, keys), at)
            for key in count:
                users.count_failure(conn, key, at, forget_before)
            return answer

    def forgive(self, forget: Iterable[str], forgive: Iterable[str]) -> None:
        """Forget every failure of `forget`'s keys, and one of each of `forgive`'s."""
        with self._write() as conn:
            lock(conn, "formtool sign-in")
            users.forget_failures(conn, list(forget))
            for key in forgive:
                users.forgive_failure(conn, key)

    def forget_old_failures(self, before: float) -> None:
        with self._write() as conn:
            users.forget_old_failures(conn, before)

    # --- the access log (access.py) ------------------------------------------------------

    def log_access(
        self, user: str, action: str, audit_id: str | None, address: str, detail: str
    ) -> None:
        with self._write() as conn:
            access.add_entry(conn, user, action, audit_id, address, detail)

    def access_entries(
        self,
        user: str | None,
        audit_id: str | None,
        since: dt.datetime | None,
        limit: int | None,
    ) -> list[Any]:
        with self._read() as conn:
            return access.entries(conn, user, audit_id, since, limit)

    def purge_access_log(self, keep_days: int, user: str) -> int:
        """Remove entries older than `keep_days` (the only delete path; it logs itself)."""
        with self._write() as conn:
            return access.purge_access_log(conn, now() - dt.timedelta(days=keep_days), user)

    # --- backups and the running server's heartbeat (backup.py, heartbeat.py) ------------

    def backup(self, target: Path, user: str, keep: int | None = None) -> backups.BackupReport:
        """A verified backup at `target` (a file, or a folder for a dated name; `keep`: only
        the newest `keep` stay there), safe while others write, recorded in the access log."""
        return backups.take_backup(self.engine, target, user, keep)

    def server_beat(self, server: str, host: str, pid: int) -> None:
        """The running server `server` is alive now (`formtool serve`, every 30 s)."""
        with self._write() as conn:
            heartbeat.beat(conn, server, host, pid)

    def server_stopped(self, server: str) -> None:
        with self._write() as conn:
            heartbeat.stopped(conn, server)

    def running_servers(self) -> list[Any]:
        """Servers whose heartbeat is fresh: host, pid, started_at, seen_at (UTC)."""
        with self._read() as conn:
            return heartbeat.running_servers(conn)
