"""Twelve months of allocation under each shipped programme policy, on synthetic staff and
cases, carrying the history forward as the database would: each council's rules hold every
month (Rochdale: managers in their own teams, none in August and December; Windsor and
Maidenhead: 25 + 14, deep dives in April and August, own/peer by month, audits on closure;
Hampshire: a file per worker, due the 20th of the next month; Hull: as before)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest

from formtool.periods import Month, months_from
from formtool.programme import activities
from formtool.programme.allocation import (
    CLOSURE,
    Allocation,
    Auditor,
    History,
    allocate,
    run_allocation,
)
from formtool.programme.deadlines import nearest_working_day, on_or_before
from formtool.programme.policy import Policy, load_policy
from formtool.programme.rules import use_policy
from formtool.programme.sampling import year_of

from conftest import write_cases

TEAMS = [f"Team {n}" for n in range(1, 6)]
Past = list[tuple[Month, dict[str, str]]]  # (month, allocated row), oldest first
Choose = Callable[[Month, History], list[dict[str, str]]]


def history_for(policy: Policy, month: Month, past: Past) -> History:
    """What read_history would read from a database holding `past`."""
    span = policy.exclusion_months
    first, last = year_of(policy, month)
    months: defaultdict[str, set[str]] = defaultdict(set)
    for when, row in past:
        months[row["auditor"]].add(when)
    return History(
        recent=frozenset(
            r["case_number"] for when, r in past if month.shift(-span) <= when <= month.shift(span)
        ),
        done=dict(Counter(r["auditor"] for when, r in past if first <= when <= last)),
        months={name: frozenset(m) for name, m in months.items()},
    )


def staff(rows: list[dict[str, str]]) -> list[Auditor]:
    """Fresh auditors (allocate counts on them) from auditors-file rows."""
    return [
        Auditor(
            r["name"],
            r["email"],
            r["team"],
            frozenset(),
            group=r.get("group", ""),
            peer_team=r.get("peer_team", ""),
        )
        for r in rows
    ]


def person(name: str, team: str, group: str = "", peer: str = "") -> dict[str, str]:
    email = name.lower().replace(" ", ".") + "@example.invalid"
    return {"name": name, "email": email, "team": team, "group": group, "peer_team": peer}


def cases(
    rng: random.Random, prefix: str, per_team: int, categories: tuple[str, ...]
) -> list[dict[str, str]]:
    return [
        {
            "case_number": f"{prefix}{t}{i:03d}",
            "category": rng.choice(categories),
            "team": team,
            "worker": f"Worker {t}{i % 3 + 1}",
            "placed_for_adoption": "Yes" if i % 17 == 0 else "No",
        }
        for t, team in enumerate(TEAMS, start=1)
        for i in range(per_team)
    ]


def twelve_months(
    policy: Policy,
    first: str,
    population: list[dict[str, str]],
    people: list[dict[str, str]],
    choose: Choose | None = None,
    with_activities: bool = False,
) -> list[tuple[Month, Allocation]]:
    """Allocate twelve consecutive months, each with the history the ones before left (and,
    `with_activities`, the policy's activities drawn as `formtool allocate` draws them)."""
    past: Past = []
    made: list[tuple[Month, Allocation]] = []
    for month in months_from(Month(first), 12):
        history = history_for(policy, month, past)
        chosen = choose(month, history) if choose else []
        allocation = allocate(population, staff(people), policy, month, 7, history, chosen)
        if with_activities:
            inputs = activities.Inputs(
                policy, month, population, [], staff(people), random.Random(7), lambda _: {},
                allocation.rows, {r["case_number"] for r in allocation.rows}, history.recent,
            )  # fmt: skip
            allocation.rows += activities.plan(inputs, len(made) * 10 + 1).rows
        past += [(month, row) for row in allocation.rows]
        made.append((month, allocation))
    return made


def never_twice_within(made: list[tuple[Month, Allocation]], months: int, *, but: str = "") -> None:
    last: dict[str, Month] = {}
    for month, allocation in made:
        for row in allocation.rows:
            before = last.get(row["case_number"])
            if row["audit_type"] != but:
                assert before is None or before < month.shift(-months), row
            last[row["case_number"]] = month


# --- Rochdale (seed 004) -----------------------------------------------------------------

CSC, EH, UNIT = "social care managers", "early help managers", "safeguarding unit manager"
RANDOM, CHOSEN = "Random case in the manager's team", "Case chosen by the manager"


@pytest.fixture(scope="module")
def rochdale() -> tuple[list[tuple[Month, Allocation]], list[dict[str, str]]]:
    rng = random.Random(4)
    population = cases(rng, "R", 55, ("cin", "cp", "lac")) + cases(rng, "E", 14, ("early_help",))
    people = [
        *(person(f"Manager {t}{n}", team, CSC) for t, team in enumerate(TEAMS, 1) for n in (1, 2)),
        *(person(f"Early Help Manager {t}", team, EH) for t, team in enumerate(TEAMS, 1)),
        person("Unit Manager S1", "Safeguarding Unit", UNIT),
    ]
    managers = [p for p in people if p["group"] == CSC]

    def choose(month: Month, history: History) -> list[dict[str, str]]:
        """Each manager names a case of their team not audited in the last year (but
        Manager 11 leaves April's choice open)."""
        named: list[dict[str, str]] = []
        if month.number in (8, 12):
            return named
        free = [c for c in population if c["case_number"] not in history.recent]
        for manager in managers:
            if (month, manager["name"]) == ("2026-04", "Manager 11"):
                continue
            mine = [
                c
                for c in free
                if c["team"] == manager["team"] and c["category"] in ("cin", "cp", "lac")
            ]
            case = rng.choice(mine)
            free.remove(case)
            named.append({"auditor": manager["name"], "case_number": case["case_number"]})
        return named

    policy = load_policy("rochdale")
    return twelve_months(policy, "2026-04", population, people, choose), people


def test_rochdale_managers_audit_two_cases_a_month_in_their_own_team(rochdale):
    made, people = rochdale
    team_of = {p["name"]: p["team"] for p in people}
    for month, allocation in made:
        rows = allocation.rows
        if month.number in (8, 12):  # "with the exception of August and December"
            assert rows == [] and allocation.choices == []
            assert allocation.unallocated[0] == (
                f"{RANDOM}: every auditor in group(s) {CSC} has {month.name} off or is on break."
            )
            continue
        for manager in (p["name"] for p in people if p["group"] == CSC):
            mine = [r for r in rows if r["auditor"] == manager]
            assert all(r["team"] == team_of[manager] for r in mine)
            kinds = sorted(r["audit_type"] for r in mine)
            if (month, manager) == ("2026-04", "Manager 11"):
                assert kinds == [RANDOM]
                assert allocation.choices == [
                    {"auditor": manager, "sample": CHOSEN, "form": "csc", "team": "Team 1"}
                ]
            else:
                assert kinds == [CHOSEN, RANDOM], (month, manager)
        for manager in (p["name"] for p in people if p["group"] == EH):
            [row] = [r for r in rows if r["auditor"] == manager]
            assert (row["form"], row["team"]) == ("early_help", team_of[manager])
        unit = sorted(r["category"] for r in rows if r["auditor"] == "Unit Manager S1")
        assert unit == ["cp", "lac"]
        assert len(rows) == 10 * 2 + 5 + 2 - (month == "2026-04")
    never_twice_within(made, 12)


def test_rochdale_audits_are_due_the_last_working_day_and_moderated_by_the_14th(rochdale):
    made, _ = rochdale
    policy = load_policy("rochdale")
    for month, allocation in made:
        due = on_or_before(month.last_day)
        assert {r["due_date"] for r in allocation.rows} <= {due.isoformat()}
        assert allocation.due == due
        after = month.shift(1)
        overview = policy.due("moderation", "csc", month.year, month.number)
        assert overview == nearest_working_day(dt.date(after.year, after.number, 14))
    assert made[8][1].due == dt.date(2026, 12, 31)  # a Thursday
    assert made[1][1].due == dt.date(2026, 5, 29)  # 31 May is a Sunday, 29 the Friday


# --- Windsor and Maidenhead (seed 002) --------------------------------------------------

SC, EHTM = "social care managers", "early help team managers"
DEEP_DIVE_MONTHS = (4, 8)
#: Appendix 1: early help audits in the manager's own service area or a peer one.
EH_TEAMS = {1: "own", 2: "peer", 3: "peer", 5: "own", 6: "peer", 7: "own", 9: "own"}
EH_TEAMS |= {10: "peer", 11: "peer", 12: "own"}


@pytest.fixture(scope="module")
def windsor() -> tuple[list[tuple[Month, Allocation]], list[dict[str, str]], tuple[str, str]]:
    rng = random.Random(2)
    population = cases(rng, "W", 62, ("cin", "cp", "lac")) + cases(rng, "H", 55, ("early_help",))
    peer = {team: TEAMS[(i + 1) % 5] for i, team in enumerate(TEAMS)}
    people = [
        *(person(f"Manager {t}{n}", team, SC) for t, team in enumerate(TEAMS, 1) for n in (1, 2)),
        *(person(f"Team Manager {t}", team, EHTM, peer[team]) for t, team in enumerate(TEAMS, 1)),
        person("Team Manager 12", "Team 1", EHTM, peer["Team 1"]),
        person("Team Manager 22", "Team 2", EHTM, peer["Team 2"]),
    ]
    closed = {"case_number": "X1", "category": "cp", "team": "Team 3", "worker": "Worker 31"}
    population.append(closed | {"closed_on": "2026-05-20", "last_audited": "2026-03-02"})
    helped = {"case_number": "Y1", "category": "early_help", "team": "Team 4"}
    population.append(helped | {"worker": "Worker 41", "closed_on": "2026-07-09"})
    policy = load_policy("windsor-maidenhead")
    made = twelve_months(policy, "2026-01", population, people, with_activities=True)
    return made, people, ("X1", "Y1")


def test_windsor_and_maidenhead_audit_25_and_14_a_month_and_deep_dive_twice(windsor):
    made, _, _ = windsor
    for month, allocation in made:
        by_sample = Counter(r["audit_type"] for r in allocation.rows if r["audit_type"] != CLOSURE)
        if month.number in DEEP_DIVE_MONTHS:
            assert by_sample == {  # the thematic activities of 6.14 and Appendix 1
                "Social care deep dive audit": 10,
                "Early help deep dive audit": 10,
            }, month
        else:
            assert by_sample == {
                "Social care managers' case file audits": 25,
                "Early help managers' case file audits": 14,
            }, month
        assert not allocation.unallocated, allocation.unallocated
    never_twice_within(made, 12, but=CLOSURE)


def test_windsor_and_maidenhead_team_rules_and_the_two_a_month_cap(windsor):
    made, people, _ = windsor
    by_name = {p["name"]: p for p in people}
    for month, allocation in made:
        per_manager = Counter(
            r["auditor"]
            for r in allocation.rows
            if r["audit_type"] == "Early help managers' case file audits"
        )
        assert max(per_manager.values(), default=0) <= 2  # 5.9: two each
        for row in allocation.rows:
            auditor = by_name[row["auditor"]]
            if row["audit_type"] == "Early help managers' case file audits":
                rule = EH_TEAMS[month.number]
                team = auditor["team"] if rule == "own" else auditor["peer_team"]
                assert row["team"] == team, (month, rule, row)
            elif row["audit_type"] != CLOSURE:
                assert row["team"] != auditor["team"]


def test_a_case_closed_last_month_is_audited_on_closure_by_its_own_team(windsor):
    """6.17: "on closure of any case": a social care case with the social care tool by a
    social care manager, an early help case with the early help tool by an early help team
    manager, each of the case's own team."""
    made, people, (social, helped) = windsor
    team_of = {p["name"]: p["team"] for p in people}
    closures = [(m, r) for m, a in made for r in a.rows if r["audit_type"] == CLOSURE]
    assert [(m, r["case_number"], r["form"]) for m, r in closures] == [
        ("2026-06", social, "csc"),
        ("2026-08", helped, "early_help"),
    ]
    (_, row), (_, early) = closures
    assert team_of[row["auditor"]] == row["team"] == "Team 3"
    assert row["auditor"].startswith("Manager 3")  # a social care manager of the team
    assert team_of[early["auditor"]] == early["team"] == "Team 4"
    assert early["auditor"] == "Team Manager 4"


# --- Hampshire (seed 000) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hampshire() -> tuple[list[tuple[Month, Allocation]], list[dict[str, str]]]:
    rng = random.Random(0)
    population = cases(rng, "Q", 42, ("cin", "cp", "lac"))  # 14 files per worker
    people = [person(f"Service Manager {t}", team) for t, team in enumerate(TEAMS, 1)]
    people.append(person("Service Manager 6", "Team 5"))
    policy = load_policy("hampshire")
    return twelve_months(policy, "2026-04", population, people), people


def test_hampshire_audits_one_file_per_worker_in_their_own_team(hampshire):
    made, people = hampshire
    team_of = {p["name"]: p["team"] for p in people}
    for _, allocation in made:
        per_worker = Counter(r["worker"] for r in allocation.rows)
        assert len(per_worker) == 15 and set(per_worker.values()) == {1}
        assert all(team_of[r["auditor"]] == r["team"] for r in allocation.rows)
        assert not allocation.unallocated
    never_twice_within(made, 12)  # 12.1: not selected again for at least 12 months


def test_hampshire_quality_practice_is_due_the_20th_of_the_next_month(hampshire):
    made, _ = hampshire
    for month, allocation in made:
        after = month.shift(1)
        due = on_or_before(dt.date(after.year, after.number, 20))
        assert {r["due_date"] for r in allocation.rows} == {due.isoformat()}
        assert allocation.due == due
    dues = {m: a.due for m, a in made}
    assert dues["2026-05"] == dt.date(2026, 6, 19)  # 20 June 2026 is a Saturday
    assert dues["2026-11"] == dt.date(2026, 12, 18)  # 20 December 2026 is a Sunday


# --- Hull (seed 001) ---------------------------------------------------------------------


def test_hull_twelve_months_keep_the_yearly_cap_and_never_the_own_team():
    rng = random.Random(1)
    population = cases(rng, "C", 40, ("cin", "cp", "lac")) + cases(
        rng, "F", 8, ("foster_carer", "prospective_adopter")
    )
    people = [person(f"Auditor {t}{n}", team) for t, team in enumerate(TEAMS, 1) for n in (1, 2, 3)]
    made = twelve_months(load_policy("hull"), "2026-04", population, people)
    team_of = {p["name"]: p["team"] for p in people}
    per_auditor = Counter(r["auditor"] for _, a in made for r in a.rows)
    assert max(per_auditor.values()) <= 10 and sum(per_auditor.values()) == 150  # the cap
    assert all(team_of[r["auditor"]] != r["team"] for _, a in made for r in a.rows)
    assert all(r["due_date"] == m.last_day.isoformat() for m, a in made for r in a.rows)
    assert made[0][1].as_dict()["allocated"] == 49
    never_twice_within(made, 12)


# --- one month per policy in a database (SQLite and PostgreSQL) ---------------------------

#: Each policy's auditors, one per line: name, team, group, peer team.
STAFF: dict[str, list[tuple[str, ...]]] = {
    "hull": [("Auditor A", "Team 1"), ("Auditor B", "Team 2"), ("Auditor C", "Team 3")],
    "rochdale": [
        ("Manager A", "Team 1", CSC),
        ("Manager B", "Team 2", CSC),
        ("Early Help Manager A", "Team 1", EH),
        ("Unit Manager A", "Safeguarding Unit", UNIT),
    ],
    "windsor-maidenhead": [
        ("Manager A", "Team 1", SC),
        ("Manager B", "Team 2", SC),
        ("Team Manager A", "Team 1", EHTM, "Team 2"),
        ("Team Manager B", "Team 2", EHTM, "Team 1"),
    ],
    "hampshire": [("Service Manager A", "Team 1"), ("Service Manager B", "Team 2")],
}
#: A month for each, one after another in one database.
ONE_MONTH = {"hull": "2026-08", "rochdale": "2026-09", "windsor-maidenhead": "2026-10"}
ONE_MONTH["hampshire"] = "2026-11"


def test_one_month_under_each_shipped_policy_lands_in_the_database(tmp_path, db):
    """CI's PostgreSQL run: each shipped policy, made the database's own (`programme use`),
    allocates a month whose audits and programme version are recorded. Hampshire's quality
    practice audits of November, due 18 December, keep November in their ids."""
    facts = {"family_name": "Example", "given_names": "Sam", "manager": "A Manager"}
    for name, month in ONE_MONTH.items():
        population = [
            {"case_number": f"{name[:2].upper()}{t}{i:02d}", "category": c, "team": f"Team {t}"}
            | {"worker": f"Worker {t}{i % 2}", "placed_for_adoption": "No"}
            | facts
            for t in (1, 2, 3)
            for i, c in enumerate(["cin", "cp", "lac", "early_help"] * 3)
        ]
        people = [person(s[0], s[1], *s[2:]) for s in STAFF[name]]
        policy, _ = use_policy(db, name, None, "test")
        out = tmp_path / f"{name}.csv"
        made = run_allocation(
            db,
            write_cases(tmp_path / f"{name}-population.csv", population),
            write_cases(tmp_path / f"{name}-auditors.csv", people),
            month,
            None,
            1,
            out,
        )
        [recorded] = db.preview_allocation(lambda reads, m=month: reads.month_allocations(m))
        assert (recorded.programme, recorded.programme_version) == (name, policy.version)
        assert policy.version == 1 and recorded.audits == len(made.rows) > 0, made.unallocated
        stored = db.audit_rows([month])
        assert sorted(r.case_number for r in stored) == sorted(r["case_number"] for r in made.rows)
    quality = db.audit_rows(["2026-11"])
    due = dt.date(2026, 12, 18)  # the 20th is a Sunday
    assert {(r.form_id, r.due_date) for r in quality} == {("quality_practice", due)}
    assert all(r.audit_id.endswith("-202611") for r in quality)
    assert {r["audit_id"] for r in made.rows} == {r.audit_id for r in quality}  # the case list's
