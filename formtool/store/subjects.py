"""Subject access, correction and erasure for one child or member of staff: everything the
database holds about one case (its audits and every row held for them) or one member of staff
(every row naming them), and the changes a correction or a staff member's pseudonymisation
makes across the tables, each in one transaction.

Erasing a child's audits goes through the shared core's `remove_audit` (protection.py); what
is left naming the case afterwards (rejected files that claimed it, the rows of the files
removed from disk) is cleared here. Text is rewritten whole word by whole word and without
regard to case ("Rilee" in "Rilee's plan" and "RILEE", never inside "Rileen"), read in Python
after a LIKE has narrowed the rows, so both databases change exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from formtool.store.access import add_entry
from formtool.store.audits import record_event
from formtool.store.engine import lock
from formtool.store.protection import add_request, forget_files, redact_log
from formtool.store.rewrite import Rewrite
from formtool.store.schema import (
    access_log,
    actions,
    answers,
    audit_copies,
    audits,
    challenges,
    chosen_slots,
    concerns,
    data_requests,
    events,
    grades,
    metadata,
    outbox,
    outbox_claims,
    rejections,
    returns,
    sessions,
    sign_in_throttle,
    stored_files,
    users,
    web_drafts,
)
from formtool.store.units import Units

_a = audits.c
#: Where a member of staff is named: table -> (columns of names, addresses and free text,
#: matched as whole words; columns holding who did something: an account, `web:NAME` or
#: `cli:LOGIN`, matched whole; JSON columns of facts). An account's login is never looked for
#: in free text: a login such as "officer" is also an ordinary word.
STAFF_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "audits": (("auditor", "worker", "manager", "auditor_email", "preparer_email"), (), ("facts",)),
    "audit_copies": (("auditor", "auditor_email", "reason"), ("replaced_by",), ("facts",)),
    "returns": (("sender", "file_name", "message_name"), (), ("warnings",)),
    "answers": (("value", "comment"), (), ()),
    "actions": (("responsible_person", "sign_off", "recommendation", "action", "comments"), (), ()),
    "grades": (("moderated_by",), ("moderated_by",), ()),
    "events": (("detail",), ("user_name",), ()),
    "concerns": (("details", "told", "action_taken", "raised_by"), ("raised_by", "action_by"), ()),
    "challenges": (
        ("raised_by", "reason", "decision", "senior_moderator"),
        ("senior_moderator",),
        (),
    ),
    "outbox": (("recipient", "subject"), ("user_name",), ()),
    "rejections": (
        ("sender", "file_name", "reason", "dealt_note"),
        ("imported_by", "dealt_by"),
        (),
    ),
    "chosen_slots": (("auditor",), (), ()),
    "activity_runs": (("owner", "findings"), ("created_by", "updated_by"), ()),
    "programmes": ((), ("created_by",), ()),
    "stored_files": ((), ("written_by",), ()),
    "data_requests": (("authorised_by",), ("done_by",), ()),
}
#: Columns a subject access copy never carries: secrets, and the bytes (which go as files).
NEVER_SHOWN = frozenset({"password_hash", "totp_secret", "totp_last_step", "content", "receipt"})
#: The text columns of a case's rows a correction rewrites (facts: JSON, value by value).
CASE_TEXT = {
    "audit_copies": ("reason",),
    "returns": ("file_name", "message_name"),
    "answers": ("value", "comment"),
    "actions": ("recommendation", "action", "responsible_person", "comments"),
    "events": ("detail",),
    "concerns": ("details", "told", "action_taken"),
    "challenges": ("reason", "decision"),
    "rejections": ("file_name", "reason", "dealt_note"),
    "outbox": ("subject",),
}
#: Facts that are also the audit's own columns (kept the same when one is corrected).
FACT_COLUMNS = ("worker", "manager", "team")


def _dicts(conn: sa.Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def _holds(columns: Iterable[Any], terms: Iterable[str]) -> Any:
    """Rows where any of `columns` contains any of `terms`, whatever the case (a first sift:
    whole words are checked in Python)."""
    found = [
        sa.func.lower(c).contains(t.lower(), autoescape=True)
        for c in columns
        for t in terms
        if t.strip()
    ]
    return sa.or_(*found) if found else sa.false()


def _rewrite(
    conn: sa.Connection,
    table: sa.Table,
    where: Any,
    rewrite: Rewrite,
    text: Sequence[str] = (),
    json_columns: Sequence[str] = (),
    whole: Mapping[str, str] | None = None,
    user_columns: Sequence[str] = (),
    field: str = "",
) -> int:
    """Rewrite the `text` and `json_columns` of `table`'s rows matching `where` (and holding
    an old text), and replace `user_columns` whose whole value is a key of `whole`. How many
    rows changed."""
    whole = {k.casefold(): v for k, v in (whole or {}).items()}
    cols = [table.c[n] for n in (*text, *json_columns)]
    holding = _holds(cols, rewrite.terms)
    if user_columns and whole:
        holding = holding | sa.or_(
            *(sa.func.lower(table.c[n]).in_(list(whole)) for n in user_columns)
        )
    key = list(table.primary_key.columns)
    names = list(dict.fromkeys((*text, *json_columns, *user_columns)))
    query = sa.select(*key, *(table.c[n] for n in names)).where(where & holding)
    changed = 0
    for row in conn.execute(query).all():
        values: dict[str, Any] = {}
        for name in names:
            old = getattr(row, name)
            if not isinstance(old, str):
                continue
            new = old
            if name in json_columns:
                new = rewrite.facts(old, field)
            elif name in text:
                new = rewrite.text(old)
            if name in user_columns and new.casefold() in whole:
                new = whole[new.casefold()]
            if new != old:
                values[name] = new[: getattr(table.c[name].type, "length", None) or None]
        if values:
            match = sa.and_(*(c == getattr(row, c.name) for c in key))
            conn.execute(table.update().where(match).values(**values))
            changed += 1
    return changed


# --- one case ------------------------------------------------------------------------------


def _same_case(column: Any, case_number: str) -> Any:
    return sa.func.lower(column) == case_number.lower() if case_number else sa.false()


def case_audit_ids(conn: sa.Connection, case_number: str) -> list[str]:
    query = sa.select(_a.audit_id).where(sa.func.lower(_a.case_number) == case_number.lower())
    return list(conn.execute(query.order_by(_a.month, _a.audit_id)).scalars())


def _with_audit(table: sa.Table) -> Any:
    """A select of a return's rows (answers, actions) with the audit they belong to."""
    return sa.select(returns.c.audit_id, table).join_from(
        table, returns, returns.c.id == table.c.return_id
    )


def _return_ids(conn: sa.Connection, audit_ids: Collection[str]) -> list[int]:
    query = sa.select(returns.c.id).where(returns.c.audit_id.in_(list(audit_ids)))
    return list(conn.execute(query).scalars())


def _message_ids(conn: sa.Connection, audit_ids: Collection[str]) -> list[int]:
    c = outbox_claims.c
    query = sa.select(c.message_id).where(c.audit_id.in_(list(audit_ids)))
    return sorted(set(conn.execute(query).scalars()))


def _whole(
    conn: sa.Connection, table: sa.Table, where: Any, columns: Sequence[str], terms: Sequence[str]
) -> list[Any]:
    """The primary keys of `table`'s rows matching `where`, or holding one of `terms` as a
    whole word in one of `columns` (case number 12 is not in 123)."""
    key = list(table.primary_key.columns)
    cols = [table.c[n] for n in columns]
    found = Rewrite(dict.fromkeys(terms, ""))
    query = sa.select(*key, *cols, where.label("named")).where(where | _holds(cols, terms))
    return [
        row[0]
        for row in conn.execute(query)
        if row.named or any(found.finds(getattr(row, n)) for n in columns)
    ]


def _rejection_ids(conn: sa.Connection, case_number: str, audit_ids: Collection[str]) -> list[int]:
    """Rejected files about the case: against one of its audits, claiming one, or naming the
    case or an audit of it in their file name or reason."""
    r = rejections.c
    ids = list(audit_ids)
    where = r.audit_id.in_(ids) | r.claimed_id.in_(ids)
    return _whole(conn, rejections, where, ("file_name", "reason"), [*ids, case_number])


def case_holdings(
    conn: sa.Connection, case_number: str, audit_ids: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every row held about one case, by table (each row a dict of its columns)."""
    ids = list(audit_ids)
    terms = [*ids, case_number]
    return_ids = _return_ids(conn, ids)
    r, c, f, al = returns.c, outbox_claims.c, stored_files.c, access_log.c
    outbox_rows = sa.select(outbox, c.audit_id.label("claim_audit"), c.purpose.label("claim"))
    return {
        "audits": _dicts(conn, sa.select(audits).where(_a.audit_id.in_(ids)).order_by(_a.audit_id)),
        "audit_copies": _dicts(
            conn, sa.select(audit_copies).where(audit_copies.c.audit_id.in_(ids))
        ),
        "returns": _dicts(conn, sa.select(returns).where(r.audit_id.in_(ids)).order_by(r.id)),
        "answers": _dicts(
            conn,
            _with_audit(answers)
            .where(answers.c.return_id.in_(return_ids))
            .order_by(answers.c.return_id, answers.c.id),
        ),
        "actions": _dicts(
            conn,
            _with_audit(actions)
            .where(actions.c.return_id.in_(return_ids))
            .order_by(actions.c.return_id, actions.c.table_key, actions.c.row),
        ),
        "grades": _dicts(conn, sa.select(grades).where(grades.c.audit_id.in_(ids))),
        "events": _dicts(
            conn, sa.select(events).where(events.c.audit_id.in_(ids)).order_by(events.c.id)
        ),
        "concerns": _dicts(conn, sa.select(concerns).where(concerns.c.audit_id.in_(ids))),
        "challenges": _dicts(conn, sa.select(challenges).where(challenges.c.audit_id.in_(ids))),
        # answers typed in the web form and not yet submitted are held about the case too
        "web_drafts": _dicts(conn, sa.select(web_drafts).where(web_drafts.c.audit_id.in_(ids))),
        "rejections": _dicts(
            conn,
            sa.select(rejections)
            .where(rejections.c.id.in_(_rejection_ids(conn, case_number, ids)))
            .order_by(rejections.c.id),
        ),
        "outbox": _dicts(
            conn,
            outbox_rows.join_from(outbox, outbox_claims, c.message_id == outbox.c.id)
            .where(c.audit_id.in_(ids))
            .order_by(outbox.c.id),
        ),
        "chosen_slots": _dicts(
            conn, sa.select(chosen_slots).where(chosen_slots.c.audit_id.in_(ids))
        ),
        "stored_files": _dicts(
            conn,
            sa.select(stored_files)
            .where(f.audit_id.in_(ids) | _same_case(f.case_number, case_number))
            .order_by(f.id),
        ),
        "access_log": _dicts(
            conn,
            sa.select(access_log)
            .where(al.id.in_(_whole(conn, access_log, al.audit_id.in_(ids), ("detail",), terms)))
            .order_by(al.id),
        ),
    }


def correct_rows(
    conn: sa.Connection, audit_ids: Collection[str], field: str, rewrite: Rewrite
) -> dict[str, int]:
    """Rewrite a corrected fact in every row held for the audits (see `CASE_TEXT`); the
    audits keep their checksum (of the facts as issued). Counts per table."""
    ids = list(audit_ids)
    return_ids = _return_ids(conn, ids)
    message_ids = _message_ids(conn, ids)
    counts = {
        "audits": _rewrite(conn, audits, _a.audit_id.in_(ids), rewrite, (), ("facts",), field=field)
    }
    if field in FACT_COLUMNS:  # the audit's own column, when the fact is one of them
        counts["audits"] += _rewrite(conn, audits, _a.audit_id.in_(ids), rewrite, (field,))
    scopes: dict[str, Any] = {
        "audit_copies": audit_copies.c.audit_id.in_(ids),
        "returns": returns.c.audit_id.in_(ids),
        "answers": answers.c.return_id.in_(return_ids),
        "actions": actions.c.return_id.in_(return_ids),
        "events": events.c.audit_id.in_(ids),
        "concerns": concerns.c.audit_id.in_(ids),
        "challenges": challenges.c.audit_id.in_(ids),
        "rejections": rejections.c.audit_id.in_(ids) | rejections.c.claimed_id.in_(ids),
        "outbox": outbox.c.id.in_(message_ids),
    }
    counts["audit_copies"] = _rewrite(
        conn, audit_copies, scopes["audit_copies"], rewrite, (), ("facts",), field=field
    )
    counts["returns"] = _rewrite(conn, returns, scopes["returns"], rewrite, (), ("warnings",))
    for name, where in scopes.items():
        table = metadata.tables[name]
        counts[name] = counts.get(name, 0) + _rewrite(conn, table, where, rewrite, CASE_TEXT[name])
    return {k: v for k, v in counts.items() if v}


def clear_case(
    conn: sa.Connection, case_number: str, audit_ids: Collection[str], values: Sequence[str]
) -> dict[str, int]:
    """After the case's audits are removed: delete the rejected files naming it, and take the
    case out of the rows of its files (removed from disk: their path, audit and case go; when
    and why they were written and removed stay)."""
    ids = list(audit_ids)
    f = stored_files.c
    rejected = _rejection_ids(conn, case_number, ids)
    gone = int(conn.execute(rejections.delete().where(rejections.c.id.in_(rejected))).rowcount)
    terms = [v for v in (*ids, case_number, *values) if v.strip()]
    # Only files already removed from disk: a row of one still there keeps naming it, so
    # the check afterwards finds it (a file written after the erasure was planned).
    ours = (f.audit_id.in_(ids) | _same_case(f.case_number, case_number)) & f.removed_at.is_not(
        None
    )
    file_ids = _whole(conn, stored_files, ours, ("path",), terms)
    files = forget_files(conn, f.id.in_(file_ids))
    return {"rejections": gone, "stored file rows": files}


# --- one member of staff -------------------------------------------------------------------


def _user_forms(logins: Iterable[str], pseudonym: str = "") -> dict[str, str]:
    """An account's every way of being named as who did something, each to its pseudonym."""
    forms: dict[str, str] = {}
    for login in logins:
        if login.strip():
            for prefix in ("", "web:", "cli:"):
                forms[prefix + login] = prefix + pseudonym
    return forms


def staff_holdings(
    conn: sa.Connection, names: Sequence[str], emails: Sequence[str], logins: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every row naming a member of staff (by name or address as a whole word, or as who did
    something by their account), by table; their account and its sessions."""
    found: dict[str, list[dict[str, Any]]] = {}
    forms = [f.lower() for f in _user_forms(logins)]
    named = Rewrite(dict.fromkeys([*names, *emails], ""))
    places = {**STAFF_COLUMNS, "access_log": (("detail",), ("user_name",), ())}
    for name, (text, who, json_columns) in places.items():
        table = metadata.tables[name]
        where = _holds([table.c[n] for n in (*text, *json_columns)], [*names, *emails])
        if forms and who:
            where = where | sa.or_(*(sa.func.lower(table.c[n]).in_(forms) for n in who))
        key = list(table.primary_key.columns)
        query: Any = sa.select(table)
        if name in ("answers", "actions"):
            query = _with_audit(table)
        rows = _dicts(conn, query.where(where).order_by(*key))
        rows = [r for r in rows if _names_them(r, (*text, *json_columns), who, named, forms)]
        if rows:
            found[name] = rows
    logins_folded = [x.lower() for x in logins if x.strip()]
    found["users"] = _dicts(
        conn, sa.select(users).where(sa.func.lower(users.c.name).in_(logins_folded))
    )
    found["sessions"] = _dicts(
        conn,
        sa.select(sessions).where(sa.func.lower(sessions.c.user_name).in_(logins_folded)),
    )
    return {k: v for k, v in found.items() if v}


def _names_them(
    row: dict[str, Any], text: Sequence[str], who: Sequence[str], named: Rewrite, forms: Any
) -> bool:
    """Whether a row the LIKE found names them as a whole word (not inside a longer name)."""
    return any(named.finds(row.get(n)) for n in text) or any(
        str(row.get(n, "")).lower() in forms for n in who
    )


def pseudonymise_staff(
    conn: sa.Connection,
    names: Sequence[str],
    emails: Sequence[str],
    logins: Sequence[str],
    pseudonym: tuple[str, str, str],
) -> dict[str, int]:
    """Replace a member of staff's names and addresses by the pseudonym's (name, address,
    login) in every table, their account renamed and deactivated (its sessions end, its
    password and second factor gone), and take them out of the access log. Counts."""
    name, address, login = pseudonym
    rewrite = Rewrite({**dict.fromkeys(names, name), **dict.fromkeys(emails, address)})
    whole = {**_user_forms(logins, login), **{n: name for n in names}}
    counts: dict[str, int] = {}
    for table_name, (text, who, json_columns) in STAFF_COLUMNS.items():
        table = metadata.tables[table_name]
        counts[table_name] = _rewrite(
            conn, table, sa.true(), rewrite, text, json_columns, whole, who
        )
    counts["accounts"] = _retire_accounts(conn, logins, login)
    counts["access log entries redacted"] = redact_log(
        conn, [*names, *emails], user_names=list(_user_forms(logins)), everywhere=True
    )
    return {k: v for k, v in counts.items() if v}


def _retire_accounts(conn: sa.Connection, logins: Sequence[str], pseudonym: str) -> int:
    """Their accounts end (sessions, sign-in counters) and are renamed and deactivated, never
    deleted: what they did keeps pointing at one (pseudonymous) account."""
    folded = [x.lower() for x in logins if x.strip()]
    found = list(
        conn.execute(sa.select(users.c.name).where(sa.func.lower(users.c.name).in_(folded)))
        .scalars()
        .all()
    )
    for number, login in enumerate(found, start=1):
        conn.execute(sessions.delete().where(sessions.c.user_name == login))
        conn.execute(sign_in_throttle.delete().where(_holds([sign_in_throttle.c.key], [login])))
        renamed = pseudonym if number == 1 else f"{pseudonym}-{number}"
        conn.execute(
            users.update()
            .where(users.c.name == login)
            .values(
                name=renamed,
                active=False,
                password_hash="",
                totp_secret="",
                totp_enrolled_at=None,
                oidc_subject="",
            )
        )
    return len(found)


def staff_number(conn: sa.Connection) -> int:
    """The number the next pseudonym takes: one more than the staff erasures so far (under
    the register's lock, so two erasures at once never share one)."""
    lock(conn, "formtool data requests")
    d = data_requests.c
    count = conn.execute(
        sa.select(sa.func.count()).where((d.kind == "erasure") & (d.subject == "staff"))
    ).scalar_one()
    return int(count) + 1


def holding(conn: sa.Connection, values: Sequence[str]) -> dict[str, int]:
    """Which tables hold any of `values` in a text column, whatever the case: table -> rows
    (one statement: a count per table)."""
    counts = [
        sa.select(sa.func.count())
        .select_from(table)
        .where(_holds(text, values))
        .scalar_subquery()
        .label(table.name)
        for table in metadata.sorted_tables
        if (text := [c for c in table.columns if isinstance(c.type, sa.String)])
    ]
    row = conn.execute(sa.select(*counts)).one()
    return {name: int(n) for name, n in row._mapping.items() if n}


def _register(
    conn: sa.Connection, kind: str, subject: str, user: str, request: Mapping[str, Any]
) -> int:
    return add_request(
        conn,
        kind,
        user,
        subject,
        str(request.get("reference", "")),
        str(request.get("reason", "")),
        str(request.get("authorised_by", "")),
        dict(request.get("detail", {})),
    )


class SubjectStore(Units):
    """The Store's methods for subject access, correction and erasure (see the module
    docstring)."""

    def case_audit_ids(self, case_number: str) -> list[str]:
        """The audits of one case (the case number matched whatever its case)."""
        with self._read() as conn:
            return case_audit_ids(conn, case_number)

    def case_holdings(self, case_number: str) -> dict[str, list[dict[str, Any]]]:
        """Everything held about one case, by table; {} when nothing is."""
        with self._read() as conn:
            ids = case_audit_ids(conn, case_number)
            found = case_holdings(conn, case_number, ids)
            return {k: v for k, v in found.items() if v}

    def audits_holdings(self, audit_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """Everything held for these audits, by table, as for a case."""
        with self._read() as conn:
            found = case_holdings(conn, "", audit_ids)
            return {k: v for k, v in found.items() if v}

    def staff_holdings(
        self, names: Sequence[str], emails: Sequence[str] = (), logins: Sequence[str] = ()
    ) -> dict[str, list[dict[str, Any]]]:
        """Every row naming a member of staff, by table; {} when none does."""
        with self._read() as conn:
            return staff_holdings(conn, names, emails, logins)

    def staff_addresses(self, name: str) -> list[str]:
        """The addresses the audits record for a member of staff: as the auditor, and as
        the worker who prepares a two-stage audit."""
        folded = name.lower()
        with self._read() as conn:
            found = conn.execute(
                sa.union(
                    sa.select(_a.auditor_email).where(sa.func.lower(_a.auditor) == folded),
                    sa.select(_a.preparer_email).where(sa.func.lower(_a.worker) == folded),
                )
            ).scalars()
            return sorted({a for a in found if a})

    def holding(self, values: Sequence[str]) -> dict[str, int]:
        """Which tables still hold any of `values` (table -> rows), for a check afterwards."""
        with self._read() as conn:
            return holding(conn, values)

    def correct_fact(
        self,
        audit_ids: Collection[str],
        field: str,
        terms: Mapping[str, str],
        user: str,
        request: Mapping[str, Any],
    ) -> tuple[dict[str, int], int]:
        """In one transaction: the corrected fact in every row held for the audits, the
        access log's entries quoting an old value redacted, a "fact corrected" event on each
        audit (the field and the reason; never the old value) and the register's entry.
        (rows changed per table, the register's number)."""
        with self._write() as conn:
            counts = correct_rows(conn, audit_ids, field, Rewrite(terms))
            redacted = redact_log(conn, list(terms), list(audit_ids))
            if redacted:
                counts["access log entries redacted"] = redacted
            detail = f"{field} corrected: {request.get('reason', '')}"
            for audit_id in audit_ids:
                record_event(conn, audit_id, "fact corrected", detail, user)
                add_entry(conn, user, "fact corrected", audit_id, detail=detail[:2000])
            number = _register(conn, "correction", "child", user, request)
            return counts, number

    def clear_case(
        self, case_number: str, audit_ids: Collection[str], values: Sequence[str]
    ) -> dict[str, int]:
        """After an erasure removed the case's audits: what is left naming it (see
        `clear_case`), in one transaction."""
        with self._write() as conn:
            return clear_case(conn, case_number, audit_ids, values)

    def pseudonymise_staff(
        self,
        names: Sequence[str],
        emails: Sequence[str],
        logins: Sequence[str],
        user: str,
        request: Mapping[str, Any],
    ) -> tuple[str, dict[str, int], int]:
        """In one transaction: the member of staff becomes "Former staff member N" in every
        table (see `pseudonymise_staff`), and the register records it.
        (the pseudonym, rows changed per table, the register's number)."""
        with self._write() as conn:
            number = staff_number(conn)
            pseudonym = (
                f"Former staff member {number}",
                f"former-staff-{number}@erased.invalid",
                f"former-staff-{number}",
            )
            counts = pseudonymise_staff(conn, names, emails, logins, pseudonym)
            detail = {**dict(request.get("detail", {})), "pseudonym": pseudonym[0], **counts}
            registered = _register(conn, "erasure", "staff", user, {**request, "detail": detail})
            add_entry(conn, user, "staff erased", detail=f"{pseudonym[0]} (request {registered})")
            return pseudonym[0], counts, registered

    def record_request(
        self,
        kind: str,
        subject: str,
        user: str,
        request: Mapping[str, Any],
        audit_ids: Iterable[str] = (),
        line: str = "",
    ) -> int:
        """The register's entry for a piece of data-protection work, with an access-log
        entry (`kind`, the request's number and `line`) against each of `audit_ids`, or one
        without an audit. Its number."""
        with self._write() as conn:
            number = _register(conn, kind, subject, user, request)
            detail = f"request {number}" + (f": {line}" if line else "")
            address = str(request.get("address", ""))
            ids: list[str | None] = [*audit_ids]
            for audit_id in ids or [None]:
                add_entry(conn, user, kind, audit_id, address, detail)
            return number
