"""Allocation under a programme policy: team rules, group quotas and months off, the year a
quota counts in, rest between audits, the exclusion period, re-audits, audits on closure,
chosen slots, the break limit, due dates per tool, the auditors file's group columns, and
what `run_allocation` records."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from formtool.programme.allocation import (
    CLOSURE,
    REAUDIT,
    AllocationError,
    Auditor,
    History,
    allocate,
    check_groups,
    load_auditors,
    load_chosen,
    load_plan,
    load_population,
    read_history,
    rules_in_words,
    run_allocation,
)
from formtool.programme.policy import (
    AuditorGroup,
    AuditorRules,
    Deadline,
    DeadlineRule,
    OnClosure,
    Policy,
    Reaudit,
    SampleRule,
    load_policy,
)
from formtool.store import AllocationReads

from conftest import write_cases

MONTH = "2026-11"
HULL = load_policy("hull")


def policy(*samples: SampleRule, **changes: Any) -> Policy:
    """Hull's programme with these samples and changes (auditors=AuditorRules(...), ...)."""
    return replace(HULL, samples=samples, **changes)


def sample(size: int = 0, team: str | dict[int, str] = "other", **more: Any) -> SampleRule:
    return SampleRule("Control", "csc", ("cin",), size, team=team, **more)


def case(number: str, team: str, **more: str) -> dict[str, str]:
    return {"case_number": number, "category": "cin", "team": team} | more


def auditor(name: str, team: str, group: str = "", peer: str = "") -> Auditor:
    email = f"{name.lower().replace(' ', '.')}@example.invalid"
    return Auditor(name, email, team, frozenset(), group=group, peer_team=peer)


def teams_of(result: Any, people: list[Auditor]) -> set[tuple[str, str]]:
    """(auditor's team, case's team) for every row."""
    team = {a.name: a.team for a in people}
    return {(team[r["auditor"]], r["team"]) for r in result.rows}


@pytest.mark.parametrize(
    ("rule", "pairs"),
    [
        ("other", {("T1", "T2"), ("T2", "T1"), ("T3", "T1"), ("T3", "T2")}),
        ("own", {("T1", "T1"), ("T2", "T2")}),  # nobody takes T3's auditor's own cases
        ("peer", {("T1", "T2"), ("T2", "T1"), ("T3", "T2")}),
        ("any", {(a, c) for a in ("T1", "T2", "T3") for c in ("T1", "T2")}),
    ],
)
def test_each_team_rule_decides_whose_cases_an_auditor_takes(rule, pairs):
    people = [auditor("A (synthetic)", "T1", peer="T2"), auditor("B (synthetic)", "T2", peer="T1")]
    people.append(auditor("C (synthetic)", "T3", peer="T2"))
    cases = [case(f"P{i}", f"T{i % 2 + 1}") for i in range(40)]
    result = allocate(cases, people, policy(sample(40, rule)), MONTH, seed=3)
    assert teams_of(result, people) == pairs


def test_a_team_rule_can_change_by_month():
    people = [auditor("A (synthetic)", "T1", peer="T2"), auditor("B (synthetic)", "T2", peer="T1")]
    cases = [case(f"P{i}", f"T{i % 2 + 1}") for i in range(8)]
    rules = policy(sample(4, {11: "own", 12: "peer"}))
    november = allocate(cases, people, rules, "2026-11")
    december = allocate(cases, [replace(a, assigned=0) for a in people], rules, "2026-12")
    assert teams_of(november, people) == {("T1", "T1"), ("T2", "T2")}
    assert teams_of(december, people) == {("T1", "T2"), ("T2", "T1")}


def test_an_own_team_sample_draws_again_for_a_team_with_room():
    """Team T2's one auditor may take 1 a month: the sample of 4 is filled from T1 and T2's
    other cases, and says so when it cannot be."""
    rules = policy(
        sample(4, "own"),
        auditors=AuditorRules(groups=(AuditorGroup("leads", per_month=1),)),
    )
    people = [auditor("A (synthetic)", "T1"), auditor("B (synthetic)", "T2", group="leads")]
    cases = [case(f"P{i}", "T2") for i in range(6)] + [case("Q1", "T1"), case("Q2", "T1")]
    result = allocate(cases, people, rules, MONTH, seed=1)
    assert Counter(r["team"] for r in result.rows) == {"T1": 2, "T2": 1}
    assert result.unallocated == [
        "Control: 3 of 4 placed; no auditor of the right team (own team rule) had room for "
        "more this month."
    ]


def test_group_quotas_and_months_off_override_the_programmes():
    rules = policy(
        sample(per_auditor=3),
        auditors=AuditorRules(
            per_month=2,
            months_off=frozenset({8}),
            groups=(
                AuditorGroup("leads", per_month=3, per_year=4),
                AuditorGroup("summer", months_off=frozenset({11})),
            ),
        ),
    )
    people = [
        auditor("Lead (synthetic)", "T1", "leads"),
        auditor("Other (synthetic)", "T1"),
        auditor("Summer (synthetic)", "T1", "summer"),
    ]
    cases = [case(f"P{i}", "T2") for i in range(20)]
    history = History(done={"Lead (synthetic)": 2})
    result = allocate(cases, people, rules, MONTH, history=history)
    assert result.by_auditor() == {"Lead (synthetic)": 2, "Other (synthetic)": 2}
    assert result.on_break == []  # a month off is not a break
    assert "Lead (synthetic) has no room for another audit this month (have their 4 audits" in (
        " ".join(result.unallocated)
    )
    fresh = [replace(a, assigned=0, done_this_year=0) for a in people]
    august = allocate(cases, fresh, rules, "2026-08")  # the programme's month off
    assert august.by_auditor() == {"Summer (synthetic)": 2}


class FakeReads:
    """What an allocation reads from the store, with the calls it was asked."""

    def __init__(self, graded: list[Any] | None = None, months: Any = ()):
        self.graded, self.months = graded or [], list(months)
        self.calls: list[tuple[str, ...]] = []

    def allocation_history(
        self, since: str, until: str, first: str, last: str, counting: Any = ()
    ) -> Any:
        self.calls.append(("history", since, until, first, last))
        counts = Counter({"A (synthetic)": 1}) if first == last else Counter()
        return {"OLD1"}, counts

    def case_months(self) -> list[Any]:
        return []

    def graded_before(self, month: str) -> list[Any]:
        self.calls.append(("graded", month))
        return self.graded

    def auditor_months(self, first: str, last: str, counting: Any = ()) -> list[tuple[str, str]]:
        self.calls.append(("months", first, last))
        return self.months


def history(reads: FakeReads, rules: Policy, cases: Any = ()) -> History:
    return read_history(cast(AllocationReads, reads), MONTH, list(cases), rules)


def test_the_history_follows_the_policys_year_exclusion_rest_and_monthly_quota():
    reads = FakeReads(months=[("A (synthetic)", "2026-09"), ("B (synthetic)", "2026-06")])
    calendar = policy(
        sample(4),
        auditors=AuditorRules(year="calendar", per_month=1, spacing_months=2),
        exclusion_months=6,
        reaudit=None,
    )
    found = history(reads, calendar)
    assert reads.calls == [
        ("history", "2026-05", "2027-05", "2026-01", "2026-12"),
        ("months", "2026-09", "2027-01"),
        ("history", "2026-11", "2026-11", "2026-11", "2026-11"),
    ]  # no re-audits asked for: graded returns are not read
    assert found.recent == {"OLD1"} and found.this_month == {"A (synthetic)": 1}
    people = [auditor("A (synthetic)", "T1"), auditor("B (synthetic)", "T1")]
    result = allocate([case(f"P{i}", "T2") for i in range(4)], people, calendar, MONTH, 0, found)
    assert result.by_auditor() == {"B (synthetic)": 1}  # A audited in September: resting
    assert result.unallocated == [
        f"P{i} (T2): not allocated, all 2 auditors outside T2 have their 1 audit this month."
        for i in (1, 2, 3)
    ]
    hull = FakeReads()
    history(hull, HULL)
    assert hull.calls == [
        ("history", "2025-11", "2027-11", "2026-04", "2027-03"),
        ("graded", MONTH),
    ]


def test_the_exclusion_period_is_the_policys():
    cases = [
        case("P1", "T2", last_audited="2026-04-30"),
        case("P2", "T2", last_audited="2026-05-01"),
    ]
    rules = policy(sample(2), exclusion_months=6)
    result = allocate(cases, [auditor("A (synthetic)", "T1")], rules, MONTH)
    assert [r["case_number"] for r in result.rows] == ["P1"]
    assert result.unallocated == [
        "Control: 2 wanted, only 1 of 2 cases in cin eligible (1 audited within the last 6 months)."
    ]


def graded(number: str, on: dt.date) -> SimpleNamespace:
    at = dt.datetime.combine(on, dt.time(9))
    return SimpleNamespace(
        case_number=number, form_id="csc", grade="Inadequate", month="2026-08", imported_at=at
    )


def test_reaudits_come_back_only_when_the_policy_asks_and_warn_when_late():
    cases = [case("P1", "T2")]
    reads = FakeReads([graded("P1", dt.date(2026, 8, 20))])
    people = [auditor("A (synthetic)", "T1")]
    none = policy(reaudit=None)
    assert allocate(cases, people, none, MONTH, 0, history(reads, none, cases)).rows == []
    quick = policy(reaudit=Reaudit(within_months=2, review_weeks=2, source="the test's para 1"))
    result = allocate(cases, people, quick, MONTH, 0, history(reads, quick, cases))
    assert [(r["audit_type"], r["review_by"]) for r in result.rows] == [(REAUDIT, "2026-09-03")]
    assert result.warnings == [
        "P1: the re-audit was due within 2 months of its grade, by 20/10/2026, but this "
        "month's audits are due 30/11/2026. Record why it is late (the test's para 1)."
    ]


def test_a_case_closed_last_month_is_audited_on_closure_whatever_its_last_audit():
    cases = [
        case("P1", "T1", closed_on="2026-10-31", last_audited="2026-09-01"),
        case("P2", "T1", closed_on="2026-09-30"),
        case("P3", "T2", closed_on="2026-10-02"),
    ]
    rules = policy(on_closure=(OnClosure("early_help", team="own", auditors=("leads",)),))
    people = [auditor("A (synthetic)", "T1", "leads"), auditor("B (synthetic)", "T1")]
    result = allocate(cases, people, rules, MONTH, history=History(recent=frozenset({"P1"})))
    assert [(r["case_number"], r["form"], r["audit_type"], r["auditor"]) for r in result.rows] == [
        ("P1", "early_help", CLOSURE, "A (synthetic)")
    ]
    assert result.unallocated == [
        "P3 (T2): not allocated, no auditor is in T2 (auditors audit only their own team) "
        "among group(s) leads."
    ]


def test_each_closed_case_takes_the_closure_rule_of_its_category():
    closed = {"closed_on": "2026-10-15"}
    cases = [
        case("P1", "T1", **closed),
        case("E1", "T1", **closed) | {"category": "early_help"},
        case("F1", "T1", **closed) | {"category": "foster_carer"},
    ]
    rules = policy(
        on_closure=(
            OnClosure("csc", categories=("cin", "cp", "lac")),
            OnClosure("early_help", categories=("early_help",)),
        )
    )
    result = allocate(cases, [auditor("A (synthetic)", "T1")], rules, MONTH)
    assert [(r["case_number"], r["form"]) for r in result.rows] == [
        ("E1", "early_help"),  # not a csc audit of an early help case
        ("P1", "csc"),
    ]
    assert result.unallocated == [
        "F1 (T1): closed in October 2026, but no on_closure rule of the programme takes "
        "category 'foster_carer'."
    ]
    assert rules_in_words(rules)[-1] == (
        "A case closed last month is audited again (csc for cin, cp, lac; early_help for "
        "early_help)."
    )


CHOSEN = replace(sample(per_auditor=1, team="own", chosen=True), name="Chosen")


def chosen_run(named: list[dict[str, str]], **history: Any) -> Any:
    rules = policy(CHOSEN, replace(sample(per_auditor=1, team="own"), name="Random"))
    cases = [case(f"P{i}", "T1") for i in range(4)] + [case("Q1", "T2")]
    cases.append({"case_number": "F1", "category": "foster_carer", "team": "T1"})
    people = [auditor("A (synthetic)", "T1"), auditor("B (synthetic)", "T1")]
    return allocate(cases, people, rules, MONTH, 2, History(**history), named)


def test_a_chosen_slot_is_left_for_the_auditor_or_filled_with_the_case_they_name():
    result = chosen_run([{"auditor": "B (synthetic)", "case_number": "P3"}])
    assert result.choices == [
        {"auditor": "A (synthetic)", "sample": "Chosen", "form": "csc", "team": "T1"}
    ]
    rows = {(r["auditor"], r["audit_type"]): r["case_number"] for r in result.rows}
    assert rows[("B (synthetic)", "Chosen")] == "P3"
    assert "P3" not in {rows.get(("A (synthetic)", "Random")), rows[("B (synthetic)", "Random")]}
    assert result.as_dict()["choices"] == result.choices


@pytest.mark.parametrize(
    ("named", "message"),
    [
        (
            {"auditor": "Nobody", "case_number": "P1"},
            "'Nobody' is not an auditor working in 2026-11",
        ),
        ({"auditor": "A (synthetic)", "case_number": "Z9"}, "case 'Z9' chosen by A (synthetic) "),
        (
            {"auditor": "A (synthetic)", "case_number": "F1"},
            "for 'Chosen' is foster_carer, not one of cin. Choose another case.",
        ),
        (
            {"auditor": "A (synthetic)", "case_number": "Q1"},
            "is in T2; this slot takes cases in T1, their own team. Choose another case.",
        ),
        (
            {"auditor": "A (synthetic)", "case_number": "P1"},
            "was audited within the last 12 months. Choose another case.",
        ),
        (
            {"auditor": "A (synthetic)", "case_number": "P2", "sample": "Random"},
            "A (synthetic) has no chosen slot in 'Random' in 2026-11 (their chosen samples: "
            "Chosen)",
        ),
    ],
)
def test_a_named_case_the_slot_cannot_take_is_refused_with_the_reason(named, message):
    with pytest.raises(AllocationError, match=r"^\[chosen · row 2\]") as error:
        chosen_run([named], recent=frozenset({"P1"}))
    assert message in str(error.value)


def test_two_cases_named_for_one_slot_are_refused():
    twice = [{"auditor": "A (synthetic)", "case_number": n} for n in ("P2", "P3")]
    with pytest.raises(AllocationError, match="more cases for 'Chosen' than its 1 slot"):
        chosen_run(twice)


def test_the_break_limit_is_the_policys_and_cites_its_source():
    people = [auditor(f"A{i} (synthetic)", f"T{i}") for i in range(4)]
    for person in people[:2]:
        person.breaks = frozenset({MONTH})
    cases = [case(f"P{i}", "T9") for i in range(4)]
    with pytest.raises(AllocationError) as error:
        allocate(cases, people, HULL, MONTH)
    assert str(error.value) == (
        "2 of 4 auditors (50%) are on break in 2026-11; at most 20% may be "
        "(seed 001, Appendix A paras 2-3). Move some breaks to another month."
    )
    unlimited = policy(sample(4), auditors=AuditorRules())
    assert len(allocate(cases, people, unlimited, MONTH).rows) == 4


def test_each_row_is_due_when_its_tool_is_under_the_policy():
    qp = Deadline("completion", "tools to PMU", DeadlineRule(day=20, month=1, adjust="before"))
    rules = policy(
        SampleRule("QP", "quality_practice", ("cin",), 1),
        sample(1),
        form_deadlines={"quality_practice": {"completion": qp}},
    )
    cases = [case("P1", "T2"), case("P2", "T2")]
    result = allocate(cases, [auditor("A (synthetic)", "T1")], rules, "2026-11")
    assert {r["form"]: r["due_date"] for r in result.rows} == {
        "quality_practice": "2026-12-18",  # the 20th is a Sunday
        "csc": "2026-11-30",
    }
    assert result.due == dt.date(2026, 12, 18)


def test_one_file_per_worker_says_which_worker_had_none():
    cases = [
        case("P1", "T1", worker="W1"),
        case("P2", "T1", worker="W2", last_audited="2026-10-01"),
    ]
    rules = policy(sample(per_worker=1, team="own"))
    result = allocate(cases, [auditor("A (synthetic)", "T1")], rules, MONTH)
    assert [r["case_number"] for r in result.rows] == ["P1"]
    assert result.unallocated == ["Control: W2 has 0 eligible file(s), 1 wanted."]


def test_the_auditors_file_names_groups_the_programme_knows(tmp_path):
    path = tmp_path / "auditors.csv"
    path.write_text(
        "name,email,team,group,peer_team\n"
        "A (synthetic),a@example.invalid,Team 1,social care managers,Team 2\n"
        "B (synthetic),b@example.invalid,Team 2,social care manager,\n"
    )
    people = load_auditors(path)
    assert [(a.group, a.peer_team) for a in people] == [
        ("social care managers", "Team 2"),
        ("social care manager", ""),
    ]
    with pytest.raises(AllocationError) as error:
        check_groups(path, people, load_policy("rochdale"))
    assert str(error.value) == (
        f"[{path} · group] 'social care manager' (auditor B (synthetic)) is not a group of "
        "programme 'rochdale'. Use one of: early help managers, heads of service, "
        "safeguarding unit manager, social care managers, or leave it empty."
    )


def test_plan_files_closure_dates_and_chosen_files_are_read_as_tables(tmp_path):
    assert {(s.team, s.auditors, s.per_auditor) for s in load_plan(None)} == {("other", (), 0)}
    population = tmp_path / "pop.csv"
    population.write_text("case_number,category,team,closed_on\nP1,cin,T1,last week\n")
    with pytest.raises(AllocationError, match=r"· row 2 · closed_on\] 'last week' is not a date"):
        load_population(population)
    chosen = write_cases(tmp_path / "chosen.csv", [{"auditor": "A", "case_number": "P1"}])
    assert [(c["auditor"], c["case_number"], c["_file"]) for c in load_chosen(chosen)] == [
        ("A", "P1", str(chosen))
    ]
    (tmp_path / "bad.csv").write_text("auditor\nA\n")
    with pytest.raises(AllocationError, match="the chosen cases file lacks column"):
        load_chosen(tmp_path / "bad.csv")


def test_the_rules_in_words_are_the_policys():
    assert rules_in_words(HULL)[1:] == [
        "No case audited in the last 12 months; inadequate cases come back for re-audit.",
        "Auditors never audit their own team; at most 10 audits each per financial year; "
        "each case to the least-loaded eligible auditor.",
        "At most 20% of auditors on break in a month.",
    ]
    rochdale = rules_in_words(load_policy("rochdale"))
    assert rochdale[1] == "No case audited in the last 12 months."
    assert rochdale[2].startswith(
        "Each sample says whose cases an auditor takes: in any team or in their own team; "
        "social care managers: 2 a month, none in August, December;"
    )
    assert not any("on break" in line for line in rochdale)


def test_run_allocation_records_the_policy_and_the_slots_left_to_choose(tmp_path, db):
    rochdale = load_policy("rochdale")
    facts = {"family_name": "Example", "given_names": "Sam", "worker": "W", "manager": "M"}
    cases = [
        case(f"P{i}", f"Team {i % 2 + 1}", category=c) | facts
        for i, c in enumerate(["cin", "cp", "lac"] * 4)
    ]
    population = write_cases(tmp_path / "pop.csv", cases)
    auditors = write_cases(
        tmp_path / "aud.csv",
        [
            {"name": f"M{t} (synthetic)", "email": f"m{t}@example.invalid", "team": f"Team {t}"}
            | {"group": "social care managers"}
            for t in (1, 2)
        ],
    )
    chosen = write_cases(
        tmp_path / "chosen.csv", [{"auditor": "M1 (synthetic)", "case_number": "P2"}]
    )
    out = tmp_path / "out.csv"
    result = run_allocation(
        db, population, auditors, MONTH, None, 1, out, policy=rochdale, chosen_path=chosen
    )
    assert sorted((r["auditor"], r["audit_type"]) for r in result.rows) == [
        ("M1 (synthetic)", "Case chosen by the manager"),
        ("M1 (synthetic)", "Random case in the manager's team"),
        ("M2 (synthetic)", "Random case in the manager's team"),
    ]
    assert [(c.auditor, c.sample) for c in db.open_choices(MONTH)] == [
        ("M2 (synthetic)", "Case chosen by the manager")
    ]
    [recorded] = db.preview_allocation(lambda reads: reads.month_allocations(MONTH))
    # A policy not yet stored is stored (v1) as it is applied: the rules can always be found.
    assert (recorded.programme, recorded.programme_version, recorded.audits) == ("rochdale", 1, 3)
    assert [(p.name, p.version) for p in db.policy_versions()] == [("rochdale", 1)]
    assert {r["due_date"] for r in result.rows} == {"2026-11-30"}
    assert Path(out).read_text().count("\n") == 4


# --- naming chosen cases after the month is allocated ----------------------------------------

MANAGERS = [
    ("M1 (synthetic)", "Team 1"),
    ("M2 (synthetic)", "Team 2"),
    ("M3 (synthetic)", "Team 1"),
]


def rochdale_files(folder: Path) -> tuple[Path, Path]:
    """A population of 18 social care cases in Teams 1 and 2 (P0, P2, ... in Team 1) and an
    early help case E1, and three social care managers, two in Team 1."""
    facts = {"family_name": "Example", "given_names": "Sam", "worker": "W", "manager": "M"}
    cases = [
        case(f"P{i}", f"Team {i % 2 + 1}", category=c) | facts
        for i, c in enumerate(["cin", "cp", "lac"] * 6)
    ]
    cases.append(case("E1", "Team 1", category="early_help") | facts)
    people = [
        {"name": n, "email": f"m{i}@example.invalid", "team": t, "group": "social care managers"}
        for i, (n, t) in enumerate(MANAGERS)
    ]
    return write_cases(folder / "pop.csv", cases), write_cases(folder / "aud.csv", people)


def name_with(
    runner: Any, db: Any, files: tuple[Path, Path], rows: list[dict[str, str]], *more: str
) -> Any:
    """`formtool allocate --month 2026-11 --chosen FILE` naming `rows` (auditor, case)."""
    from formtool.cli import cli

    chosen = write_cases(files[0].parent / "chosen.csv", rows)
    population, auditors = (str(f) for f in files)
    out = str(files[0].parent / "named.csv")
    args = ["--population", population, "--auditors", auditors, "--month", MONTH, "--out", out]
    return runner.invoke(cli, ["allocate", *args, "--chosen", str(chosen), "--db", db.url, *more])


def named(auditor: str, number: str) -> dict[str, str]:
    return {"auditor": auditor, "case_number": number}


def test_allocate_chosen_names_the_open_slots_of_an_allocated_month(tmp_path, db):
    """Each named case is checked as at allocation (the database's audits included), all
    or nothing; a slot already named says so; what is named and still open is printed."""
    from click.testing import CliRunner

    from formtool.programme.rules import use_policy

    use_policy(db, "rochdale", None, "test")
    files = rochdale_files(tmp_path)
    october = write_cases(tmp_path / "october.csv", [named("M1 (synthetic)", "P0")])
    run_allocation(db, *files, "2026-10", None, 1, tmp_path / "o.csv", chosen_path=october)
    november = run_allocation(db, *files, MONTH, None, 1, tmp_path / "n.csv")
    randoms = {r["auditor"]: r["case_number"] for r in november.rows}
    audited = {r.case_number for r in db.audit_rows(["2026-10", MONTH])}
    free = sorted({f"P{i}" for i in range(0, 18, 2)} - audited)  # Team 1's, not yet audited
    other = min({f"P{i}" for i in range(1, 18, 2)} - audited)  # Team 2's
    runner = CliRunner()
    refused = {
        "P0": "was audited within the last 12 months",  # October's audit, in the database
        "P1": "is in Team 2; this slot takes cases in Team 1, their own team",
        randoms["M3 (synthetic)"]: "is already allocated this month",
        "E1": "is early_help, not one of cin, cp, lac",
        "Z9": "is not in the population",
    }
    for number, why in refused.items():
        result = name_with(
            runner, db, files, [named("M2 (synthetic)", other), named("M1 (synthetic)", number)]
        )
        assert result.exit_code == 2, result.output
        said = f"case '{number}' chosen by M1 (synthetic) for 'Case chosen by the manager'"
        assert f"row 3] {said} {why}. Choose another case." in result.output
    nobody = name_with(runner, db, files, [named("M9 (synthetic)", "P2")])
    assert "'M9 (synthetic)' is not in the auditors file" in nobody.output
    assert len(db.open_choices(MONTH)) == 3 and len(db.audit_rows([MONTH])) == len(november.rows)

    first = name_with(runner, db, files, [named("M1 (synthetic)", free[0])])
    assert first.exit_code == 0, first.output
    audit_id = f"CSC-{free[0]}-202611"
    assert first.output.splitlines() == [
        f"1 chosen case(s) named for 2026-11, due 30/11/2026: {tmp_path / 'named.csv'}",
        f"  named: M1 (synthetic) audits {free[0]} for 'Case chosen by the manager' ({audit_id})",
        "  still to choose: M2 (synthetic) names a case for 'Case chosen by the manager' (csc)",
        "  still to choose: M3 (synthetic) names a case for 'Case chosen by the manager' (csc)",
    ]
    records = db.audit_records(audit_id)
    assert records and (records.row.auditor, records.row.month) == ("M1 (synthetic)", MONTH)
    assert records.events[-1].event == "chosen"
    again = name_with(runner, db, files, [named("M1 (synthetic)", free[1])])
    assert again.exit_code == 2
    assert (
        f"M1 (synthetic) has no open chosen slot in 2026-11: it is already named (their cases "
        f"this month: {', '.join(sorted([free[0], randoms['M1 (synthetic)']]))})"
    ) in again.output

    rest = [named("M2 (synthetic)", other), named("M3 (synthetic)", free[1])]
    done = name_with(runner, db, files, [named("M1 (synthetic)", free[0]), *rest], "--json")
    assert done.exit_code == 0, done.output
    said = json.loads(done.output)
    assert (said["mode"], said["allocated"], "choices" in said) == ("name", 2, False)
    assert [(n["auditor"], n["case_number"]) for n in said["named"]] == [
        ("M2 (synthetic)", other),
        ("M3 (synthetic)", free[1]),
    ]
    assert said["unallocated"] == [
        f"[{tmp_path / 'chosen.csv'} · row 2] case '{free[0]}' is already M1 (synthetic)'s "
        "audit in 2026-11."
    ]
    assert db.open_choices(MONTH) == []
    assert len(db.audit_rows([MONTH])) == len(november.rows) + 3
    listed = (tmp_path / "named.csv").read_text().splitlines()  # the newly named only
    assert [line.split(",")[0] for line in listed[1:]] == [other, free[1]]
    over = name_with(runner, db, files, [named("M2 (synthetic)", other)])
    assert over.exit_code == 2 and "It has no chosen slot left to name." in over.output


def test_an_officer_names_a_chosen_case_on_the_allocate_page(tmp_path, monkeypatch):
    """The Allocate page lists the month's open slots; naming one uploads the population
    and auditors, is checked as `allocate --chosen` is, and carries the CSRF token."""
    from argon2 import PasswordHasher
    from test_web import client_for, token

    from formtool import store
    from formtool.access import accounts as users
    from formtool.access.accounts import add_user
    from formtool.programme.rules import use_policy
    from formtool.settings import Settings
    from formtool.web import create_app

    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
    db = store.open_store(f"sqlite:///{tmp_path / 'web.db'}")
    add_user(db, "olive", "officer", "correct horse battery")
    use_policy(db, "rochdale", None, "test")
    files = rochdale_files(tmp_path)
    november = run_allocation(db, *files, MONTH, None, 1, tmp_path / "n.csv")
    audited = {r["case_number"] for r in november.rows}
    [free, *_] = sorted({f"P{i}" for i in range(0, 18, 2)} - audited)
    client = client_for(create_app(db, Settings(), work_dir=tmp_path / "work"), "olive")
    page = client.get(f"/allocate?month={MONTH}").text
    slots = {c.auditor: str(c.id) for c in db.open_choices(MONTH)}
    assert f'<option value="{slots["M1 (synthetic)"]}">M1 (synthetic): Case chosen' in page

    def name(case_number: str, csrf: str) -> Any:
        fields = {"action": "name", "month": MONTH, "slot": slots["M1 (synthetic)"]}
        keys = ("population", "auditors")
        upload = [(k, (f.name, f.read_bytes())) for k, f in zip(keys, files, strict=True)]
        data = fields | {"case_number": case_number, "csrf": csrf}
        return client.post("/allocate", data=data, files=upload)

    assert name(free, "forged").status_code == 403
    wrong = name("P1", token(page))
    assert wrong.status_code == 400
    assert (
        "[M1 (synthetic) · Case chosen by the manager] case &#39;P1&#39; chosen by M1 (synthetic) "
        "for &#39;Case chosen by the manager&#39; is in Team 2; this slot takes cases in Team 1"
    ) in wrong.text
    assert len(db.open_choices(MONTH)) == 3
    done = name(free, token(page))
    assert done.status_code == 303, done.text
    [event] = db.audit_records(f"CSC-{free}-202611").events[-1:]  # type: ignore[union-attr]
    assert (event.event, event.user_name) == ("chosen", "web:olive")
    assert "M1 (synthetic) audits" in client.get(done.headers["location"]).text
    assert len(db.open_choices(MONTH)) == 2
