"""The audit list a manager works with (/audits): search, filters, sorting and pages done in the
database (on both backends), unknown parameters named, malformed ones refused, exports with
the formula guard, bulk acceptance of clean returns, everything outstanding across months,
and staff data kept from the roles the programme names. One database of 58 audits per
backend, built once through the library."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.access.log import access_entries
from formtool.definitions import get_form
from formtool.programme.policy import default_policy, policy_snapshot
from formtool.programme.status import DONE, status
from formtool.programme.workflow import check_audit
from formtool.settings import Settings
from formtool.web import create_app

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TODAY = dt.date(2026, 11, 20)
MONTH = "2026-11"
PASSWORD = "correct horse battery"
FORMULA = '=HYPERLINK("http://x.invalid","click")'
NORTH, SOUTH = "North Team", "South Team"
S = store.AuditState


@dataclass(frozen=True)
class Spec:
    """One audit of the test month and what happens to it."""

    audit_id: str
    due: dt.date
    team: str = NORTH
    auditor: str = "Auditor A (synthetic)"
    form_id: str = "csc"
    case: str = ""
    given: str = "Child"
    family: str = "Family"
    step: str = "allocated"  # sent / returned / warned / draft / checked
    concern: str = ""  # open / actioned
    staff: bool = False  # an observation of a practitioner: staff data

    @property
    def state(self) -> str:
        steps = {"warned": "returned", "draft": "in progress"}
        return steps.get(self.step, self.step)

    @property
    def month(self) -> str:
        return f"{self.due:%Y-%m}"


def _november(i: int) -> Spec:
    steps = {1: "returned", 2: "returned", 3: "warned", 4: "draft", 5: "returned", 6: "returned"}
    steps |= {8: "checked", 9: "checked"} | dict.fromkeys(range(11, 16), "sent")
    names = {7: ("Ada", "Zebedee"), 13: (FORMULA, "Family13")}
    given, family = names.get(i, (f"Child{i}", f"Family{i:02d}"))
    return Spec(
        f"CSC-2611-{i:03d}",
        dt.date(2026, 11, 10) if i <= 20 else dt.date(2026, 11, 30),
        NORTH if i % 2 else SOUTH,
        f"Auditor {'ABCD'[i % 4]} (synthetic)",
        "early_help" if i > 35 else "csc",
        "AB-777" if i == 22 else f"CN{1000 + i}",
        given,
        family,
        steps.get(i, "allocated"),
        {21: "open", 23: "actioned"}.get(i, ""),
    )


SPECS = (
    *(_november(i) for i in range(1, 41)),
    *(
        Spec(f"CSC-2610-{j:03d}", dt.date(2026, 10, 15 if j == 1 else 31), case=f"CO{j}",
             step="returned" if j == 8 else "sent")
        for j in range(1, 9)
    ),
    *(Spec(f"CSC-2612-{k:03d}", dt.date(2026, 12, 31), SOUTH, case=f"CD{k}") for k in range(1, 7)),
    *(
        Spec(f"OBS-2611-{n}", dt.date(2026, 11, 10), form_id="observation", case=f"S{n}",
             given="", family="", staff=True)
        for n in range(1, 5)
    ),
)  # fmt: skip
CASES = [s for s in SPECS if not s.staff]  # what an officer sees
NOVEMBER = [s for s in CASES if s.month == MONTH]
OWED = {s.value for s in store.OUTSTANDING}


def ids(specs: Any) -> list[str]:
    return [s.audit_id for s in specs]


def _record(spec: Spec) -> store.AuditRecord:
    form = get_form(spec.form_id)
    facts = {"case_number": spec.case, "team": spec.team, "auditor": spec.auditor}
    facts |= (
        {"staff_name": f"Practitioner {spec.case} (synthetic)"}
        if spec.staff
        else {"given_names": spec.given, "family_name": spec.family}
    )
    return store.AuditRecord(
        spec.audit_id, form.id, form.version, spec.case, spec.auditor, "", spec.team, "", "",
        spec.due, "x" * 16, facts, activity="observation" if spec.staff else "",
        subject_kind="practitioner" if spec.staff else "case",
    )  # fmt: skip


def _store_return(db: store.Store, spec: Spec) -> None:
    final = spec.step != "draft"
    found = [{"code": "x", "field": "kss1", "message": "odd"}] if spec.step == "warned" else []
    content = f"{spec.audit_id}{spec.step}".encode()
    db.store_return(
        store.ReturnRecord(spec.audit_id, "bookmarks", final, {}, warnings=found),
        store.ReturnFile(
            f"{spec.audit_id}.docx", content, hashlib.sha256(content).hexdigest(), received_on=TODAY
        ),
        "audit",
    )


def build(url: str, specs: tuple[Spec, ...] = SPECS) -> store.Store:
    """The audits of `specs`, each taken through the library to its state, with a programme
    that shows observations' results to moderators only."""
    db = store.open_store(url)
    policy = default_policy()
    narrowed = tuple(
        dataclasses.replace(a, results_for=("moderator",)) if a.id == "observation" else a
        for a in policy.activities
    )
    policy = dataclasses.replace(policy, activities=narrowed)
    db.use_policy(policy.name, policy_snapshot(policy), "test")
    forms = [get_form(f) for f in sorted({s.form_id for s in specs})]
    with clock.frozen(TODAY):
        db.record_audits(forms, [_record(s) for s in specs], "test")
        for spec in specs:
            if spec.step == "sent":
                db.move(store.Move(spec.audit_id, (S.allocated,), S.sent, "sent"), "test")
            elif spec.step != "allocated":
                _store_return(db, spec)
            if spec.step == "checked":
                check_audit(db, spec.audit_id, user="test")
            if spec.concern:
                raised = db.raise_concern(spec.audit_id, "officer", "synthetic", "lead", None)
                assert raised is not None
                if spec.concern == "actioned":
                    db.record_concern_action(raised.id, "Spoke to the manager", "test")
    return db


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> store.Store:
    return build(f"sqlite:///{tmp_path_factory.mktemp('audit-list') / 'store.db'}")


@pytest.fixture(scope="module")
def postgresql_db(request: pytest.FixtureRequest) -> store.Store:
    from conftest import drop_pg_database, fresh_pg_database

    server = request.getfixturevalue("pg_server")
    url = fresh_pg_database(server)
    request.addfinalizer(lambda: drop_pg_database(server, url))
    return build(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> store.Store:
    found: store.Store = request.getfixturevalue(f"{request.param}_db")
    return found


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    clock.set_today(TODAY)  # conftest's real_clock puts the real date back after
    yield


# --- the store's query, on both backends -------------------------------------------------------


def listed(db: store.Store, **where: Any) -> list[str]:
    return [r.audit_id for r in db.audit_list(**where).rows]


def test_each_filter_in_the_database(db):
    hidden = ("observation",)
    month = {"first_month": MONTH, "last_month": MONTH, "hidden_activities": hidden}
    assert listed(db, **month) == sorted(ids(NOVEMBER))
    autumn = listed(db, first_month="2026-10", last_month="2026-11", hidden_activities=hidden)
    assert autumn == sorted(ids(s for s in CASES if s.month <= MONTH))
    assert len(listed(db, first_month=MONTH, last_month=MONTH)) == len(NOVEMBER) + 4  # staff
    assert listed(db, **month, states=("sent", "in progress")) == sorted(
        ids(s for s in NOVEMBER if s.state in ("sent", "in progress"))
    )
    assert listed(db, **month, states=()) == []
    for key, value, test in (
        ("team", SOUTH, lambda s: s.team == SOUTH),
        ("auditor", "Auditor B (synthetic)", lambda s: s.auditor == "Auditor B (synthetic)"),
        ("form_id", "early_help", lambda s: s.form_id == "early_help"),
        ("overdue_on", TODAY, lambda s: s.state in OWED and s.due < TODAY),
        ("warnings", True, lambda s: s.step == "warned"),
        ("concern", "open", lambda s: s.concern == "open"),
        ("concern", "any", lambda s: bool(s.concern)),
    ):
        assert listed(db, **month, **{key: value}) == sorted(ids(filter(test, NOVEMBER))), key


def test_search_by_case_number_audit_id_and_name(db):
    assert listed(db, search="ab-777") == ["CSC-2611-022"]
    assert listed(db, search="2610-00") == sorted(ids(s for s in CASES if "2610-00" in s.audit_id))
    assert listed(db, search="zebedee") == []  # a name: only for roles that see names
    assert listed(db, search="ZEBEDEE", names=True) == ["CSC-2611-007"]
    assert listed(db, search="ada zeb", names=True) == ["CSC-2611-007"]  # given then family
    assert listed(db, search="practitioner s3", names=True) == ["OBS-2611-3"]
    assert listed(db, search="%", names=True) == []  # a wildcard is a character like any


def test_sorted_and_paged_in_the_database(db):
    month = {"first_month": MONTH, "last_month": MONTH, "hidden_activities": ("observation",)}
    by_team = sorted(NOVEMBER, key=lambda s: s.audit_id)
    by_team.sort(key=lambda s: s.team)
    page = db.audit_list("team", False, 10, 10, **month)
    assert (page.total, [r.audit_id for r in page.rows]) == (40, ids(by_team[10:20]))
    descending = db.audit_list("due", True, 0, 3, **month)
    assert [r.due_date for r in descending.rows] == [dt.date(2026, 11, 30)] * 3
    assert [r.audit_id for r in descending.rows] == ["CSC-2611-021", "CSC-2611-022", "CSC-2611-023"]
    assert db.audit_list("audit", True, 38, 10, **month).total == 40
    assert [r.audit_id for r in db.audit_list("audit", True, 38, 10, **month).rows] == [
        "CSC-2611-002",
        "CSC-2611-001",
    ]


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(sqlite_db: store.Store) -> Any:
    from argon2 import PasswordHasher

    from formtool.access import accounts

    with pytest.MonkeyPatch.context() as patch:  # cheap hashes: this is about the list
        patch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        for name, role in (("olive", "officer"), ("mo", "moderator")):
            add_user(sqlite_db, name, role, PASSWORD)
    return create_app(sqlite_db, Settings(council="Example Council"))


def sign_in(app: Any, name: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    csrf = token(client.get("/login").text)
    form = {"name": name, "password": PASSWORD, "csrf": csrf, "next": "/"}
    assert client.post("/login", data=form).status_code == 303
    return client


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found[1]


@pytest.fixture(scope="module")
def officer(app: Any) -> TestClient:
    from argon2 import PasswordHasher

    from formtool.access import accounts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        return sign_in(app, "olive")


@pytest.fixture(scope="module")
def moderator(app: Any) -> TestClient:
    from argon2 import PasswordHasher

    from formtool.access import accounts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        return sign_in(app, "mo")


def shown(client: TestClient, query: str) -> tuple[list[str], str]:
    """The audits a list page shows, in order, and the page."""
    response = client.get(f"/audits?{query}")
    assert response.status_code == 200, response.text
    return re.findall(r'<th scope="row"><a href="/audits/([^"]+)">', response.text), response.text


def showing(page: str) -> str:
    found = re.search(r'id="showing"[^>]*>([^<]*)', page)
    assert found
    return " ".join(found[1].split()).replace("\u2013", "-")  # an en dash: 1-40


def test_this_month_by_default_and_the_dashboards_links(sqlite_db, officer):
    rows, page = shown(officer, "")
    assert rows == sorted(ids(NOVEMBER)) and showing(page).startswith("Showing 1-40 of 40")
    report = status(sqlite_db, MONTH)
    for query, expected in (
        (f"month={MONTH}&tally=outstanding", [o.audit_id for o in report.outstanding]),
        (f"month={MONTH}&tally=overdue&team={NORTH}", [o.audit_id for o in report.overdue
                                                      if o.team == NORTH]),
        (f"month={MONTH}&tally=returned&auditor=Auditor B (synthetic)",
         sorted(ids(s for s in NOVEMBER if S(s.state) in DONE
                    and s.auditor == "Auditor B (synthetic)"))),
        (f"month={MONTH}&state=sent", ids(sqlite_db.audit_rows([MONTH], ["sent"]))),
        ("month=2026-10&tally=audits", sorted(ids(s for s in CASES if s.month == "2026-10"))),
    ):  # fmt: skip
        expected = [a for a in expected if not a.startswith("OBS")]  # staff data: see below
        assert shown(officer, query)[0] == expected, query


def test_filters_on_the_page(officer):
    for query, test in (
        ("from=2026-10&to=2026-12&per=100", lambda s: True),
        ("to=2026-10", lambda s: s.month <= "2026-10"),
        (f"state=sent&state=in+progress&month={MONTH}", lambda s: s.month == MONTH
         and s.state in ("sent", "in progress")),
        (f"team={SOUTH}&auditor=Auditor+C+(synthetic)", lambda s: s.month == MONTH
         and s.team == SOUTH and s.auditor == "Auditor C (synthetic)"),
        ("tool=early_help", lambda s: s.month == MONTH and s.form_id == "early_help"),
        ("overdue=yes&from=2026-10", lambda s: s.state in OWED and s.due < TODAY),
        ("warnings=yes", lambda s: s.month == MONTH and s.step == "warned"),
        ("concern=open", lambda s: s.month == MONTH and s.concern == "open"),
        ("concern=any", lambda s: s.month == MONTH and bool(s.concern)),
    ):  # fmt: skip
        assert shown(officer, query)[0] == sorted(ids(filter(test, CASES))), query
    page = shown(officer, "state=sent&warnings=yes&team=North+Team")[1]
    assert re.search(r'name="state" value="sent" checked', page)  # the form shows the filter
    assert re.search(r'name="warnings" value="yes" checked', page)
    assert re.search(r"<option selected>North Team</option>", page)
    for field in ("q", "from", "to", "team", "auditor", "tool", "concern", "per"):
        assert f'<label for="f-{field}">' in page and f'id="f-{field}" name="{field}"' in page


def test_search_by_case_number_and_by_name_logged_without_the_name(sqlite_db, officer):
    assert shown(officer, "q=ab-777")[0] == ["CSC-2611-022"]
    rows, page = shown(officer, "q=Zebedee&month=2026-11")
    assert rows == ["CSC-2611-007"] and "Ada Zebedee" in page
    entry = access_entries(sqlite_db, "olive", limit=1)[0]
    assert entry.action == "viewed the audit list"
    assert "searched by name, found CSC-2611-007;" in entry.detail  # whose record was seen
    assert "zebedee" not in entry.detail.lower() and "month=2026-11" in entry.detail


def test_sorting_by_a_column_both_ways(officer):
    by_team = sorted(NOVEMBER, key=lambda s: s.audit_id)
    by_team.sort(key=lambda s: s.team)
    rows, page = shown(officer, "sort=team&dir=asc")
    assert rows == ids(by_team)
    assert re.search(
        r'<th scope="col" aria-sort="ascending"><a href="/audits\?sort=team&amp;dir=desc">Team',
        page,
    )
    rows, page = shown(officer, "sort=team&dir=desc")
    assert rows[:20] == ids(s for s in by_team if s.team == SOUTH)
    assert 'aria-sort="descending"><a href="/audits?sort=team&amp;dir=asc">Team' in page
    assert page.count("aria-sort=") == 1


def test_pages_and_their_counts(officer):
    rows, page = shown(officer, "per=25&page=2")
    assert rows == sorted(ids(NOVEMBER))[25:]
    assert showing(page).startswith("Showing 26-40 of 40")
    assert 'href="/audits?per=25&amp;page=1" rel="prev"' in page and "Page 2 of 2" in page
    rows, page = shown(officer, "per=25&page=3")
    assert rows == [] and "No audits on page 3: there are 2 page(s)" in showing(page)


def test_unknown_parameters_are_named_not_ignored(officer):
    rows, page = shown(officer, "colour=red&Month=2026-10&q=")
    assert rows == sorted(ids(NOVEMBER))
    assert "Ignored: colour, Month (not filters this list knows)." in page
    assert 'id="ignored"' not in shown(officer, "q=&team=")[1]  # empty known fields: fine


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("month=2026-13", "The month (month=) '2026-13' is not a month: write YYYY-MM"),
        ("from=2026-12&to=2026-10", "The range runs backwards: from 2026-12 to 2026-10."),
        ("month=2026-11&from=2026-10", "Give one month (month=) or a range (from= and to=)"),
        ("page=0", "The page (page=) '0' is not a whole number from 1 to 1,000,000."),
        ("page=x", "The page (page=) 'x' is not a whole number"),
        ("per=30", "Audits per page (per=) '30' is not one this list offers; use 25, 50, 100."),
        ("state=lost", "The state (state=) 'lost' is not an audit state; use allocated, sent,"),
        ("sort=colour", "The sort column (sort=) 'colour' is not one this list knows; use audit,"),
        ("dir=up", "The sort direction (dir=) 'up' is not one this list knows; use asc, desc."),
        ("tool=nope", "The tool (tool=) 'nope' is not one this list knows; use "),
        ("concern=maybe", "The concern filter (concern=) 'maybe' is not one this list knows"),
        ("overdue=no", "Overdue (overdue=) 'no' is not one this list knows; use yes."),
        ("q=a%00b", "The search (q=) has a control character; type plain text."),
    ],
)
def test_a_malformed_value_is_a_400_saying_what_is_allowed(officer, query, message):
    for path in ("/audits", "/audits/export.csv"):
        response = officer.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert message in response.text.replace("&#39;", "'"), response.text


def test_exports_every_matching_row_with_the_formula_guard(sqlite_db, officer):
    query = f"month={MONTH}&per=25&page=2&sort=audit&dir=desc"
    response = officer.get(f"/audits/export.csv?{query}")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Audit ID", "Case number", "Name", "Tool"]
    assert [r[0] for r in rows[1:]] == sorted(ids(NOVEMBER), reverse=True)  # not one page
    formula = next(r for r in rows if r[0] == "CSC-2611-013")
    assert formula[2] == "'" + FORMULA + " Family13"  # a spreadsheet shows it as text
    assert access_entries(sqlite_db, "olive", limit=1)[0].action == "exported the audit list"
    book = openpyxl.load_workbook(io.BytesIO(officer.get(f"/audits/export.xlsx?{query}").content))
    sheet = book["Audits"]
    assert sheet.max_row == len(NOVEMBER) + 1
    cell = next(r[2] for r in sheet.iter_rows(min_row=2) if r[0].value == "CSC-2611-013")
    assert cell.data_type == "s" and cell.value == FORMULA + " Family13"  # text, not a formula
    assert sheet.cell(2, 9).value == dt.datetime(2026, 11, 30)  # the due date, as a date
    assert officer.get("/audits/export.pdf").status_code == 404


def test_everything_outstanding_most_overdue_first(sqlite_db, officer):
    rows, page = shown(officer, "view=outstanding&per=100")
    expected = [
        o.audit_id for o in status(sqlite_db).outstanding if not o.audit_id.startswith("OBS")
    ]
    assert rows == expected and rows[0] == "CSC-2610-001"
    assert len(rows) == len([s for s in CASES if s.state in OWED])
    assert "(36 days overdue)" in page and "Everything outstanding: every month" in page
    assert 'href="/audits?view=outstanding"' in shown(officer, "")[1]  # linked from the list


def test_staff_data_is_never_listed_counted_or_exported_for_roles_it_is_kept_from(
    officer, moderator
):
    staff = ids(s for s in SPECS if s.staff)
    assert not set(staff) & set(shown(officer, "from=2026-01&per=100")[0])
    assert showing(shown(officer, "")[1]).startswith("Showing 1-40 of 40")
    assert shown(officer, "q=practitioner")[0] == []
    assert not set(staff) & set(shown(officer, "view=outstanding&per=100")[0])
    assert "OBS-2611" not in officer.get("/audits/export.csv").text
    rows, page = shown(moderator, "")
    assert set(staff) < set(rows) and showing(page).startswith("Showing 1-44 of 44")
    assert "OBS-2611-1" in moderator.get("/audits/export.csv").text


# --- bulk steps --------------------------------------------------------------------------------

BULK = (
    Spec("CSC-2611-101", TODAY, step="returned"),
    Spec("CSC-2611-102", TODAY, step="warned"),
    Spec("CSC-2611-103", TODAY, step="draft"),
    Spec("CSC-2611-104", TODAY, step="sent"),
    Spec("CSC-2611-105", TODAY, step="returned"),
    Spec("OBS-2611-9", TODAY, form_id="observation", staff=True, step="returned"),
)


def test_accept_selected_clean_returns_skips_the_rest_with_reasons(tmp_path):
    from argon2 import PasswordHasher

    from formtool.access import accounts

    db = build(f"sqlite:///{tmp_path / 'bulk.db'}", BULK)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        add_user(db, "olive", "officer", PASSWORD)
        client = sign_in(create_app(db, Settings()), "olive")
    page = client.get(f"/audits?month={MONTH}&sort=due").text
    assert (
        'formaction="/chase"' in page
        and f'name="back" value="/audits?month={MONTH}&amp;sort=due"' in page
    )
    picked = [*ids(BULK), "CSC-NOPE"]
    response = client.post(
        "/audits/accept",
        data={"csrf": token(page), "audit": picked, "back": f"/audits?month={MONTH}&sort=due"},
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"/audits?month={MONTH}&sort=due",
    )
    states = {r.audit_id: r.state for r in db.audit_rows()}
    assert states["CSC-2611-101"] == states["CSC-2611-105"] == "checked"
    assert [states[a] for a in ids(BULK[1:4])] == ["returned", "in progress", "sent"]
    assert states["OBS-2611-9"] == "returned"  # staff data this officer may not see
    flashed = client.get(response.headers["location"]).text.replace("&#39;", "'")
    assert (
        "Accepted 2 clean return(s): CSC-2611-101, CSC-2611-105. Skipped 5: "
        "CSC-2611-102 (its return carries warnings: check them on the audit's page); "
        "CSC-2611-103 (in progress, not returned); CSC-2611-104 (sent, not returned); "
        "OBS-2611-9 (staff data your role may not see); CSC-NOPE (not in the database)."
    ) in flashed
    again = client.post("/audits/accept", data={"csrf": token(page), "back": "//evil.example"})
    assert again.headers["location"] == "/audits"  # nothing ticked: back to the list
    assert "Select one or more audits first" in client.get("/audits").text
