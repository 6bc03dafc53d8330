"""Retention: what the programme's schedule says is past its period today, and removing it.

`plan` reads the store, the policy's schedule (`retention:`, else formtool's defaults) and
formtool's clock (never the machine's date) and changes nothing: per kind of record, what is
due, the oldest, the period and what it is counted from, and what is past its period but kept
(an audit still open), with why. `apply` removes what a plan found due: the access log's old
entries first (so the removals that follow stay logged), then each audit in one transaction
of its own (`Store.remove_audit`, which folds its anonymised counts into the period summary),
with its tracked files; then the original files of returns, outbox rows, tracked files on
disk and dated backups; and the web forms' saved drafts of audits no longer waiting for an
answer (children's data, kept no longer than the form is open). Every removal is in the
access log and the run in the register of data-protection work. Stopped part-way, what went
is listed and a second run carries on: an audit is wholly there or wholly gone, and files
whose audit has gone are due at once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool.errors import FormtoolError, printable
from formtool.periods import Month, PeriodError
from formtool.programme.policy import Keep, Period, Policy
from formtool.protect.summary import remove_files, summary_cells
from formtool.store import (
    BACKUP,
    EMAIL_DRAFT,
    EXPORT,
    FILE_PACK,
    FORM,
    OUTSTANDING,
    PMU_PACK,
    REPORT,
    SUBJECT_ACCESS,
    AuditState,
    DatabaseError,
    Store,
    failure,
)

#: An audit is finished, and its period may end, once it is one of these.
FINISHED = frozenset({AuditState.closed, AuditState.exempted, AuditState.filed_unaudited})
_FINISHED_WORDS = "closed, exempted or filed unaudited"
#: The tracked files each schedule kind keeps.
FILE_KINDS = {
    "files": (FORM, FILE_PACK, PMU_PACK, REPORT),
    "exports": (EXPORT,),
    "email": (EMAIL_DRAFT,),
    "backups": (BACKUP,),
    "subject_access": (SUBJECT_ACCESS,),
}
#: At most this many records a line of the text report names as kept; --json lists them all.
SHOWN = 50
#: Return files emptied, outbox rows and files removed per transaction (and progress step).
BATCH = 100


class RetentionError(FormtoolError):
    """A retention run stopped; the message says what, the fix and what was removed first."""


@dataclass(frozen=True)
class Line:
    """One kind of record in a plan: what --apply removes (`due`: audit ids, return ids,
    outbox ids, tracked file rows, backup paths), the oldest of them, and what is past its
    period but kept, with why."""

    key: str  # audits, return files, outbox, email drafts, files, exports, access log, ...
    what: str  # the records, in words
    period: str  # "6 years"
    counted: str  # what the period is counted from, and any condition
    source: str  # where the figure comes from (the policy's `source:`)
    due: tuple[Any, ...] = ()
    oldest: dt.date | None = None
    kept: tuple[tuple[str, str], ...] = ()  # (which record, why it stays)
    count: int | None = None  # the access log's entries are counted, not listed

    @property
    def number(self) -> int:
        return len(self.due) if self.count is None else self.count

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.key,
            "records": self.what,
            "due": self.number,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "period": self.period,
            "counted_from": self.counted,
            "source": self.source,
            "not_removable": [{"record": r, "why": w} for r, w in self.kept],
        }


@dataclass(frozen=True)
class Plan:
    """What retention would remove today (see the module docstring)."""

    today: dt.date
    programme: str  # "hull v2"
    lines: tuple[Line, ...]
    access_log_before: dt.datetime | None = None  # entries older than this are due

    def line(self, key: str) -> Line:
        return next(line for line in self.lines if line.key == key)

    @property
    def kept(self) -> int:
        return sum(len(line.kept) for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "programme": self.programme,
            "due": sum(line.number for line in self.lines),
            "not_removable": self.kept,
            "kinds": [line.as_dict() for line in self.lines],
        }


@dataclass
class Applied:
    """What an --apply run removed, per line of its plan, and its number in the register."""

    removed: Counter[str] = field(default_factory=Counter)
    files_deleted: int = 0  # tracked files that were still on disk
    request: int | None = None

    def said(self) -> str:
        parts = [f"{n} {_NOUNS.get(key, key)}" for key, n in self.removed.items() if n]
        return ", ".join(parts) or "nothing"

    def as_dict(self) -> dict[str, Any]:
        return {
            "removed": dict(self.removed),
            "files_deleted": self.files_deleted,
            "register": self.request,
        }


#: How a line's removals are said ("3 audit(s)").
_NOUNS = {
    "audits": "audit(s)",
    "return files": "original return file(s) emptied",
    "outbox": "outbox row(s)",
    "email drafts": "email draft(s)",
    "files": "file(s)",
    "exports": "export(s)",
    "access log": "access-log entries",
    "backups": "backup(s)",
    "subject access": "subject-access zip(s)",
    "web drafts": "web form draft(s)",
}


# --- the plan -----------------------------------------------------------------------------


def plan(
    db: Store,
    policy: Policy,
    today: dt.date,
    access_log_days: int | None = None,
    backup_dirs: Sequence[Path] = (),
) -> Plan:
    """What is due today under `policy` (see the module docstring). `access_log_days`
    (formtool.toml) shortens the access log's period when it is the shorter; `backup_dirs`
    are searched for dated backups besides the folders tracked backups were written to."""
    rows = db.retention_audits()
    audits = _audits(rows, policy.kept_for("audits"), today)
    going = set(audits.due)
    present = {row.audit_id for row in rows} - going
    access, before = _access_log(db, policy.kept_for("access_log"), today, access_log_days)
    lines = (
        audits,
        _return_files(db, policy.kept_for("return_files"), today, going),
        _outbox(db, policy.kept_for("email"), today, going),
        _files(db, "email drafts", "email", policy, today, present),
        _files(db, "files", "files", policy, today, present),
        _files(db, "exports", "exports", policy, today, present),
        access,
        _backups(db, policy.kept_for("backups"), today, backup_dirs),
        _files(db, "subject access", "subject_access", policy, today, present),
        _web_drafts(db),
    )
    return Plan(today, f"{policy.name} v{policy.version}", lines, before)


def _ended(period: Period, start: dt.date, today: dt.date) -> bool:
    """The period counted from `start` is over: the record may go from that day on."""
    return period.after(start) <= today


def _audits(rows: list[Any], keep: Keep, today: dt.date) -> Line:
    period = keep.period
    due: list[str] = []
    kept: list[tuple[str, str]] = []
    oldest = None
    for row in rows:
        try:
            start = Month(row.month).last_day
        except PeriodError:
            kept.append((row.audit_id, f"its month '{printable(row.month, 20)}' is not a month"))
            continue
        if not _ended(period, start, today):
            continue
        if row.state not in FINISHED:
            kept.append((row.audit_id, f"still {row.state}: it goes once {_FINISHED_WORDS}"))
            continue
        due.append(row.audit_id)
        oldest = min(oldest or start, start)
    return Line(
        "audits",
        "audits with everything held for them (answers, returns, events, concerns, emails)",
        str(period),
        f"the end of the audit's month, once it is {_FINISHED_WORDS}",
        keep.source,
        tuple(due),
        oldest,
        tuple(kept),
    )


def _return_files(db: Store, keep: Keep, today: dt.date, going: set[str]) -> Line:
    period = keep.period
    due: list[int] = []
    kept: list[tuple[str, str]] = []
    oldest = None
    for row in db.retention_returns():
        start = row.received_on or row.imported_at.date()
        if row.audit_id in going or not _ended(period, start, today):
            continue  # a return of an audit that goes now goes with it
        if row.state not in FINISHED:
            why = f"its audit {row.audit_id} is still {row.state}"
            kept.append((f"return {row.id}", why))
            continue
        due.append(row.id)
        oldest = min(oldest or start, start)
    return Line(
        "return files",
        "original return files (the answers read from them stay)",
        str(period),
        f"the day the return came in, once its audit is {_FINISHED_WORDS}",
        keep.source,
        tuple(due),
        oldest,
        tuple(kept),
    )


def _outbox(db: Store, keep: Keep, today: dt.date, going: set[str]) -> Line:
    period = keep.period
    due: list[int] = []
    kept: list[tuple[str, str]] = []
    oldest = None
    for message, claims in db.retention_outbox():
        start = message.created_at.date()
        carried = {audit_id for audit_id, _ in claims}
        if (carried and carried <= going) or not _ended(period, start, today):
            continue  # a message about audits that go now goes with them
        still = sorted(a for a, state in claims if a not in going and state not in FINISHED)
        if still:
            kept.append((f"outbox message {message.id}", f"its audit {still[0]} is still open"))
            continue
        due.append(message.id)
        oldest = min(oldest or start, start)
    return Line(
        "outbox",
        "outbox rows (whom each email went to, its subject and fate)",
        str(period),
        f"the day the email was made, once every audit it carries is {_FINISHED_WORDS}",
        keep.source,
        tuple(due),
        oldest,
        tuple(kept),
    )


def _written(row: Any) -> dt.date:
    return row.written_on or row.written_at.date()


def _files(
    db: Store, key: str, kind: str, policy: Policy, today: dt.date, present: set[str]
) -> Line:
    """Tracked files of a schedule kind: due once their period is over, or at once when the
    audit a file is about goes now or has gone."""
    keep = policy.kept_for(kind)
    period = keep.period
    due = [
        row
        for row in db.stored_files(kinds=FILE_KINDS[kind])
        if _ended(period, _written(row), today)
        or (row.audit_id is not None and row.audit_id not in present)
    ]
    words = {
        "email drafts": "email drafts (.eml) written to disk",
        "files": "forms, file packs, PMU packs and reports written to disk",
        "exports": "exports written to disk",
        "subject access": "subject-access zips",
    }[key]
    return Line(
        key,
        words,
        str(period),
        "the day the file was written, or at once when its audit goes",
        keep.source,
        tuple(due),
        min((_written(r) for r in due), default=None),
    )


def _access_log(
    db: Store, keep: Keep, today: dt.date, days: int | None
) -> tuple[Line, dt.datetime]:
    """The access log keeps the shorter of the policy's period and access_log_days
    (formtool.toml), which `formtool serve`'s daily purge and `access-log --purge` use."""
    period = keep.period
    cutoff, figure, source = period.before(today), str(period), keep.source
    if days is not None and days < period.shortest:  # 730 days is no shorter than 2 years
        cutoff, figure = today - dt.timedelta(days=days), f"{days} days"
        source = f"access_log_days in formtool.toml, shorter than the policy's {period}"
    before = dt.datetime.combine(cutoff, dt.time())
    count, oldest = db.access_log_due(before)
    line = Line(
        "access log",
        "access log entries (who saw what)",
        figure,
        "the entry",
        source,
        count=count,
        oldest=oldest.date() if oldest else None,
    )
    return line, before


def _backups(db: Store, keep: Keep, today: dt.date, folders: Sequence[Path]) -> Line:
    """Tracked backups, and the dated ones `formtool backup FOLDER` wrote in the folders
    tracked backups went to (and `folders`), by the day in their names."""
    period = keep.period
    tracked = db.stored_files(kinds=[BACKUP], include_removed=True)
    live = [row for row in tracked if row.removed_at is None]
    due: list[Any] = [row for row in live if _ended(period, _written(row), today)]
    known = {Path(row.path) for row in tracked}
    searched = {Path(row.path).parent for row in tracked} | {Path(f).resolve() for f in folders}
    dated = [
        (path, day)
        for path, day in db.dated_backups(sorted(searched))
        if path not in known and _ended(period, day, today)
    ]
    due += [path for path, _ in dated]
    days = [_written(r) for r in due if not isinstance(r, Path)] + [day for _, day in dated]
    return Line(
        "backups",
        "backups (each holds everything, removed records too)",
        str(period),
        "the day the backup was taken",
        keep.source,
        tuple(due),
        min(days, default=None),
    )


def _web_drafts(db: Store) -> Line:
    """Web form drafts (answers saved before submitting) of audits no longer outstanding: the
    form they were for is closed, so they go at once."""
    due = [(r.audit_id, r.stage) for r in db.web_drafts() if r.state not in OUTSTANDING]
    return Line(
        "web drafts",
        "web form drafts (answers saved before they were submitted)",
        "none",
        "once the audit no longer waits for an answer",
        "formtool: a draft is only kept while its form is open",
        tuple(due),
    )


# --- applying it --------------------------------------------------------------------------


def apply(
    db: Store,
    planned: Plan,
    user: str,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> Applied:
    """Remove what `planned` found due (see the module docstring) and record the run in the
    register; RetentionError, saying what went before it, if a removal fails."""
    done = Applied()
    stopped = ""
    try:
        for step in (progress or iter)(_steps(planned)):
            step(db, user, done)
    except DatabaseError as exc:
        stopped = failure(exc, db.url).text()
    except (FormtoolError, OSError) as exc:
        stopped = printable(str(exc), 400)
    finally:
        _register(db, planned, user, done, stopped)
    if stopped:
        raise RetentionError(
            f"Retention stopped: {stopped.rstrip('.')}. Removed before it stopped: "
            f"{done.said()}. Once that is fixed, `formtool retention` shows what is still due "
            "and --apply carries on."
        )
    return done


Step = Callable[[Store, str, Applied], None]


def _why(line: Line) -> str:
    return f"retention: kept {line.period} from {line.counted.split(',')[0]}"


def _steps(planned: Plan) -> list[Step]:
    """Each unit of work in order: the access log, each audit, then batches of the rest."""
    steps: list[Step] = []
    access = planned.line("access log")
    if access.number and planned.access_log_before is not None:
        steps.append(_purge(planned.access_log_before, access.key))
    audits = planned.line("audits")
    steps += [_audit(audit_id, _why(audits)) for audit_id in audits.due]
    for key, action in (("return files", _return_batch), ("outbox", _outbox_batch)):
        line = planned.line(key)
        steps += [action(batch, key, _why(line)) for batch in _batches(line.due)]
    for line in planned.lines:
        tracked = [r for r in line.due if line.key not in _NOT_FILES and not isinstance(r, Path)]
        steps += [_file_batch(batch, line.key, _why(line)) for batch in _batches(tracked)]
    drafts = planned.line("web drafts").due
    if drafts:
        steps.append(_drafts(list(drafts)))
    dated = [p for p in planned.line("backups").due if isinstance(p, Path)]
    if dated:
        steps.append(_dated_backups(dated, _why(planned.line("backups"))))
    steps.append(_forget)
    return steps


_NOT_FILES = ("audits", "return files", "outbox", "access log", "web drafts")


def _batches(items: Sequence[Any]) -> list[list[Any]]:
    return [list(items[i : i + BATCH]) for i in range(0, len(items), BATCH)]


def _purge(before: dt.datetime, key: str) -> Step:
    def step(db: Store, user: str, done: Applied) -> None:
        done.removed[key] += db.purge_access_log_before(before, user)

    return step


def _audit(audit_id: str, why: str) -> Step:
    """One audit in one transaction, its counts folded into the period summary (its tracked
    files are due with it, and go in their own lines' steps)."""

    def step(db: Store, user: str, done: Applied) -> None:
        row = db.audit_row(audit_id)
        if row is None or row.state not in FINISHED:  # gone, or reopened since the plan
            return
        cells = summary_cells(db, [audit_id]).get(audit_id)
        seen = (row.state, row.updated_at)  # moved after this (reopened): left for next run
        if cells is not None and db.remove_audit(audit_id, why, user, cells, as_seen=seen):
            done.removed["audits"] += 1

    return step


def _drafts(due: list[tuple[str, str]]) -> Step:
    def step(db: Store, user: str, done: Applied) -> None:
        for audit_id, stage in due:  # an audit reopened since the plan keeps its draft
            if db.audit_state(audit_id) not in OUTSTANDING:
                done.removed["web drafts"] += db.drop_web_drafts([audit_id], stage)

    return step


def _return_batch(ids: list[int], key: str, why: str) -> Step:
    def step(db: Store, user: str, done: Applied) -> None:
        done.removed[key] += db.remove_return_files(ids, why, user)

    return step


def _outbox_batch(ids: list[int], key: str, why: str) -> Step:
    def step(db: Store, user: str, done: Applied) -> None:
        done.removed[key] += db.remove_outbox_messages(ids, why, user)

    return step


def _file_batch(rows: list[Any], key: str, why: str) -> Step:
    def step(db: Store, user: str, done: Applied) -> None:
        done.files_deleted += remove_files(db, rows, why, user)
        done.removed[key] += len(rows)

    return step


def _dated_backups(paths: list[Path], why: str) -> Step:
    """Dated backups no row tracks: deleted (one already gone counts), then logged."""

    def step(db: Store, user: str, done: Applied) -> None:
        gone = 0
        try:
            for path in paths:
                path.unlink(missing_ok=True)
                gone += 1
        finally:
            if gone:
                detail = f"{gone} dated backup file(s) in {paths[0].parent}: {why}"
                db.log_access(user, "backups removed", None, "command line", detail[:2000])
                done.removed["backups"] += gone
                done.files_deleted += gone

    return step


def _forget(db: Store, user: str, done: Applied) -> None:
    """Removed files' rows stop naming the audits that are gone (their ids carry case
    numbers): the rows stay, as a record that a file was there and went."""
    db.forget_removed_files()


def _register(db: Store, planned: Plan, user: str, done: Applied, stopped: str) -> None:
    """The run in the register of data-protection work; a database that is down cannot
    take it, and the error already says what was removed."""
    detail = {
        "today": planned.today.isoformat(),
        "removed": dict(done.removed),
        "files_deleted": done.files_deleted,
        "not_removable": planned.kept,
        "stopped": stopped,
    }
    try:
        done.request = db.add_data_request(
            "retention",
            user=user,
            reference=f"retention {planned.today.isoformat()}",
            reason=f"the retention schedule of programme {planned.programme}",
            detail=detail,
        )
    except DatabaseError:
        if not stopped:
            raise
