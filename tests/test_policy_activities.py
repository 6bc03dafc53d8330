"""QA activities in a programme policy: the checker refuses each inconsistent activity with its
file, line and key; the shipped policies carry the activities their seeds name; activities
round-trip through the snapshot and are said in words. No database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from formtool.programme.activity import (
    CHOOSING,
    KINDS,
    STAFF_RESULT_ROLES,
    SUBJECTS,
    Activity,
    activity_words,
)
from formtool.programme.policy import (
    DeadlineRule,
    Policy,
    PolicyError,
    check_policy_file,
    load_policy,
    policy_from_data,
    policy_from_snapshot,
    policy_snapshot,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["hampshire", "hull", "rochdale", "windsor-maidenhead"]
D = dt.date

BASE = """\
name: ours
title: Our programme
source: our framework
year: financial
auditors:
  groups:
    - {name: managers, source: "4.1"}
  source: "4.1"
exclusion_months: 12
samples:
  - {name: Case files, form: csc, categories: [cin], size: 5, source: "4.2"}
deadlines:
  completion: {label: audits due, day: last, source: "4.3"}
moderation: {rate: 0.1, by: the Head of Service, source: "4.4"}
concerns: {fallback: [duty@council.example], source: "4.5"}
activities:
"""
#: The line of an activity's first extra key (after id, code, name, kind, form, source).
FIRST = 23


def _activity(kind: str = "thematic", extra: str = "", **keys: str) -> str:
    """One activity entry: `id: act` of `kind` with the csc form, then `extra` lines."""
    head = {"id": "act", "code": "AC", "name": "An activity", "kind": kind, "form": "csc"}
    head |= keys
    lines = [f"  - id: {head.pop('id')}"] + [f"    {k}: {v}" for k, v in head.items()]
    lines.append('    source: "5.1"')
    lines += [f"    {line}" for line in extra.splitlines()]
    return "\n".join(lines) + "\n"


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "ours.yaml"
    path.write_text(text, encoding="utf-8")
    return [(i.location, i.field, i.value) for i in check_policy_file(path)]


@pytest.fixture(scope="module")
def policies() -> dict[str, Policy]:
    return {name: load_policy(name) for name in SHIPPED}


# --- the checker --------------------------------------------------------------------------


def test_a_policy_with_good_activities_is_clean_and_builds_them(tmp_path):
    text = BASE + _activity("dip_sample", "choose: random\nper_auditor: 2\nauditors: [managers]")
    text += _activity(
        "observation",
        "subject: practitioner\nchoose: rotation\nper_auditor: 1\ntimes_a_year: 1\n"
        "months: [Jan, feb, 3]\nteam: own\nresults_for: [officer, moderator]\n"
        'deadline: {day: 14, month: 1, adjust: nearest, source: "5.2"}',
        id="obs",
        code="OBS",
        form="early_help",
    )
    assert _problems(tmp_path, text) == []
    policy = load_policy(tmp_path / "ours.yaml")
    dip, obs = policy.activities
    assert (dip.id, dip.per_auditor, dip.auditors, dip.choose, dip.subject) == (
        "act",
        2,
        ("managers",),
        "random",
        "case",
    )
    assert obs == Activity(
        id="obs",
        code="OBS",
        name="An activity",
        kind="observation",
        form="early_help",
        subject="practitioner",
        choose="rotation",
        per_auditor=1,
        times_a_year=1,
        months=frozenset({1, 2, 3}),
        team="own",
        results_for=("officer", "moderator"),
        deadline=DeadlineRule(day=14, month=1, adjust="nearest"),
        deadline_source="5.2",
        source="5.1",
    )
    assert policy.activity("obs") is obs and policy.activity("nothing") is None
    assert obs.result_roles() == ("officer", "moderator") and obs.staff and not dip.staff


def _rule(kind: str, extra: str, line: int, key: str, value: str, **keys: str) -> Any:
    return pytest.param(_activity(kind, extra, **keys), [(str(line), key, value)], id=value)


@pytest.mark.parametrize(
    "entry, expected",
    [
        _rule("thematic", "", 17, "activities[Bad-Id].id",
              "'Bad-Id' does not match '^[a-z][a-z0-9_]*$'", id="Bad-Id"),
        _rule("thematic", "", 17, f"activities[{'a' * 31}].id",
              f"'{'a' * 31}' is too long", id="a" * 31),
        _rule("thematic", "", 18, "activities[act].code",
              "'A1' does not match '^[A-Z]{2,5}$'", code="A1"),
        _rule("audit", "", 20, "activities[act].kind",
              f"'audit' is not one of {list(KINDS)}"),
        _rule("thematic", "subject: child", FIRST, "activities[act].subject",
              f"'child' is not one of {list(SUBJECTS)}"),
        _rule("thematic", "choose: any", FIRST, "activities[act].choose",
              f"'any' is not one of {list(CHOOSING)}"),
        _rule("thematic", "size: 2\nlabel: due", FIRST + 1, "activities[act].label",
              "unknown key 'label'"),
        _rule("thematic", "size: 2", 21, "activities[act].form",
              "form 'thematc' is not a form formtool knows", form="thematc"),
        _rule("thematic", "size: 2\nauditors: [bosses]", FIRST + 1,
              "activities[act].auditors[1]",
              "group 'bosses' is not declared under auditors: groups:"),
        _rule("thematic", "size: 2\nmonths: [Smarch]", FIRST + 1, "activities[act].months[1]",
              "'Smarch' is not a month"),
        _rule("thematic", "size: 2\ndeadline: {day: 14, working_days: 3}", FIRST + 1,
              "activities[act].deadline", "is not one kind of deadline (day, working_days)"),
        _rule("thematic", "size: 2\ndeadline: {label: due, day: 14}", FIRST + 1,
              "activities[act].deadline.label", "unknown key 'label'"),
        _rule("supervision", "subject: supervisor\nchoose: filtered\non_demand: true\nsize: 3",
              FIRST + 1, "activities[act].choose",
              "choose filtered picks cases, but the subject is a supervisor"),
        _rule("thematic", "choose: rotation\nsize: 2", FIRST, "activities[act].choose",
              "choose rotation goes through the staff file, but the subject is a case"),
        _rule("thematic", "choose: chosen", FIRST, "activities[act].choose",
              "choose chosen needs an officer to name the cases when starting it"),
        _rule("thematic", "choose: filtered\nsize: 9", FIRST, "activities[act].choose",
              "choose filtered needs an officer to name the filter when starting it"),
        _rule("thematic", "choose: chosen\non_demand: true\nmonths: [May]", FIRST + 2,
              "activities[act].months",
              "an on-demand activity runs when an officer starts it, not in set months"),
        _rule("event", "choose: event", FIRST, "activities[act].choose",
              "choose event names no event date column"),
        _rule("thematic", "choose: event\nevent: panel_on", 20, "activities[act].kind",
              "an event activity takes the cases whose event falls due: kind event goes with "
              "choose event"),
        _rule("event", "size: 2", 17, "activities[act].choose",
              "an event activity takes the cases whose event falls due: kind event goes with "
              "choose event"),
        _rule("thematic", "size: 2\nevent: panel_on", FIRST + 1, "activities[act].event",
              "event is only for choose: event"),
        _rule("thematic", "size: 2\nafter_months: 6", FIRST + 1, "activities[act].after_months",
              "after_months is only for choose: event"),
        _rule("thematic", "choose: audited", FIRST, "activities[act].choose",
              "choose audited follows the month's audited cases: it is for feedback"),
        _rule("supervision", "size: 2", 17, "activities[act].subject",
              "a supervision audit looks at a member of staff's supervision"),
        _rule("observation", "subject: supervisor\nsize: 2", FIRST, "activities[act].subject",
              "an observation watches a practitioner's practice"),
        _rule("thematic", "subject: practitioner\nsize: 2", FIRST, "activities[act].subject",
              "a thematic activity looks at cases, not at a practitioner"),
        _rule("thematic", "size: 2\ncases: 6", FIRST + 1, "activities[act].cases",
              "cases are drawn for a supervision audit of a member of staff"),
        _rule("thematic", "size: 2\ntimes_a_year: 2", FIRST + 1, "activities[act].times_a_year",
              "times_a_year is how often each member of staff is covered"),
        _rule("thematic", "size: 2\nper_auditor: 1", FIRST + 1, "activities[act].per_auditor",
              "gives size and per_auditor"),
        _rule("observation", "subject: practitioner\nchoose: rotation", FIRST + 1,
              "activities[act].choose", "choose rotation says no number"),
        _rule("thematic", "", 17, "activities[act].choose", "choose random says no number"),
        _rule("supervision", "subject: supervisor\nchoose: every\nsize: 3", FIRST + 2,
              "activities[act].size",
              "choose every takes every member of staff of its subject: a number says nothing"),
        _rule("feedback", "choose: audited\nshare: 1.5", FIRST + 1, "activities[act].share",
              "share 1.5 is not a share of the audited cases"),
        _rule("feedback", "choose: audited\nshare: 0", FIRST + 1, "activities[act].share",
              "share 0 is not a share of the audited cases"),
        _rule("observation", "subject: practitioner\nper_auditor: 1\non_demand: true",
              FIRST + 2, "activities[act].on_demand",
              "an officer starts a run of cases (a theme), but the subject is a practitioner"),
        _rule("thematic", "size: 2\nshare: 0.5", FIRST + 1, "activities[act].share",
              "share is only for choose: audited"),
        _rule("observation", "subject: practitioner\nper_auditor: 1\nresults_for: [viewer]",
              FIRST + 2, "activities[act].results_for[1]",
              "a viewer never sees a named member of staff's results, only counts"),
        _rule("observation", "subject: practitioner\nper_auditor: 1\nresults_for: [manager]",
              FIRST + 2, "activities[act].results_for[1]",
              "'manager' is not a role that may see staff results"),
        _rule("observation",
              "subject: practitioner\nper_auditor: 1\nresults_for: [moderator, moderator]",
              FIRST + 2, "activities[act].results_for[2]", "'moderator' is named twice"),
        _rule("thematic", "size: 2\nresults_for: [officer]", FIRST + 1,
              "activities[act].results_for",
              "results_for narrows who sees a member of staff's results, but the subject is a "
              "case"),
        _rule("thematic", "size: 2\nmin_base: 0", FIRST + 1, "activities[act].min_base",
              "0 is less than the minimum of 1"),
    ],
)  # fmt: skip
def test_each_rule_rejects_an_activity_with_its_line_and_key(tmp_path, entry, expected):
    assert _problems(tmp_path, BASE + entry) == expected


def test_ids_and_codes_are_unique(tmp_path):
    first = _activity("thematic", "size: 2")
    assert _problems(tmp_path, BASE + first + first.replace("code: AC", "code: AB")) == [
        ("24", "activities[act].id", "two activities have id act")
    ]
    second = first.replace("id: act", "id: other")
    assert _problems(tmp_path, BASE + first + second) == [
        ("25", "activities[other].code", "two activities have code AC")
    ]


def test_an_activity_without_a_deadline_needs_its_forms_completion_deadline(tmp_path):
    own = BASE.replace(
        'deadlines:\n  completion: {label: audits due, day: last, source: "4.3"}',
        'forms:\n  csc:\n    deadlines:\n      completion: {label: due, day: last, source: "4.3"}',
    )
    helped = _activity("thematic", "size: 2", form="early_help")
    assert _problems(tmp_path, own + helped) == [
        ("1", "deadlines", "no completion deadline for early_help")
    ]
    dated = _activity("thematic", "size: 2\ndeadline: {day: 20}", form="early_help")
    assert _problems(tmp_path, own + dated) == []


def test_a_checker_message_says_where_what_and_how_to_fix(tmp_path):
    path = tmp_path / "ours.yaml"
    entry = "subject: practitioner\nper_auditor: 1\nresults_for: [viewer]"
    path.write_text(BASE + _activity("observation", entry), encoding="utf-8")
    [issue] = check_policy_file(path)
    roles = ", ".join(STAFF_RESULT_ROLES)
    assert issue.message == (
        f"[{path} · line 25 · activities[act].results_for[1]] a viewer never sees a named "
        f"member of staff's results, only counts. Remove viewer; name some of {roles}."
    )


def test_a_snapshot_with_a_bad_activity_names_the_key_without_a_line(policies):
    stored = policy_snapshot(policies["hull"])
    stored["activities"][0]["choose"] = "every"
    with pytest.raises(PolicyError) as error:
        policy_from_snapshot(stored, 3)
    assert str(error.value).splitlines()[0] == (
        "[stored policy v3 · activities[dip_sample].choose] choose every goes through the staff "
        "file, but the subject is a case. Give subject: supervisor or practitioner, or choose: "
        "random."
    )


def test_the_schema_names_the_same_vocabularies_as_the_code():
    schema = json.loads((ROOT / "formtool/programme/programme_schema.json").read_text())
    defs = schema["$defs"]
    activity = defs["activity"]["properties"]
    assert activity["kind"]["enum"] == list(KINDS)
    assert activity["subject"]["enum"] == list(SUBJECTS)
    assert activity["choose"]["enum"] == list(CHOOSING)
    assert set(activity) == {f for f in Activity.__dataclass_fields__ if f != "deadline_source"}
    rule = defs["deadline"]["properties"]
    assert defs["activity_deadline"]["properties"] == {
        k: v for k, v in rule.items() if k != "label"
    }


# --- the shipped policies ------------------------------------------------------------------


def _table(policy: Policy) -> list[tuple[str, str, str, str, str, str, list[int]]]:
    return [
        (a.id, a.code, a.kind, a.form, a.subject, a.choose, sorted(a.months))
        for a in policy.activities
    ]


def test_hull_has_the_activities_of_seed_001(policies):
    hull = policies["hull"]
    assert _table(hull) == [
        ("dip_sample", "DIP", "dip_sample", "thematic", "case", "random", []),
        ("thematic", "TH", "thematic", "thematic", "case", "filtered", []),
        ("partnership_reaudit", "PR", "thematic", "thematic", "case", "chosen", []),
        ("supervision", "SUP", "supervision", "supervision", "supervisor", "every", [5, 11]),
        ("observation", "OBS", "observation", "observation", "practitioner", "rotation", []),
        ("family_feedback", "FB", "feedback", "family_feedback", "case", "audited", []),
        ("adopter_stage1", "ADS", "event", "prospective_adopter", "case", "event", []),
        ("adopter_panel", "ADP", "event", "prospective_adopter", "case", "event", []),
    ]
    dip, thematic, chosen, supervision, observation, feedback, stage1, panel = hull.activities
    # 4.31: two cases a month each for Heads of Service, team managers and group managers.
    assert (dip.per_auditor, dip.auditors) == (
        2,
        ("heads of service", "team managers", "group managers"),
    )
    groups = [hull.auditors.group(name) for name in dip.auditors]
    # Groups with no quotas of their own: the programme's ten a year apply.
    assert [(g.per_month, g.per_year, g.months_off) for g in groups if g] == [(None,) * 3] * 3
    assert (thematic.on_demand, thematic.size, thematic.review_months) == (True, 20, 6)
    assert chosen.on_demand and chosen.size == 0
    assert (supervision.cases, supervision.times_a_year) == (6, 2)  # 4.18
    assert (observation.per_auditor, observation.team, observation.times_a_year) == (1, "own", 2)
    assert (feedback.share, feedback.categories) == (1.0, ("cin", "cp", "lac"))
    assert (stage1.event, panel.event) == ("stage1_completed_on", "panel_on")
    assert not any(a.counts_toward_quota or a.deadline for a in hull.activities)
    assert all(a.source.startswith("seed 001") for a in hull.activities)
    # Hull keeps its case file samples exactly.
    assert [s.name for s in hull.samples] == ["Control sample", "Foster carers",
                                             "Prospective adopters"]  # fmt: skip


def test_rochdale_observes_monthly_and_dip_samples_and_audits_supervision_quarterly(policies):
    rochdale = policies["rochdale"]
    assert _table(rochdale) == [
        ("observation", "OBS", "observation", "observation", "practitioner", "rotation",
         [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]),
        ("dip_sample", "DIP", "dip_sample", "thematic", "case", "random", [3, 6, 9, 12]),
        ("supervision", "SUP", "supervision", "supervision", "practitioner", "rotation",
         [1, 4, 7, 10]),
    ]  # fmt: skip
    observation, dip, supervision = rochdale.activities
    assert observation.auditors == ("social care managers", "early help managers")
    assert (observation.per_auditor, observation.times_a_year, observation.team) == (1, 1, "own")
    # The 14th of the next month or the nearest working day: 14 June 2026 is a Sunday.
    assert observation.deadline and observation.deadline.due(2026, 5) == D(2026, 6, 15)
    # After the quarter: June's dip samples are due 14 July 2026 (a Tuesday).
    assert dip.deadline and dip.deadline.due(2026, 6) == D(2026, 7, 14)
    assert (dip.per_auditor, dip.auditors) == (1, ("heads of service",))
    # Allocated at the start of the quarter, due at its end.
    assert supervision.deadline and supervision.deadline.due(2026, 7) == D(2026, 9, 30)
    assert (supervision.times_a_year, supervision.cases) == (2, 0)
    assert rochdale.auditors.group("heads of service").per_month is None


def test_windsor_deep_dives_are_thematic_activities_in_april_and_august(policies):
    windsor = policies["windsor-maidenhead"]
    assert _table(windsor) == [
        ("deep_dive_social_care", "DDS", "thematic", "thematic", "case", "random", [4, 8]),
        ("deep_dive_early_help", "DDE", "thematic", "thematic", "case", "random", [4, 8]),
    ]
    social, early = windsor.activities
    assert (social.size, social.categories, social.auditors, social.team) == (
        10,
        ("cin", "cp", "lac"),
        ("social care managers",),
        "other",
    )
    assert (early.size, early.categories, early.auditors) == (
        10,
        ("early_help",),
        ("early help team managers",),
    )
    # The month is not doubled: no case file sample runs in April or August.
    assert not [s.name for s in windsor.samples if s.runs_in(4) or s.runs_in(8)]
    assert len(windsor.on_closure) == 2


def test_hampshire_has_no_activities(policies):
    assert policies["hampshire"].activities == ()


@pytest.mark.parametrize("name", SHIPPED)
def test_activities_round_trip_through_the_snapshot(name, policies):
    policy = policies[name]
    stored = json.loads(json.dumps(policy_snapshot(policy)))
    assert policy_from_snapshot(stored, 2).activities == policy.activities
    assert policy_from_data(stored) == policy


def test_the_snapshot_keeps_an_activity_in_the_files_shape(policies):
    snapshot = policy_snapshot(policies["rochdale"])
    assert snapshot["activities"][0] == {
        "id": "observation",
        "code": "OBS",
        "name": "Observation of practice",
        "kind": "observation",
        "form": "observation",
        "subject": "practitioner",
        "choose": "rotation",
        "per_auditor": 1,
        "months": [1, 2, 3, 4, 5, 6, 7, 9, 10, 11],
        "auditors": ["social care managers", "early help managers"],
        "team": "own",
        "deadline": {
            "day": 14,
            "month": 1,
            "adjust": "nearest",
            "source": "seed 004, Children's Services Observations of Practice (by the 14th)",
        },
        "times_a_year": 1,
        "source": "seed 004, Observations of Practice; Reporting timetable (Practice/Team Manager)",
    }
    assert "activities" not in policy_snapshot(load_policy("hampshire"))


# --- in words ------------------------------------------------------------------------------


def test_an_activity_in_words(policies):
    observation = policies["rochdale"].activities[0]
    assert activity_words(observation) == [
        "What: an observation of practice, with the observation tool; its audit ids begin OBS.",
        "Done by social care managers or early help managers, in their own team.",
        "1 practitioner per auditor, in rotation: those not done for longest (or never) first; "
        "each practitioner at least once a year.",
        "In January, February, March, April, May, June, July, September, October and November.",
        "Due the 14th of the next month or the nearest working day; source: seed 004, Children's "
        "Services Observations of Practice (by the 14th).",
        "Does not count toward an auditor's quota.",
        "Staff data: only officers and moderators see a named practitioner's results; "
        "viewers see counts only.",
        "Reports give a proportion when at least 5 subjects answer; below that, counts only.",
        "Source: seed 004, Observations of Practice; Reporting timetable (Practice/Team Manager).",
    ]


@pytest.mark.parametrize(
    "activity_id, words",
    [
        ("dip_sample", "2 cases per auditor, drawn at random from cin, cp, lac."),
        ("thematic", "When an officer starts it (formtool activity start thematic); its cases "
         "are reviewed 6 months on."),
        ("partnership_reaudit", "The cases the officer names when starting it."),
        ("supervision", "Every supervisor, each with 6 of their cases drawn at random; each "
         "supervisor at least twice a year."),
        ("supervision", "In May and November."),
        ("family_feedback", "Feedback on every audited case (cin, cp, lac)."),
        ("family_feedback", "Done by the auditor of each audited case."),
        ("adopter_panel", "Every case (prospective_adopter) whose panel_on date fell in the "
         "month before."),
        ("adopter_panel", "Due when the programme's case file audits are due."),
        ("thematic", "Results: as for case file audits."),
    ],
)  # fmt: skip
def test_hull_activities_in_words(activity_id, words, policies):
    activity = policies["hull"].activity(activity_id)
    assert activity and words in activity_words(activity)


def test_words_for_shares_events_after_months_and_counted_quotas():
    feedback = Activity("fb", "FB", "Feedback", "feedback", "family_feedback", choose="audited",
                        share=0.25)  # fmt: skip
    assert "Feedback on 25% of the audited cases." in activity_words(feedback)
    support = Activity("sup", "AS", "Support", "event", "csc", choose="event",
                       event="support_started_on", after_months=6,
                       counts_toward_quota=True)  # fmt: skip
    words = activity_words(support)
    assert (
        "Every case whose support_started_on date fell in the month 7 months before, audited 6 "
        "months on."
    ) in words
    assert "Counts toward an auditor's quota." in words and "Done by any auditor." in words
