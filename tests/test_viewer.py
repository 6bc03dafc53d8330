"""The viewer role sees figures, never a child (issue 16): every page and download a viewer
can reach from the dashboard carries no case number, audit id, name, date of birth or free
text, whatever an officer looked at first; officers keep the full pack. On SQLite and
PostgreSQL, through the web workspace (Starlette's TestClient)."""

from __future__ import annotations

import datetime as dt
import html
import io
import random
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.definitions import FormDefinition, get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, render
from formtool.packs import charts
from formtool.packs.figures import load_figures
from formtool.packs.pmu import OFFICERS_PACK, pmu_document
from formtool.packs.workbook import workbook
from formtool.periods import period_for
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.settings import Settings
from formtool.web import create_app

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "figures only, never a child 16"
DUE = dt.date(2026, 11, 30)
MONTH = "2026-11"
TODAY = dt.date(2026, 12, 3)  # the population is last month's: the shortcuts reach it
PLANTED = "PLANTED-PHRASE-7Q"
TOOLS = {"csc": 6, "early_help": 2}  # CSC above the minimum base, Early Help below it
DEPTH = 3  # clicks from the dashboard: / -> /reports -> a period -> its downloads


@dataclass(frozen=True)
class Population:
    """Audits of two tools, their completed returns (one with the planted phrase in every
    free-text answer and action) and what identifies them."""

    cases: dict[str, list[Case]]  # form id -> its cases
    returns: list[tuple[str, bytes]]
    case_numbers: list[str]
    secrets: frozenset[str]  # none of these may reach a viewer (whitespace removed)


def _plant(form: FormDefinition, answers: dict[str, str]) -> None:
    """The planted phrase in every free-text answer, evidence and action of one return."""
    j = form.judgements
    for _, item in form.items():
        if item.kind == "text" and item.key in answers and item.key != j.completed_by:
            answers[item.key] = PLANTED
        if item.evidence and item.evidence_key in answers:
            answers[item.evidence_key] = PLANTED
        for column in item.columns if item.kind == "table" else ():
            if column.role in ("action", "recommendation"):
                answers[item.cell_key(1, column)] = PLANTED


def _rows(form: FormDefinition, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Made-up cases with names and dates of birth nothing else in a pack can contain."""
    rows = [synthetic_case(form, i, DUE, rng) for i in range(1, count + 1)]
    for i, row in enumerate(rows, start=1):
        tag = f"{form.id[:2].upper()}{i}"
        row |= {"given_names": f"Ysolde{tag}", "family_name": f"Quenby{tag}"}
        if "dob" in row:
            row["dob"] = f"2014-02-{10 + i:02d}"
    return rows


def _identifiers(case: Case) -> set[str]:
    found = {case.case_number, case.audit_id, case.facts["auditor"]}  # staff are people too
    found |= {case.facts[k] for k in ("given_names", "family_name", "worker") if case.facts.get(k)}
    if case.facts.get("dob"):
        born = dt.datetime.strptime(case.facts["dob"], "%d/%m/%Y").date()
        found |= {born.isoformat(), f"{born:%d/%m/%Y}"}
    return found


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Population:
    rng = random.Random(16)
    folder = tmp_path_factory.mktemp("viewer")
    cases, returns, secrets = {}, [], {PLANTED}
    for form_id, count in TOOLS.items():
        form = get_form(form_id)
        path = folder / f"{form_id}.csv"
        write_case_list(path, _rows(form, count, rng))
        cases[form_id] = load_cases(path, form)
        for case in cases[form_id]:
            answers = synthetic_answers(form, case, rng, TODAY)
            if case is cases[form_id][0]:
                _plant(form, answers)
            blank = render(form, case, "docx")
            returns.append((f"{case.audit_id}.docx", fill_return(blank, "docx", form, answers)))
            secrets |= _identifiers(case)
    numbers = [c.case_number for found in cases.values() for c in found]
    return Population(cases, returns, numbers, frozenset("".join(s.split()) for s in secrets))


# --- the workspace (as tests/test_web.py's helpers, copied: that file changes with sign-in) ----


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: these tests are about what pages show, not the hash's cost."""
    from argon2 import PasswordHasher

    from formtool.access import accounts as users

    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no csrf field on the page"
    return found[1]


def client_for(app: Any, name: str) -> TestClient:
    """A client signed in as `name`."""
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login").text
    response = client.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf": _csrf(page), "next": "/"}
    )
    assert response.status_code == 303, response.text
    return client


def post(client: TestClient, url: str, data: dict[str, str], files: Any = None, page: str = "/"):
    """A form post carrying the CSRF token of `page` (as a browser would)."""
    return client.post(url, data={"csrf": _csrf(client.get(page).text), **data}, files=files)


@pytest.fixture
def db(db_url: str) -> Any:
    db = store.open_store(db_url)
    for name, role in (("olive", "officer"), ("mo", "moderator"), ("vic", "viewer")):
        add_user(db, name, role, PASSWORD)
    return db


@pytest.fixture
def app(db: Any) -> Any:
    return create_app(db, Settings(council="Example Council"))


@pytest.fixture
def today() -> Iterator[dt.date]:
    with clock.frozen(TODAY):
        yield TODAY


def _stock(db: Any, app: Any, population: Population) -> None:
    """Audits recorded, returns imported by an officer, one moderated down to Inadequate (so
    the moderation log and the re-audit list are not empty)."""
    for form_id, found in population.cases.items():
        record_audits(db, get_form(form_id), found, user="test")
    files = [("files", (n, io.BytesIO(d))) for n, d in population.returns]
    response = post(client_for(app, "olive"), "/returns", {}, files, page="/returns")
    assert response.text.count(">imported<") == len(population.returns), response.text
    moderated = population.cases["csc"][0].audit_id
    grade = {"grade": "Inadequate", "comment": PLANTED}
    response = post(client_for(app, "mo"), f"/audits/{moderated}/moderate", grade)
    assert response.status_code == 303, response.text


# --- what a response carries, as text -----------------------------------------------------


def _zip_text(data: bytes) -> str:
    """Every XML part of a docx or xlsx (document, headers, shared and inline strings, sheet
    names, charts, properties) with its tags removed."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = [
            archive.read(n).decode("utf-8")
            for n in archive.namelist()
            if n.endswith((".xml", ".rels"))
        ]
    return html.unescape(re.sub(r"<[^>]*>", "", "".join(parts)))


def _xlsx_text(data: bytes) -> str:
    """The XML text, and every cell's value as openpyxl reads it (dates are numbers in XML)."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data))
    values = [str(c.value) for sheet in book for row in sheet.iter_rows() for c in row]
    return _zip_text(data) + "".join(book.sheetnames) + "".join(values)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    pdf = PdfReader(io.BytesIO(data))
    return "".join(page.extract_text() for page in pdf.pages) + str(pdf.metadata)


def text_of(response: Any) -> str:
    """What a response carries, whitespace removed (so a wrapped phrase still matches)."""
    kind = response.headers.get("content-type", "")
    readers: dict[str, Callable[[bytes], str]] = {
        "application/pdf": _pdf_text,
        "application/vnd.openxmlformats-officedocument.wordprocessingml": _zip_text,
        "application/vnd.openxmlformats-officedocument.spreadsheetml": _xlsx_text,
    }
    read = next((r for k, r in readers.items() if kind.startswith(k)), None)
    text = read(response.content) if read else html.unescape(response.text)
    name = response.headers.get("content-disposition", "") + response.headers.get("location", "")
    return "".join((name + text).split())


# --- the walk -------------------------------------------------------------------------------


class Links(HTMLParser):
    """Every href on a page (the parser unescapes &amp;)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if href:
            self.found.append(href)


def _next_urls(url: str, response: Any) -> list[str]:
    if not response.headers.get("content-type", "").startswith("text/html"):
        return []
    links = [urljoin(url, h) for h in Links(response.text).found if h.startswith("/")]
    links = [h for h in links if not h.startswith("//")]
    # the workbook with names too, whether or not the page offers it
    return links + [h + "&names=1" for h in links if "/pmu.xlsx?" in h and "names=1" not in h]


def walk(client: TestClient, keep: Callable[[str], bool] = lambda path: True) -> dict[str, str]:
    """url -> text of every same-site link within DEPTH clicks of the dashboard."""
    seen: dict[str, str] = {}
    frontier = ["/", "/status.json"]
    for _ in range(DEPTH + 1):
        found = []
        for url in dict.fromkeys(frontier):
            if url in seen or not keep(urlsplit(url).path):
                continue
            response = client.get(url)
            assert response.status_code in (200, 403), (url, response.status_code)
            seen[url] = text_of(response)
            found += _next_urls(url, response)
        frontier = found
    return seen


def leaks(texts: dict[str, str], secrets: frozenset[str]) -> list[tuple[str, str]]:
    return sorted((url, s) for url, text in texts.items() for s in secrets if s in text)


def _viewer_pages(path: str) -> bool:
    return path == "/" or path.startswith(("/reports", "/forms", "/static"))


@pytest.fixture
def chart_labels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every label, title and series name drawn into a report chart."""
    drawn: list[str] = []
    for name in ("grade_chart", "stacked_by_group", "trend_chart"):
        draw = getattr(charts, name)

        def recording(*args: Any, _draw: Any = draw, **kwargs: Any) -> bytes:
            drawn.append(repr((args, kwargs)))
            return bytes(_draw(*args, **kwargs))

        monkeypatch.setattr(charts, name, recording)
    return drawn


# --- tests ----------------------------------------------------------------------------------

#: Who may see what is decided above the store, so the long page walks run on one backend; the
#: figures behind them are checked on both (test_aggregate_pack_keeps_every_figure).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_viewer_walk_carries_no_case_detail(db, app, population, today, chart_labels):
    _stock(db, app, population)
    viewer = walk(client_for(app, "vic"))
    assert leaks(viewer, population.secrets) == []
    downloads = [u for u in viewer if "/reports/pmu." in u]
    periods = {urlsplit(u).query.split("&")[0] for u in downloads}
    assert {"period=2026-11", "period=2026-Q3", "period=2026"} <= periods  # figures were there
    assert len(downloads) == 4 * len(periods)  # docx, pdf, xlsx, xlsx with names
    assert any(p.startswith("/forms/") for p in viewer) and f"/?month={MONTH}" in viewer
    assert "Workbookwithnames" not in viewer[f"/reports?period={MONTH}"]
    assert "".join(OFFICERS_PACK.split()) in viewer[f"/reports/pmu.docx?period={MONTH}"]
    labels = "".join("".join(chart_labels).split())
    assert chart_labels and not [s for s in population.secrets if s in labels]
    # the same walk as an officer finds them: the check can fail
    officer = walk(client_for(app, "olive"), _viewer_pages)
    book = officer[f"/reports/pmu.xlsx?period={MONTH}"]
    assert all(n in book for n in population.case_numbers) and PLANTED in book
    named = officer[f"/reports/pmu.xlsx?period={MONTH}&names=1"]
    assert all(c.facts["given_names"] in named for c in population.cases["csc"])


@SQLITE_ONLY
def test_officer_cached_report_never_reaches_viewer(db, app, population, today):
    _stock(db, app, population)
    officer, viewer = client_for(app, "olive"), client_for(app, "vic")
    urls = [f"/reports?period={p}" for p in (MONTH, "2026-Q3", "2026")]
    follow_up = population.cases["csc"][0].case_number  # in the officer's re-audit list
    for url in urls:
        assert follow_up in officer.get(url).text
    for kind in ("docx", "pdf"):
        shown = text_of(officer.get(f"/reports/pmu.{kind}?period={MONTH}"))
        assert follow_up in shown
    seen = {url: text_of(viewer.get(url)) for url in urls}
    for kind in ("docx", "pdf", "xlsx", "xlsx?names=1"):
        url = f"/reports/pmu.{kind}{'&' if '?' in kind else '?'}period={MONTH}"
        seen[url] = text_of(viewer.get(url))
    assert leaks(seen, population.secrets) == []
    assert follow_up in officer.get(urls[0]).text  # and the officer's pack is still full


def test_aggregate_pack_keeps_every_figure(db, app, population, today):
    import openpyxl

    _stock(db, app, population)
    figures = load_figures(db, period_for(month=MONTH), TODAY)
    full, aggregate = pmu_document(figures), pmu_document(figures, aggregate_only=True)
    pairs = zip(full.parts, aggregate.parts, strict=True)  # the same parts, in the same order
    changed = [i for i, (a, b) in enumerate(pairs) if a != b]
    assert changed == [0, len(full.parts) - 2]  # the summary's last line, the re-audit list
    assert aggregate.parts[0].paragraphs == [*full.parts[0].paragraphs, OFFICERS_PACK]
    graded_down = aggregate.parts[-2]  # Inadequate: a count, not the list of cases
    assert full.parts[-2].tables and not graded_down.tables
    assert graded_down.paragraphs == [f"{len(figures.follow_up)} audit(s) were graded inadequate."]
    assert "Too few Early Help audits were completed (2; at least 5" in " ".join(
        b for p in aggregate.parts for b in p.bullets
    )  # small numbers stay suppressed
    book = openpyxl.load_workbook(io.BytesIO(workbook(figures, aggregate_only=True)))
    assert book.sheetnames == ["Summary"]
    full_book = openpyxl.load_workbook(io.BytesIO(workbook(figures, include_names=True)))
    summary = [[c.value for c in row] for row in full_book["Summary"].iter_rows()]
    shown = [[c.value for c in row] for row in book["Summary"].iter_rows()]
    assert shown[0] == summary[0] and shown[2:] == summary[2:]
