"""The audit tools of the QA activities besides the monthly case-file audit (issue 21): the
Thematic Audit Tool (thematic audits and dip samples), the Supervision Audit Tool, the
Observation of Practice Record and Feedback from Children and Families. Each is data in
templates/forms/: it checks clean, its header carries the facts its activity pre-fills,
formtool's design is marked as additions `forms show` lists, and its keys are the ones
reports read. Each is filled, saved by LibreOffice and imported with every answer in
test_libreoffice.py (as every shipped tool is), and runs end to end in test_activities.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from formtool.cli import cli
from formtool.definitions import check_form, get_form
from formtool.definitions.scales import FieldKind

TOOLS = ("thematic", "supervision", "observation", "family_feedback")
DUE = "2026-12-14"  # seed 004: submitted by the 14th
#: Each tool's case-list columns in print order, with the labels the brief names.
HEADER = {
    "thematic": [
        ("case_number", "Case Number"),
        ("family_name", "Family Name"),
        ("given_names", "Given Names"),
        ("worker", "Allocated Worker"),
        ("team", "Team"),
        ("theme", "Theme"),
        ("audit_type", "Type of audit"),
        ("auditor", "Auditor"),
        ("due_date", "Audit due by"),
    ],
    "supervision": [
        ("case_number", "Staff Reference"),
        ("staff_name", "Supervisor Name"),
        ("team", "Team"),
        ("role", "Role"),
        ("cases", "Cases sampled"),
        ("auditor", "Auditor"),
        ("due_date", "Audit due by"),
    ],
    "observation": [
        ("case_number", "Staff Reference"),
        ("staff_name", "Practitioner Name"),
        ("team", "Team"),
        ("role", "Role"),
        ("auditor", "Observed by"),
        ("due_date", "Audit due by"),
    ],
    "family_feedback": [
        ("case_number", "Case Number"),
        ("family_name", "Family Name"),
        ("given_names", "Given Names"),
        ("worker", "Allocated Worker"),
        ("team", "Team"),
        ("auditor", "Auditor"),
        ("due_date", "Audit due by"),
    ],
}
#: A theme may be blank (a dip sample) and a practitioner's supervision file has no sample.
OPTIONAL = {"theme", "audit_type", "cases"}
#: One made-up case-list row per tool (staff ids as the staff file gives them).
ROWS = {
    "thematic": {
        "case_number": "C1001",
        "family_name": "Example",
        "given_names": "Alex",
        "worker": "Worker A1 (synthetic)",
        "team": "Team North (synthetic)",
        "theme": "Neglect",
        "audit_type": "Thematic audit",
    },
    "supervision": {
        "case_number": "S104",
        "staff_name": "Manager B1 (synthetic)",
        "team": "Team South (synthetic)",
        "role": "Team Manager",
        "cases": "C1001, C1002, C1003, C1004, C1005, C1006",
    },
    "observation": {
        "case_number": "S212",
        "staff_name": "Worker C2 (synthetic)",
        "team": "Team East (synthetic)",
        "role": "Social Worker",
    },
    "family_feedback": {
        "case_number": "C1002",
        "family_name": "Sample",
        "given_names": "Sam",
        "worker": "Worker A2 (synthetic)",
        "team": "Team North (synthetic)",
    },
}
#: The keys the activity reports read: section ids, then each section's question keys.
QUESTIONS = {
    "thematic": {
        "concern": [],
        "theme": [
            "theme.practice_evident",
            "theme.child_voice",
            "theme.partners",
            "theme.oversight",
            "theme.drift",
            "theme.impact",
        ],
        "findings": [],
        "overall": [],
        "next_steps": [],
        "completion": [],
    },
    "supervision": {
        "concern": [],
        "quality": [
            "quality.frequency",
            "quality.reflective",
            "quality.decisions",
            "quality.actions_set",
            "quality.actions_monitored",
            "quality.drift",
            "quality.child_voice",
            "quality.support_challenge",
        ],
        "findings": [],
        "overall": [],
        "next_steps": [],
        "completion": [],
    },
    "observation": {
        "concern": [],
        "observation": [
            "observation.discussed_beforehand",
            "observation.consent",
            "observation.views_gathered",
        ],
        "standards": [
            "standards.purpose_clear",
            "standards.child_voice",
            "standards.listened",
            "standards.respect",
            "standards.relationship",
            "standards.safeguarding",
        ],
        "reflection": [
            "reflection.reflective_discussion",
            "reflection.shared_review",
            "reflection.action_plan",
            "reflection.exemplar",
            "reflection.consent_to_share",
        ],
        "findings": [],
        "overall": [],
        "next_steps": [],
        "authorisation": [],
        "completion": [],
    },
    "family_feedback": {
        "concern": [],
        "contact": [],
        "views": ["views.listened_to", "views.understands_plan", "views.knows_worker"],
        "completion": [],
    },
}
#: Answers that are facts, not findings about practice: no finding phrase, never counted.
NEUTRAL = {"reflection.exemplar", "reflection.consent_to_share"}


def test_each_tool_checks_clean_and_is_listed_as_shipped():
    for tool in TOOLS:
        assert check_form(Path(get_form(tool).path)) == [], tool
    result = CliRunner().invoke(cli, ["forms", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["id"]: r for r in json.loads(result.output)}
    assert {t: listed[t]["source"] for t in TOOLS} == dict.fromkeys(TOOLS, "shipped")
    assert [listed[t]["title"] for t in TOOLS] == [
        "Thematic Audit Tool",
        "Supervision Audit Tool",
        "Observation of Practice Record",
        "Feedback from Children and Families",
    ]


@pytest.mark.parametrize("tool", TOOLS)
def test_each_header_carries_the_facts_its_activity_fills(tool):
    form = get_form(tool)
    assert [(h.column, h.label) for h in form.header] == HEADER[tool]
    required = {h.column for h in form.header if h.required}
    assert required == {column for column, _ in HEADER[tool]} - OPTIONAL
    assert [h.kind for h in form.header if h.column == "due_date"] == [FieldKind.date]


@pytest.mark.parametrize("tool", TOOLS)
def test_forms_show_lists_formtools_design_on_every_section(tool):
    """The seeds name these tools but print none: every section is formtool's, and says why."""
    result = CliRunner().invoke(cli, ["forms", "show", tool, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    additions = {a["what"]: a["why"] for a in shown["additions"]}
    sections = [s.title for s in get_form(tool).sections]
    assert [w for w in additions if w.startswith("section: ")] == [
        f"section: {t}" for t in sections
    ]
    assert "the activity's deadline" in additions["header: Audit due by"]
    designed = [s for s in sections if s not in ("Immediate concerns", "Audit completion")]
    assert all(additions[f"section: {s}"].startswith("formtool's design") for s in designed)
    assert shown["source"].startswith("Seed 00")
    text = CliRunner().invoke(cli, ["forms", "show", tool]).output
    assert "[added by formtool: formtool prints the due date (the activity's deadline" in text


@pytest.mark.parametrize("tool", TOOLS)
def test_the_keys_reports_read_and_their_finding_phrases(tool):
    form = get_form(tool)
    in_order = [(s.id, [q.key for q in s.questions]) for s in form.sections]
    assert in_order == list(QUESTIONS[tool].items())
    assert form.judgements.concern == "concern.immediate" and form.domains() == []
    assert (form.judgements.status, form.judgements.final) == ("completion.status", "Final")
    graded = tool != "family_feedback"  # feedback is the family's view, not a judgement
    assert form.judgements.grade == ("overall.judgement" if graded else "")
    if graded:
        grade = form.grade_scale
        assert grade is not None and grade.ranked
        assert grade.choices == ("Good", "Requires improvement", "Inadequate")
        assert {"findings.strengths", "findings.development"} <= {f.key for f in form.fields()}
        actions = form.item("next_steps.actions")
        assert actions is not None and [c.role for c in actions.columns][:2] == [
            "recommendation",
            "action",
        ]
    for question in form.questions():
        counted = question.outcome("Yes") is not None
        assert counted == (question.key not in NEUTRAL), question.key
        assert all(question.finding) == counted, question.key  # "In 3 of the 10 cases ..."
