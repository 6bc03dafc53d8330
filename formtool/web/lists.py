"""The lists a manager works with: audits searched, filtered, sorted, paged and exported,
with bulk steps on the selected ones, and everything outstanding across months.

The query string is the list: every filter, the sort and the page are parameters, so a list
can be bookmarked, shared and exported as it is shown. A parameter the list does not know is
named in a notice (never silently dropped); a value it cannot use (a month 2026-13, page 0) is
a 400 saying what is allowed. Searching, filtering, sorting and paging happen in the database
(store/listing.py). Staff data the programme keeps from a role (supervision audits,
observations) is never listed, counted or exported for it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool import clock
from formtool.access.roles import Account
from formtool.errors import FormtoolError, printable
from formtool.periods import Month, iso_text
from formtool.store import OUTSTANDING, AuditState, Store, audit_facts, stored_warnings
from formtool.web import queries
from formtool.web.pages import (
    ActionRoute,
    PageRoute,
    call,
    download,
    flash,
    log_access,
    redirect,
    render_page,
    site_path,
    ws_of,
)

#: Every parameter the list knows; anything else is named in a notice.
KNOWN = (
    *("q", "month", "from", "to", "state", "team", "auditor", "tool", "overdue", "warnings"),
    *("concern", "sort", "dir", "page", "per", "tally", "view"),
)
#: The columns a list sorts by (store/listing.py SORTS), with their headings.
COLUMNS = {
    "audit": "Audit",
    "case": "Case",
    "tool": "Tool",
    "team": "Team",
    "auditor": "Auditor",
    "state": "State",
    "due": "Due",
    "grade": "Grade",
}
PER_PAGE = (25, 50, 100)
TALLIES = ("audits", "returned", "outstanding", "overdue")  # the dashboard's links
CONCERNS = {"open": "with an open concern", "any": "with any concern"}
MAX_PAGE = 1_000_000
MAX_TEXT = 200  # a team or auditor's name, a search
MAX_SELECTED = 500  # audits one bulk step takes


class ListError(FormtoolError):
    """A list parameter with a value the list cannot use: what is wrong and what is allowed."""


@dataclass(frozen=True)
class ListQuery:
    """The list asked for, its parameters checked."""

    search: str = ""
    first: Month | None = None  # the months shown (None: every month)
    last: Month | None = None
    states: tuple[str, ...] | None = None  # None: every state
    team: str = ""
    auditor: str = ""
    tool: str = ""
    overdue: bool = False
    warnings: bool = False
    concern: str = ""
    sort: str = "audit"
    descending: bool = False
    page: int = 1
    per: int = 50
    tally: str = "audits"
    outstanding_view: bool = False
    ignored: tuple[str, ...] = ()
    given: tuple[tuple[str, str], ...] = field(default=())  # the known parameters as given

    def url(self, path: str = "/audits", drop: Iterable[str] = (), **changes: Any) -> str:
        """This list's address with some parameters changed (None: removed) or dropped."""
        gone = {*drop, *changes}
        pairs = [(k, v) for k, v in self.given if k not in gone]
        pairs += [(k, str(v)) for k, v in changes.items() if v is not None]
        return f"{path}?{urlencode(pairs)}" if pairs else path

    @property
    def asked_states(self) -> tuple[str, ...]:
        """The states ticked (state=), not those a tally or view implies."""
        return tuple(v for k, v in self.given if k == "state")

    @property
    def months_words(self) -> str:
        if self.first is None and self.last is None:
            return "every month"
        if self.first == self.last and self.first is not None:
            return self.first.name
        first = self.first.short_name if self.first else "the first month"
        last = self.last.short_name if self.last else "the last"
        return f"{first} to {last}"

    def store_filter(self, today: dt.date, names: bool, hidden: tuple[str, ...]) -> dict[str, Any]:
        """The store's ListFilter fields for this list (see store/listing.py)."""
        return {
            "first_month": self.first,
            "last_month": self.last,
            "states": self.states,
            "team": self.team,
            "auditor": self.auditor,
            "form_id": self.tool,
            "overdue_on": today if self.overdue else None,
            "warnings": self.warnings,
            "concern": self.concern,
            "search": self.search,
            "names": names,
            "hidden_activities": hidden,
        }


def _one(params: QueryParams, name: str) -> str:
    return params.get(name, "").strip()


def _text(params: QueryParams, name: str, what: str) -> str:
    value = _one(params, name)
    if len(value) > MAX_TEXT:
        raise ListError(f"The {what} ({name}=) is over {MAX_TEXT} characters; give a shorter one.")
    if printable(value) != value:  # a NUL, a line break: no name or case number has one
        raise ListError(f"The {what} ({name}=) has a control character; type plain text.")
    return value


def _choice(params: QueryParams, name: str, allowed: Iterable[str], what: str) -> str:
    value, allowed = _one(params, name), list(allowed)
    if value and value not in allowed:
        raise ListError(
            f"{what} ({name}=) '{printable(value, 40)}' is not one this list knows; "
            f"use {', '.join(allowed)}."
        )
    return value


def _number(params: QueryParams, name: str, default: int, what: str) -> int:
    value = _one(params, name)
    if not value:
        return default
    if not (value.isdigit() and 0 < int(value) <= MAX_PAGE):
        raise ListError(
            f"The {what} ({name}=) '{printable(value, 20)}' is not a whole number from 1 to "
            f"{MAX_PAGE:,}."
        )
    return int(value)


def _months(params: QueryParams, view: bool, today: dt.date) -> tuple[Month | None, Month | None]:
    """The months asked for: one (month=), a range (from= and/or to=), or by default this
    month (every month in the outstanding view)."""
    month, first, last = (_one(params, k) for k in ("month", "from", "to"))
    if month and (first or last):
        raise ListError("Give one month (month=) or a range (from= and to=), not both.")
    if month:
        one = Month(month, "The month (month=)")
        return one, one
    if not first and not last:
        return (None, None) if view else (queries.this_month(today),) * 2
    start = Month(first, "The first month (from=)") if first else None
    end = Month(last, "The last month (to=)") if last else None
    if start and end and start > end:
        raise ListError(f"The range runs backwards: from {start} to {end}. Swap them.")
    return start, end


def _states(params: QueryParams, tally: str, view: bool) -> tuple[str, ...] | None:
    """The states shown: those asked for (state=, one or more), within the dashboard tally's
    or the outstanding view's; None: every state."""
    from formtool.programme.status import DONE

    known = [s.value for s in AuditState]
    asked = [s.strip() for s in params.getlist("state") if s.strip()]
    for state in asked:
        if state not in known:
            raise ListError(
                f"The state (state=) '{printable(state, 40)}' is not an audit state; use "
                f"{', '.join(known)}."
            )
    within: set[str] | None = None
    if view or tally in ("outstanding", "overdue"):
        within = {s.value for s in OUTSTANDING}
    elif tally == "returned":
        within = {s.value for s in DONE}
    if within is None:
        return tuple(asked) if asked else None
    return tuple(s for s in known if s in within and (not asked or s in asked))


def parse_query(params: QueryParams, today: dt.date) -> ListQuery:
    """The list the query string asks for; ListError (a 400) naming a value it cannot use."""
    view = _choice(params, "view", ["outstanding"], "The view") == "outstanding"
    tally = _choice(params, "tally", TALLIES, "The tally") or "audits"
    first, last = _months(params, view, today)
    sort = _choice(params, "sort", COLUMNS, "The sort column")
    direction = _choice(params, "dir", ["asc", "desc"], "The sort direction")
    most_overdue = view or tally in ("outstanding", "overdue")
    per = _one(params, "per")
    if per and per not in [str(n) for n in PER_PAGE]:
        raise ListError(
            f"Audits per page (per=) '{printable(per, 20)}' is not one this list offers; use "
            f"{', '.join(map(str, PER_PAGE))}."
        )
    return ListQuery(
        search=_text(params, "q", "search"),
        first=first,
        last=last,
        states=_states(params, tally, view),
        team=_text(params, "team", "team"),
        auditor=_text(params, "auditor", "auditor"),
        tool=_choice(params, "tool", sorted(queries.tool_names()), "The tool"),
        overdue=_choice(params, "overdue", ["yes"], "Overdue") == "yes" or tally == "overdue",
        warnings=_choice(params, "warnings", ["yes"], "With warnings") == "yes",
        concern=_choice(params, "concern", CONCERNS, "The concern filter"),
        sort=sort or ("due" if most_overdue else "audit"),
        descending=direction == "desc",
        page=_number(params, "page", 1, "page"),
        per=int(per or 50),
        tally=tally,
        outstanding_view=view,
        ignored=tuple(dict.fromkeys(k for k in params if k not in KNOWN)),
        given=tuple((k, v) for k, v in params.multi_items() if k in KNOWN and v.strip()),
    )


# --- who sees what ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _StaffAudit:
    """An audit of a member of staff in `activity`, to ask the programme who sees it."""

    activity: str
    subject_kind: str = "staff"
    audit_id: str = ""


def hidden_activities(db: Store, roles: Iterable[str]) -> tuple[str, ...]:
    """The activities whose audits are staff data these roles may not see (the programme's
    rule, programme.activities.results_refusal): left out of every list and export."""
    from formtool.programme.activities import results_refusal
    from formtool.programme.rules import active_policy

    kinds, roles = db.staff_activities(), tuple(roles)
    if not kinds:
        return ()
    policy = active_policy(db)
    return tuple(a for a in kinds if results_refusal(policy, _StaffAudit(a), roles))


def subject_name(row: Any) -> str:
    """The child's name (given and family names) or the member of staff's, from the facts."""
    facts = audit_facts(row)
    child = " ".join(x for x in (facts.get("given_names"), facts.get("family_name")) if x)
    return child or str(facts.get("staff_name", ""))


def shown_row(row: Any, today: dt.date, names: bool) -> dict[str, Any]:
    """A listed audit for the page and the exports."""
    owed = AuditState(row.state) in OUTSTANDING
    return {
        "audit_id": row.audit_id,
        "case_number": row.case_number,
        "name": subject_name(row) if names else "",
        "form_id": row.form_id,
        "team": row.team,
        "auditor": row.auditor,
        "month": row.month,
        "state": row.state,
        "due": row.due_date,
        "days_overdue": max(0, (today - row.due_date).days) if owed else 0,
        "grade": row.grade,
        "warnings": len(stored_warnings(row.warnings)) if row.return_id else 0,
        "open_concerns": row.open_concerns,
    }


# --- the list --------------------------------------------------------------------------------


@dataclass
class Listed:
    query: ListQuery
    rows: list[dict[str, Any]]
    total: int
    teams: list[str]
    auditors: list[str]


def list_audits(db: Store, query: ListQuery, who: Account, every: bool = False) -> Listed:
    """The list's page of audits (every matching one with `every`, for an export)."""
    today = clock.today()
    names = who.sees_names
    where = query.store_filter(today, names, hidden_activities(db, who.roles))
    offset = 0 if every else (query.page - 1) * query.per
    found = db.audit_list(
        query.sort, query.descending, offset, None if every else query.per, **where
    )
    choices = ([], []) if every else db.audit_list_choices(**_months_only(where))
    rows = [shown_row(r, today, names) for r in found.rows]
    return Listed(query, rows, found.total, *choices)


def _months_only(where: dict[str, Any]) -> dict[str, Any]:
    """The filter for the team and auditor choices: the months and who sees what only."""
    keep = ("first_month", "last_month", "hidden_activities")
    return {k: v for k, v in where.items() if k in keep}


#: A name search's entry names at most this many of the audits it found.
LOGGED_MATCHES = 50


async def _log(request: Request, who: Account, what: str, query: ListQuery, listed: Listed) -> None:
    """The list in the access log: its filters, never the search text (it may be a child's
    name); a search that looked at names says so and names the audits it found (whose
    records were seen), so "who looked this child up?" has an answer."""
    detail = []
    if query.search and who.sees_names:
        found = [r["audit_id"] for r in listed.rows[:LOGGED_MATCHES]]
        more = f" and {listed.total - len(found)} more" if listed.total > len(found) else ""
        detail.append(f"searched by name, found {', '.join(found) or 'none'}{more}")
    shown = urlencode([(k, v) for k, v in query.given if k != "q"])
    await log_access(request, who.name, what, detail="; ".join([*detail, shown[:200]]))


def _heading(query: ListQuery) -> str:
    if query.outstanding_view:
        return "Everything outstanding"
    if query.tally != "audits":
        return queries.sentence(query.tally)
    return "Audits"


async def audit_list(request: Request, who: Account) -> Response:
    query = parse_query(request.query_params, clock.today())
    listed = await call(list_audits, ws_of(request).db, query, who)
    await _log(request, who, "viewed the audit list", query, listed)
    pages = max(1, -(-listed.total // query.per))
    return render_page(
        request,
        who,
        "audits.html",
        q=queries,
        lq=query,
        rows=listed.rows,
        total=listed.total,
        first_row=(query.page - 1) * query.per + 1,
        pages=pages,
        teams=_with(listed.teams, query.team),
        auditors=_with(listed.auditors, query.auditor),
        states=[s.value for s in AuditState],
        columns=COLUMNS,
        per_page=PER_PAGE,
        concerns=CONCERNS,
        heading=_heading(query),
        back=query.url(),
        names=who.sees_names,
    )


def _with(options: list[str], chosen: str) -> list[str]:
    """The choices, with the one asked for even when no audit has it (a link from elsewhere)."""
    return options if not chosen or chosen in options else sorted([*options, chosen])


# --- exports ---------------------------------------------------------------------------------

HEADINGS = {
    "audit_id": "Audit ID",
    "case_number": "Case number",
    "name": "Name",
    "tool": "Tool",
    "team": "Team",
    "auditor": "Auditor",
    "month": "Month",
    "state": "State",
    "due": "Due",
    "days_overdue": "Days overdue",
    "grade": "Grade",
    "warnings": "Warnings",
    "open_concerns": "Open concerns",
}


def export_table(rows: list[dict[str, Any]], names: bool) -> tuple[list[str], list[list[Any]]]:
    """The headings and rows of an export: the name column only for roles that see names."""
    tools = queries.tool_names()
    keys = [k for k in HEADINGS if names or k != "name"]
    table = [[tools.get(r["form_id"], r["form_id"]) if k == "tool" else r[k] for k in keys]
             for r in rows]  # fmt: skip
    return [HEADINGS[k] for k in keys], table


def to_csv(headings: list[str], rows: list[list[Any]]) -> bytes:
    """CSV with the formula guard `formtool export` uses (packs/export.py)."""
    from formtool.packs.export import csv_safe

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headings)
    writer.writerows([csv_safe(iso_text(v)) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")  # BOM: Excel then reads UTF-8 right


def to_xlsx(headings: list[str], rows: list[list[Any]]) -> bytes:
    """An Excel workbook written as `formtool export` writes one: text as text, never a
    formula, a URL or a number."""
    from formtool.packs.export import text_workbook

    out = io.BytesIO()
    book = text_workbook(out)
    head = book.add_format({"bold": True, "bg_color": "#DCE3F0", "border": 1})
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet = book.add_worksheet("Audits")
    for c, heading in enumerate(headings):
        sheet.write_string(0, c, heading, head)
        sheet.set_column(c, c, 24 if heading in ("Audit ID", "Name", "Team", "Auditor") else 14)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date)
            elif isinstance(value, int):
                sheet.write_number(r, c, value)
            elif value not in (None, ""):
                sheet.write_string(r, c, str(value))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(1, len(rows)), len(headings) - 1)
    book.close()
    return out.getvalue()


async def audit_export(request: Request, who: Account) -> Response:
    """Every audit of the list as it is filtered and sorted (not only the page shown)."""
    kind = request.path_params["kind"]
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404)
    query = parse_query(request.query_params, clock.today())
    listed = await call(list_audits, ws_of(request).db, query, who, True)
    headings, rows = export_table(listed.rows, who.sees_names)
    data = await call(to_csv if kind == "csv" else to_xlsx, headings, rows)
    await _log(request, who, "exported the audit list", query, listed)
    return download(data, f"audits-{clock.today().isoformat()}.{kind}")


# --- bulk steps ------------------------------------------------------------------------------


def _not_clean(row: Any, hidden: tuple[str, ...]) -> str:
    """Why the audit's return cannot be accepted in bulk ("" when it can)."""
    if row is None:
        return "not in the database"
    if row.subject_kind != "case" and row.activity in hidden:
        return "staff data your role may not see"
    if row.state != AuditState.returned.value:
        return f"{row.state}, not returned"
    if not row.final:
        return "its current return is a draft"
    if stored_warnings(row.warnings):
        return "its return carries warnings: check them on the audit's page"
    return ""


@dataclass
class BulkAccept:
    accepted: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # why -> audits

    def summary(self) -> str:
        parts = [f"Accepted {len(self.accepted)} clean return(s){_ids(self.accepted)}."]
        if self.skipped:
            count = sum(len(ids) for ids in self.skipped.values())
            why = "; ".join(f"{_ids(ids, '')} ({reason})" for reason, ids in self.skipped.items())
            parts.append(f"Skipped {count}: {why}.")
        return " ".join(parts)


def _ids(ids: list[str], lead: str = ": ") -> str:
    if not ids:
        return ""
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return lead + ", ".join(ids[:5]) + more


def accept_clean(db: Store, audit_ids: list[str], roles: Iterable[str], user: str) -> BulkAccept:
    """Accept each audit that is returned with a Final current return carrying no warnings
    (as `formtool check` does); the rest are skipped, each with why."""
    from formtool.programme.workflow import check_audit

    hidden = hidden_activities(db, roles)
    rows = {r.audit_id: r for r in db.audit_rows(audit_ids=audit_ids)}
    done = BulkAccept()
    for audit_id in audit_ids:
        why = _not_clean(rows.get(audit_id), hidden)
        if not why:
            try:
                check_audit(db, audit_id, user=user)
            except FormtoolError as exc:  # it changed meanwhile: say so, go on
                why = str(exc)
        if why:
            done.skipped.setdefault(why, []).append(audit_id)
        else:
            done.accepted.append(audit_id)
    return done


def back_to(text: object) -> str:
    """Where a bulk step returns to: a path on this site (else the list)."""
    target = str(text or "")
    return target if site_path(target) else "/audits"


async def accept_selected(request: Request, who: Account, form: FormData) -> Response:
    back = back_to(form.get("back"))
    ids = list(dict.fromkeys(str(v).strip() for v in form.getlist("audit") if str(v).strip()))
    if not ids:
        flash(request, "Select one or more audits first (the boxes in the list).", "error")
        return redirect(back)
    if len(ids) > MAX_SELECTED:
        raise ListError(f"Select at most {MAX_SELECTED} audits at a time ({len(ids)} were).")
    done = await call(accept_clean, ws_of(request).db, ids, who.roles, f"web:{who.name}")
    flash(request, done.summary(), "ok" if done.accepted else "error")
    return redirect(back)


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [
        page("/audits", audit_list, "cases"),  # logs itself: never the search text
        page("/audits/export.{kind}", audit_export, "cases"),
        action("/audits/accept", accept_selected, "cycle"),
    ]
