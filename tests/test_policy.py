"""Programme policies as files: the four shipped policies load, round-trip through their
snapshot and say what their seeds say; the checker names file, line and key for every
problem; policies are found by name, path or team folder. No database."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from formtool.errors import IssueCode
from formtool.programme import deadlines as days
from formtool.programme.policy import (
    ADJUSTMENTS,
    AFTER_EVENTS,
    NAMED_DAYS,
    TEAM_RULES,
    YEAR_KINDS,
    DeadlineRule,
    OnClosure,
    Policy,
    PolicyError,
    check_policy_file,
    default_policy,
    describe_timetable,
    load_policy,
    month_number,
    policy_files,
    policy_from_data,
    policy_from_snapshot,
    policy_snapshot,
    programmes_dir,
    timetable,
)

from conftest import schema_keys

D = dt.date
SHIPPED = ["hampshire", "hull", "rochdale", "windsor-maidenhead"]
ROOT = Path(__file__).resolve().parents[1]
MONTHS = [(year, month) for year in (2026, 2027) for month in range(1, 13)]


@pytest.fixture(scope="module")
def policies() -> dict[str, Policy]:
    return {name: load_policy(name) for name in SHIPPED}


# --- the shipped policies ----------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_policy_checks_clean_and_round_trips_through_its_snapshot(name, policies):
    policy = policies[name]
    assert policy.name == name and policy.version == 0
    assert check_policy_file(programmes_dir() / f"{name}.yaml") == []
    stored = json.loads(json.dumps(policy_snapshot(policy)))  # what a database keeps
    assert stored["version"] == 0 and policy.snapshot() == policy_snapshot(policy)
    assert policy_from_snapshot(stored, 7) == replace(policy, version=7)
    assert policy_from_data(stored) == policy
    assert all(rule.source for rule in (*policy.samples, *policy.deadlines.values()))


def test_the_shipped_files_are_the_four_policies_and_hull_is_the_default():
    assert list(policy_files()) == SHIPPED
    assert default_policy() is default_policy() and default_policy().name == "hull"


def test_hull_keeps_the_rules_formtool_had_before_policies(policies):
    hull = policies["hull"]
    rules = hull.auditors
    assert (rules.year, rules.per_year, rules.break_limit, rules.per_month) == (
        "financial",
        10,
        0.20,
        None,
    )
    assert [(s.name, s.form, s.categories, s.size, s.at_least, s.team) for s in hull.samples] == [
        ("Control sample", "csc", ("cin", "cp", "lac"), 40, {"placed_for_adoption": 1}, "other"),
        ("Foster carers", "foster_carer", ("foster_carer",), 6, {}, "other"),
        ("Prospective adopters", "prospective_adopter", ("prospective_adopter",), 3, {}, "other"),
    ]
    assert hull.exclusion_months == 12 and hull.reaudit and hull.reaudit.within_months == 2
    assert hull.reaudit.review_weeks == 4 and hull.on_closure == ()
    assert hull.moderation.rate == 0.10
    assert hull.word("moderation_rate") == "the framework asks for 10%"
    assert hull.word("exemption") == "only the Assistant Director can agree one"
    assert hull.due("amendment", "csc", 2026, 12, after=D(2026, 12, 23)) == D(2026, 12, 30)
    # Under hull the Quality Practice checklist keeps the month-end date.
    assert hull.due("completion", "quality_practice", 2026, 11) == D(2026, 11, 30)
    assert hull.form_deadlines == {}


@pytest.mark.parametrize("year, month", MONTHS)
def test_hull_timetable_is_the_month_timetable_formtool_printed_before_policies(
    year, month, policies
):
    due = days.last_calendar_day(year, month)
    ny, nm = days.next_month(year, month)
    before = {  # deadlines.month_timetable as it was, without its quality practice lines
        "audit list distributed": days.first_working_day(year, month),
        "audits due": due,
        "management oversight by": days.add_working_days(due, 10),
        "moderation and overview report by": days.nearest_working_day(D(ny, nm, 14)),
    }
    assert timetable(policies["hull"], year, month) == before


@pytest.mark.parametrize("year, month", MONTHS)
def test_hampshire_timetable_is_the_quality_practice_timetable(year, month, policies):
    ny, nm = days.next_month(year, month)
    ay, am = days.next_month(ny, nm)
    assert timetable(policies["hampshire"], year, month) == {
        "quality practice list to service manager": days.on_or_before(D(ny, nm, 5)),
        "quality practice tools to PMU": days.on_or_before(D(ny, nm, 20)),
        "PMU collates quality practice results": days.on_or_before(D(ay, am, 1)),
    }


def test_hampshire_quality_practice_is_due_the_20th_or_the_working_day_before(policies):
    hampshire = policies["hampshire"]
    due = [hampshire.due("completion", "quality_practice", 2026, m) for m in (4, 11)]
    assert due == [D(2026, 5, 20), D(2026, 12, 18)]  # 20 December 2026 is a Sunday
    assert hampshire.due("completion", "quality_practice", 2027, 1) == D(2027, 2, 19)  # Sat
    [sample] = hampshire.samples
    assert (sample.form, sample.per_worker, sample.team, sample.size) == (
        "quality_practice",
        1,
        "own",
        0,
    )
    assert hampshire.exclusion_months == 12 and hampshire.deadlines == {}


def test_rochdale_managers_audit_their_own_team_and_are_due_the_last_working_day(policies):
    rochdale = policies["rochdale"]
    groups = {g.name: (g.per_month, g.months_off) for g in rochdale.auditors.groups}
    off = frozenset({8, 12})
    assert groups == {
        "social care managers": (2, off),
        "early help managers": (1, off),
        "safeguarding unit manager": (2, off),
        "heads of service": (None, None),  # their dip samples and supervision audits
    }
    assert rochdale.auditors.per_year is None and rochdale.auditors.break_limit is None
    assert [(s.categories, s.per_auditor, s.chosen, s.team) for s in rochdale.samples] == [
        (("cin", "cp", "lac"), 1, False, "own"),
        (("cin", "cp", "lac"), 1, True, "own"),
        (("early_help",), 1, False, "own"),
        (("cp",), 1, False, "any"),
        (("lac",), 1, False, "any"),
    ]
    # May 2026 ends on a Sunday; 31 August 2026 is the late summer bank holiday.
    assert rochdale.due("completion", "csc", 2026, 5) == D(2026, 5, 29)
    assert rochdale.due("completion", "early_help", 2026, 8) == D(2026, 8, 28)
    assert rochdale.due("moderation", "csc", 2026, 5) == D(2026, 6, 15)  # 14 June: a Sunday
    assert rochdale.moderation.rate == 1.0 and rochdale.auditors.year == "financial"
    assert rochdale.concerns.contacts("any team") == (
        "head-of-service@example.invalid",
        "assistant-director@example.invalid",
    )


def test_windsor_maidenhead_follows_appendix_1_month_by_month(policies):
    windsor = policies["windsor-maidenhead"]

    def sizes(month: int) -> list[tuple[str, int]]:
        return [(s.form, s.size) for s in windsor.samples if s.runs_in(month)]

    for month in (1, 2, 3, 5, 6, 7, 9, 10, 11, 12):
        assert sizes(month) == [("csc", 25), ("early_help", 14)]
    assert sizes(4) == sizes(8) == []  # deep dive months: the thematic activities instead

    def deep_dives(month: int) -> list[tuple[str, str, int]]:
        return [(a.kind, a.categories[0], a.size) for a in windsor.activities if a.runs_in(month)]

    assert (
        deep_dives(4) == deep_dives(8) == [("thematic", "cin", 10), ("thematic", "early_help", 10)]
    )
    assert all(deep_dives(m) == [] for m in (1, 2, 3, 5, 6, 7, 9, 10, 11, 12))
    early_help = windsor.samples[1]
    rules = [early_help.team_rule(m) for m in (1, 2, 3, 5, 6, 7, 9, 10, 11, 12)]
    assert rules == ["own", "peer", "peer", "own", "peer", "own", "own", "peer", "peer", "own"]
    assert windsor.auditors.group("early help team managers").per_month == 2
    assert early_help.auditors == ("early help team managers",)
    # 6.17 "on closure of any case": each kind of case with its own tool and managers.
    assert [(c.form, c.categories, c.team, c.auditors) for c in windsor.on_closure] == [
        ("csc", ("cin", "cp", "lac"), "own", ("social care managers",)),
        ("early_help", ("early_help",), "own", ("early help team managers",)),
    ]
    assert windsor.auditors.year == "calendar"
    assert windsor.due("completion", "early_help", 2026, 2) == D(2026, 2, 28)


# --- deadlines in words -------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, words",
    [
        (DeadlineRule(day="last"), "the last calendar day of the month"),
        (DeadlineRule(day="last_working", adjust="before"), "the last working day of the month"),
        (DeadlineRule(day="first_working"), "the first working day of the month"),
        (
            DeadlineRule(day=14, month=1, adjust="nearest"),
            "the 14th of the next month or the nearest working day",
        ),
        (
            DeadlineRule(day=1, month=2, adjust="before"),
            "the 1st of the month after next (the working day before, if not a working day)",
        ),
        (DeadlineRule(day=22, month=3), "the 22nd of the month 3 months on"),
        (DeadlineRule(day=13, adjust="after"), "the 13th of the month (the next working day, "
         "if not a working day)"),
        (
            DeadlineRule(working_days=3, after="amendment requested"),
            "3 working days after an amendment is requested",
        ),
        (DeadlineRule(working_days=1, after="return"), "1 working day after the return comes in"),
        (
            DeadlineRule(working_days=10, after="completion"),
            "10 working days after the completion deadline",
        ),
    ],
)  # fmt: skip
def test_a_deadline_rule_in_words(rule, words):
    assert rule.describe() == words


def test_describe_timetable_lists_every_deadline_with_its_source(policies):
    assert describe_timetable(policies["hull"])[2:] == [
        (
            "management oversight by",
            "10 working days after the completion deadline",
            "seed 001, Appendix D (Audit Schedule)",
        ),
        (
            "moderation and overview report by",
            "the 14th of the next month or the nearest working day",
            "seed 004, Reporting timetable (kept for hull: seed 001 gives no date)",
        ),
        (
            "amended audit back by",
            "3 working days after an amendment is requested",
            "seed 001, Appendix A para 20",
        ),
    ]
    label, words, _ = describe_timetable(policies["hampshire"])[1]
    assert (label, words) == (
        "quality practice tools to PMU",
        "quality_practice forms: the 20th of the next month (the working day before, if not a "
        "working day)",
    )


def test_a_working_days_deadline_needs_the_day_it_counts_from():
    with pytest.raises(PolicyError, match="counts from 'return'"):
        DeadlineRule(working_days=2, after="return").due(2026, 5)


def test_months_are_numbers_or_english_names():
    assert [month_number(m) for m in (8, "8", "August", "aug", " AUG ", "Sept", 13, True)] == [
        8,
        8,
        8,
        8,
        8,
        None,
        None,
        None,
    ]


# --- checking a policy file ---------------------------------------------------------------

BASE = """\
name: ours
title: Our programme
source: our framework
year: financial
auditors:
  groups:
    - {name: managers, per_month: 2, months_off: [August], source: "4.1"}
  source: "4.1"
exclusion_months: 12
samples:
  - name: Control sample
    form: csc
    categories: [cin, cp, lac]
    size: 20
    auditors: [managers]
    team: other
    source: "4.2"
deadlines:
  completion: {label: audits due, day: last, source: "4.3"}
moderation: {rate: 0.1, by: the Head of Service, source: "4.4"}
concerns:
  fallback: [duty@council.example]
  source: "4.5"
"""


def _problems(tmp_path: Path, text: str, name: str = "ours") -> list[tuple[str, str, str]]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return [(i.location, i.field, i.value) for i in check_policy_file(path)]


def _edit(line: int, new: str) -> str:
    """BASE with one line (1-based) replaced by `new` (which may be several lines or none)."""
    lines = BASE.splitlines()
    lines[line - 1 : line] = new.splitlines()
    return "\n".join(lines) + "\n"


def test_the_base_policy_is_clean(tmp_path):
    assert _problems(tmp_path, BASE) == []
    ours = load_policy(tmp_path / "ours.yaml")
    assert ours.auditors.groups[0].months_off == frozenset({8})


@pytest.mark.parametrize(
    "line, new, expected",
    [
        (
            16,
            "    colour: blue",
            [("16", "samples[Control sample].colour", "unknown key 'colour'")],
        ),
        (
            7,
            '    - {name: managers, per_month: 2, months_off: [Augst], source: "4.1"}',
            [("7", "auditors.groups[managers].months_off[1]", "'Augst' is not a month")],
        ),
        (
            12,
            "    form: csx",
            [("12", "samples[Control sample].form", "form 'csx' is not a form formtool knows")],
        ),
        (
            14,
            "    size: 20\n    per_auditor: 1",
            [("15", "samples[Control sample].per_auditor", "gives size and per_auditor")],
        ),
        (
            15,
            "    auditors: [managerz]",
            [
                (
                    "15",
                    "samples[Control sample].auditors[1]",
                    "group 'managerz' is not declared under auditors: groups:",
                )
            ],
        ),
        (
            22,
            "  fallback: []",
            [("22", "concerns.fallback", "no fallback contact for urgent concerns")],
        ),
        (22, "", [("22", "concerns.fallback", "no fallback contact for urgent concerns")]),
        (
            22,
            "  fallback: [duty-at-council]",
            [("22", "concerns.fallback[1]", "'duty-at-council' is not an email address")],
        ),
        (
            19,
            '  distribution: {label: out, day: first_working, source: "4.3"}',
            [("19", "deadlines", "no completion deadline for csc")],
        ),
        (
            19,
            '  completion: {label: due, day: last, working_days: 3, source: "4.3"}',
            [("19", "deadlines.completion", "is not one kind of deadline (day, working_days)")],
        ),
        (
            8,
            '  break_limit: 1.5\n  source: "4.1"',
            [("8", "auditors.break_limit", "break limit 1.5 is not a share of the auditors")],
        ),
        (
            16,
            "    team: {January: own, Feb: peer}",
            [
                (
                    "16",
                    "samples[Control sample].team",
                    "names no team rule for March, April, May, June, July, August, September, "
                    "October, November, December",
                )
            ],
        ),
        (
            16,
            "    chosen: true",
            [("16", "samples[Control sample].chosen", "a chosen case is named by each auditor")],
        ),
        (4, "year: fiscal", [("4", "year", "'fiscal' is not one of ['financial', 'calendar']")]),
        (20, "", [("1", "moderation", "'moderation:' is missing")]),
    ],
)
def test_the_checker_names_file_line_and_key(tmp_path, line, new, expected):
    assert _problems(tmp_path, _edit(line, new)) == expected


def test_a_checker_message_says_where_what_and_how_to_fix(tmp_path):
    path = tmp_path / "ours.yaml"
    path.write_text(_edit(12, "    form: csx"), encoding="utf-8")
    [issue] = check_policy_file(path)
    assert issue.code is IssueCode.bad_programme
    assert issue.message == (
        f"[{path} · line 12 · samples[Control sample].form] form 'csx' is not a form formtool "
        "knows. Use a form `formtool forms list` shows (did you mean csc?)."
    )


def test_the_checker_reports_every_problem_at_once(tmp_path):
    text = _edit(16, "    colour: blue\n    team: other")
    text = text.replace("form: csc", "form: csx").replace("[August]", "[Smarch]")
    assert [(line, key) for line, key, _ in _problems(tmp_path, text)] == [
        ("7", "auditors.groups[managers].months_off[1]"),
        ("12", "samples[Control sample].form"),
        ("16", "samples[Control sample].colour"),
    ]


def test_unreadable_files_are_one_issue_each(tmp_path):
    assert _problems(tmp_path, _edit(13, "    categories: [cin, cp")) == [
        ("14", "", "did not find expected ',' or ']'")
    ]
    [(_, _, value)] = _problems(tmp_path, BASE.replace("[cin, cp, lac]", "&c [cin]") + "x: *c\n")
    assert value == "uses a YAML alias (*name)"
    assert _problems(tmp_path, "- a list\n") == [
        ("1", "file", "is not a policy: a policy is a mapping of keys (name:, title:, ...)")
    ]
    [issue] = check_policy_file(tmp_path / "missing.yaml")
    assert (
        issue.message
        == f"[{tmp_path / 'missing.yaml'} · line 1 · file] does not exist. Check the path."
    )


def test_the_name_is_the_file_name_and_not_a_shipped_one(tmp_path):
    assert _problems(tmp_path, BASE, name="theirs") == [
        ("1", "name", "name 'ours' differs from the file name 'theirs.yaml'")
    ]
    assert _problems(tmp_path, BASE.replace("name: ours", "name: hull"), name="hull") == [
        ("1", "name", "'hull' is the name of a shipped policy")
    ]


# --- finding and loading policies ---------------------------------------------------------


def test_load_policy_by_name_path_or_team_folder(tmp_path):
    assert load_policy("rochdale").title.startswith("Rochdale")
    by_path = load_policy(programmes_dir() / "hampshire.yaml")
    assert by_path == load_policy(str(programmes_dir() / "hampshire.yaml"))
    team = tmp_path / "programmes"
    team.mkdir()
    (team / "ours.yaml").write_text(BASE, encoding="utf-8")
    assert list(policy_files(tmp_path)) == [*SHIPPED, "ours"]
    ours = load_policy("ours", tmp_path)
    assert (ours.name, ours.samples[0].size) == ("ours", 20)
    with pytest.raises(PolicyError) as error:
        load_policy("ours")  # not without the team folder
    assert str(error.value) == (
        "[programme 'ours'] no policy has this name. Use one of hampshire, hull, rochdale, "
        "windsor-maidenhead, or give the path of a policy file."
    )


def test_a_team_policy_may_not_take_a_shipped_name(tmp_path):
    team = tmp_path / "programmes"
    team.mkdir()
    (team / "hull.yaml").write_text(BASE.replace("name: ours", "name: hull"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"· line 1 · name\] 'hull' is the name of a shipped"):
        policy_files(tmp_path)


def test_a_broken_policy_raises_one_error_listing_every_problem(tmp_path):
    path = tmp_path / "ours.yaml"
    path.write_text(_edit(12, "    form: csx").replace("[August]", "[Smarch]"), encoding="utf-8")
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert [line.split("] ")[0] for line in str(error.value).splitlines()] == [
        f"[{path} · line 7 · auditors.groups[managers].months_off[1]",
        f"[{path} · line 12 · samples[Control sample].form",
    ]


def test_a_snapshot_with_a_problem_names_the_key_without_a_line(policies):
    stored = policy_snapshot(policies["hull"])
    stored["samples"][0]["months"] = ["Smarch"]
    with pytest.raises(PolicyError) as error:
        policy_from_snapshot(stored, 3)
    assert str(error.value) == (
        "[stored policy v3 · samples[Control sample].months[1]] 'Smarch' is not a month. Write "
        "a month number 1-12 or an English name such as August or Aug."
    )
    with pytest.raises(PolicyError, match="is not a version number"):
        policy_from_data({**stored, "version": "two"})


# --- the schema ---------------------------------------------------------------------------


def test_the_schema_names_the_same_vocabularies_as_the_code():
    schema = json.loads((ROOT / "formtool/programme/programme_schema.json").read_text())
    defs = schema["$defs"]
    assert defs["team_rule"]["enum"] == list(TEAM_RULES)
    assert schema["properties"]["year"]["enum"] == list(YEAR_KINDS)
    deadline = defs["deadline"]["properties"]
    assert deadline["adjust"]["enum"] == list(ADJUSTMENTS)
    assert deadline["after"]["enum"] == list(AFTER_EVENTS)
    assert deadline["day"]["anyOf"][1]["enum"] == list(NAMED_DAYS)


def test_every_policy_key_is_documented():
    keys = schema_keys(ROOT / "formtool/programme/programme_schema.json")
    text = (ROOT / "templates/programmes/README.md").read_text(encoding="utf-8")
    assert sorted(k for k in keys if f"`{k}`" not in text) == []


def test_on_closure_is_one_rule_or_a_list_each_checked_where_it_is(tmp_path):
    single = BASE + 'on_closure: {form: early_help, auditors: [managers], source: "4.6"}\n'
    assert _problems(tmp_path, single) == []
    assert load_policy(tmp_path / "ours.yaml").on_closure == (
        OnClosure("early_help", auditors=("managers",), source="4.6"),
    )
    rules = BASE + (
        "on_closure:\n"
        '  - {form: csc, source: "4.6"}\n'
        '  - {form: early_hlp, categories: [early_help], colour: red, source: "4.6"}\n'
    )
    assert _problems(tmp_path, rules) == [
        ("26", "on_closure[2].colour", "unknown key 'colour'"),
        ("26", "on_closure[2].form", "form 'early_hlp' is not a form formtool knows"),
        (
            "26",
            "on_closure[2]",
            "this rule is never used: an earlier on_closure rule takes every category",
        ),
    ]
