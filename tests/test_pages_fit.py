"""Every page of the workspace fits a phone, a tablet and a laptop, and passes axe-core: served
on a copy of the demo's database (a month of real-looking data) and visited in Debian's
Chromium as each role at 390, 768 and 1366 px. No page may scroll sideways (a wide table
scrolls inside its own labelled, focusable region), and axe-core finds no serious or critical
violation. With FORMTOOL_SCREENSHOTS=1, screenshots of each page at the three widths go to
outputs/screenshots/fit/.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator

import pytest
from test_browser import ADMIN_TOTP, ARGS, PASSWORD, ROOT, _chromium, give_code, serving

from formtool.access.accounts import add_user
from formtool.store import open_store

from conftest import DEMO_DAY

WIDTHS = (390, 768, 1366)
SHOTS = ROOT / "outputs" / "screenshots" / "fit"
#: axe-core impacts that fail the test (minor and moderate ones are reported by axe only).
FAILING = ("serious", "critical")
#: FORMTOOL_SCREENSHOTS=1: save every page at every width, to look at them.
SHOOT = os.environ.get("FORMTOOL_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def demo_server(demo_run, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """`formtool serve` on a copy of the demo's database, its today the demo's; (url, an
    audit with a return)."""
    _chromium()
    folder = tmp_path_factory.mktemp("fit")
    target = folder / "formtool.db"
    source = sqlite3.connect(demo_run.out / "formtool.db")
    with sqlite3.connect(target) as copy:
        source.backup(copy)  # with what is still in the demo's WAL
    source.close()
    db = open_store(f"sqlite:///{target}")
    for name, role in (("mo", "moderator"), ("pat", "viewer"), ("ada", "admin")):
        add_user(db, name, role, PASSWORD)
    db.enrol_totp("ada", ADMIN_TOTP, 0, dt.datetime(2026, 1, 1))
    returned = next(r for r in db.audit_rows() if r.return_id and r.form_id == "csc")
    (folder / "formtool.toml").write_text('council = "Example Council"\n', encoding="utf-8")
    with serving(f"sqlite:///{target}", folder, DEMO_DAY) as url:
        yield url, returned.audit_id


def _pages(audit_id: str) -> dict[str, list[str]]:
    month = f"{DEMO_DAY:%Y-%m}"
    return {
        "mo": [
            "/",
            "/audits",
            f"/audits?view=outstanding&month={month}",
            "/to-chase",
            f"/audits/{audit_id}",
            "/allocate",
            "/returns",
            "/held",
            "/concerns",
            "/moderation",
            f"/reports?period={month}",
            "/forms",
            "/forms/csc",
            "/account/password",
        ],
        "pat": ["/", f"/reports?period={month}", "/reports?period=2020-01", "/account/totp"],
        "ada": [
            "/admin/users",
            "/admin/sessions",
            "/admin/access-log",
            "/admin/data-protection",
            "/account/totp",
        ],
    }


def _sign_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    give_code(page, url, name)
    page.wait_for_url(f"{url}/")


def overflow(page) -> str:
    """'' when the page does not scroll sideways, else how wide it is and what sticks out."""
    return str(
        page.evaluate(
            """() => {
            const root = document.documentElement;
            if (root.scrollWidth <= root.clientWidth) return "";
            const wide = [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > root.clientWidth + 1
                             && !e.closest(".table-wrap"))
                .slice(0, 3)
                .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                          + (e.className ? "." + String(e.className).split(" ")[0] : ""));
            return root.scrollWidth + " px wide: " + wide.join(", ");
        }"""
        )
    )


def _scrolling(page) -> list[str]:
    """The tables that need their scroll region (wider than it)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll(".table-wrap")]
                .filter(w => w.scrollWidth > w.clientWidth + 1)
                .map(w => `table "${w.getAttribute("aria-label")}" is ${w.scrollWidth} px `
                          + `in ${w.clientWidth} px`)"""
        )
    )


def serious(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}"
        for v in found
        if v["impact"] in FAILING
    ]


def _name(path: str) -> str:
    return path.strip("/").split("?")[0].replace("/", "-") or "dashboard"


def test_every_page_fits_three_widths_and_passes_axe(demo_server, browser_for_fit) -> None:
    url, audit_id = demo_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    context = browser_for_fit.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/login")
    problems += [f"/login: {p}" for p in serious(page)]
    for name, paths in _pages(audit_id).items():
        context.clear_cookies()
        page.set_viewport_size({"width": 1366, "height": 900})
        _sign_in(page, url, name)
        for path in paths:
            response = page.goto(f"{url}{path}")
            assert response is not None and response.status == 200, (name, path)
            problems += [f"{path} as {name}: {p}" for p in serious(page)]
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                wide = overflow(page)
                if wide:
                    problems.append(f"{path} as {name} at {width} px: {wide}")
                if width == WIDTHS[-1]:  # on a laptop every table fits its panel
                    problems += [f"{path} as {name}: {t}" for t in _scrolling(page)]
                if SHOOT:
                    shot = SHOTS / f"{name}-{_name(path)}-{width}.png"
                    page.screenshot(path=str(shot), full_page=True)
            page.set_viewport_size({"width": 1366, "height": 900})
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def browser_for_fit(demo_server) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(_chromium()), args=ARGS)
        yield chromium
        chromium.close()
