"""Transcription: every form matches its seed audit tool, domain by domain.

Counts are the number of question rows in each domain of the paper tool; every question
(and every printed guidance bullet) must also be found, by its opening words, in the seed.
Where the brief asks for text verbatim (the Quality Practice checklist's column headings,
stages and Appendix 3 guidance; the printed headers; the adopter's process checks and
improvement plan; seed 003's indicators and "Good practice in auditing") the whole text is
compared, after `normalise` (case, punctuation, whitespace and the seed's OCR slips). Every
printed heading (section headings, header group headings, stage cells) is a printed line of
the seed, and every column label is in the seed's table headings, or each is formtool's and
listed by `formtool forms show`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest
from click.testing import CliRunner

from formtool.cli import cli
from formtool.definitions import FormDefinition, check_form, get_form
from formtool.definitions.forms import OPTIONAL, PLACEHOLDER, case_heading
from formtool.definitions.layout import layout

from conftest import SEEDS, missing


@pytest.fixture(autouse=True)
def seeds_beside_the_repo() -> None:
    if not SEEDS.is_dir():
        missing(f"the seeds are not at {SEEDS} (shared/seeds beside the repo)")


QUESTIONS_PER_DOMAIN = {
    "csc": {
        "kss1": 4,
        "kss2": 4,
        "kss3": 3,
        "kss4": 3,
        "kss5": 4,
        "kss6": 4,
        "kss7": 4,
        "kss8": 2,
        "kss9": 4,
        "kss10": 1,
    },
    "early_help": {
        "kss1": 3,
        "kss2": 4,
        "kss3": 4,
        "kss4": 3,
        "kss5": 3,
        "kss6": 4,
        "kss7": 4,
        "kss8": 1,
        "kss9": 4,
        "kss10": 1,
    },
    "foster_carer": {
        "kss1": 5,
        "kss2": 3,
        "kss3": 4,
        "kss5": 6,
        "kss6": 5,
        "kss7": 10,
        "kss9": 4,
        "kss10": 1,
    },
    "supported_lodgings": {
        "kss1": 5,
        "kss2": 3,
        "kss3": 3,
        "kss5": 5,
        "kss7": 7,
        "kss9": 6,
        "kss10": 1,
    },
    "quality_practice": {
        "screening": 2,
        "assessment": 3,
        "planning": 3,
        "implementation": 2,
        "monitoring": 1,
        "reviewing": 2,
        "closure": 1,
    },
    # The adopter tool asks no Yes/No questions but the family survey's "Was the family
    # contacted?" (the process checks are comment rows, as printed).
    "prospective_adopter": {"family_survey": 1},
}
# The adopter tool asks headed prompts answered in one comment box per heading.
ADOPTER_PROMPTS = {
    "assessment": 18,
    "family_finding": 12,
    "placement": 21,
    "supervision": 5,
    "worker": 3,
    "family_survey": 5,
}
ADOPTER_PROCESS_ROWS = 15
# The one process check that asks only for a date is a date item; the others are comments.
ADOPTER_DATE_ROWS = {"process.post_approval_plan_date"}

# Headers as printed on the paper tools, in order. "Date of Audit" is printed in the header
# box of two tools but is the auditor's answer, so the form asks it as `audit.date_of_audit`.
PRINTED_HEADER = {
    "prospective_adopter": [
        "Family Name",
        "Given Names",
        "Case Number",
        "Full Name",
        "DOB",
        "LCS Number",
        "Ethnicity",
        "Religion",
        "Practising?",
        "Languages",
        "Disabilities",
        "Gender",
        "Sexuality",
        "Social Worker",
        "Team Manager",
        "Team",
        "Date of Audit",
        "Auditor",
    ],
    "supported_lodgings": [
        "Supported Lodgings Provider(s)",
        "Team Manager",
        "Team",
        "Approval Terms",
        "Approval Level(s)",
        "Name(s) of children/young people placed/living with the provider(s)",
        "Audit Type",
        "Date of Audit",
        "Name of the Auditor",
    ],
}
ANSWERED_IN_FORM = {"Date of Audit": "audit.date_of_audit"}

# Everything formtool adds to these paper tools, by what `FormDefinition.additions` names.
GRADES_HEADING = "heading: Grading of audits: judgements and what they mean"
ADOPTER_SCALES = [  # the seed prints "Auditor Judgement" with no scale: formtool offers one
    f"scale: {key} (Grading)"
    for key in (
        "process.judgement",
        "assessment.judgement",
        "family_finding.judgement",
        "placement.judgement",
        "supervision.judgement",
        "overall.grade",
    )
]
EVERY_TOOL = ["header: Audit due by", GRADES_HEADING, "section: Immediate concerns"]
ADDITIONS = {
    "csc": [*EVERY_TOOL, "section: Audit completion"],
    "early_help": [*EVERY_TOOL, "section: Audit completion"],
    "foster_carer": [*EVERY_TOOL, "heading: Audit details", "section: Audit completion"],
    "quality_practice": [
        "header: Audit due by",
        "section: Immediate concerns",
        "heading: Comments",
        "section: Audit completion",
    ],
    "prospective_adopter": [
        "header: Audit due by",
        GRADES_HEADING,
        "section: Immediate concerns",
        "heading: Audit details",
        *ADOPTER_SCALES,
        "section: Audit completion",
    ],
    "supported_lodgings": [
        "header: Case Number",
        "header: Audit due by",
        GRADES_HEADING,
        "section: Immediate concerns",
        "heading: Audit details",
        "section: Audit completion",
    ],
}

# Seed 003's indicator blocks, by the section that audits home visits, assessments, plans or
# reviews. The Quality Practice checklist has its own Appendix 3 guidance instead.
INDICATORS = {
    "csc": {"kss1": ["Home visits"], "kss6": ["Assessments"], "kss7": ["Plans", "Reviews"]},
    "early_help": {
        "kss1": ["Home visits"],
        "kss6": ["Assessments"],
        "kss7": ["Plans", "Reviews"],
    },
    "foster_carer": {"kss6": ["Assessments"], "kss7": ["Plans", "Reviews"]},
    "supported_lodgings": {"kss7": ["Plans", "Reviews"], "kss9": ["Home visits"]},
    "prospective_adopter": {
        "assessment": ["Assessments"],
        "placement": ["Home visits", "Plans", "Reviews"],
    },
}
GOOD_PRACTICE_FORMS = sorted(INDICATORS)

SEGMENTS = {  # (seed file, text that starts the form's tool, text that starts the next one)
    "csc": ("001", "CSC Case File Audit Template.pdf\nHull", "EH Case File Audit Template.pdf"),
    "early_help": ("001", "EH Case File Audit Template.pdf", "Fostering Case File Audit"),
    "foster_carer": (
        "001",
        "Fostering Case File Audit Template.pdf",
        "Prospective Adopter Case File Audit Template.pdf\nHull",
    ),
    "prospective_adopter": (
        "001",
        "Prospective Adopter Case File Audit Template.pdf\nHull",
        "Supported Lodgings Provider Case File Audit Template.pdf",
    ),
    "supported_lodgings": ("001", "Supported Lodgings Provider Case File Audit Template.pdf", None),
    "quality_practice": ("000", "15.2 Appendix 2 Audit Tool", "15.4 Appendix 4"),
}


def normalise(text: str) -> str:
    # undo the seed's OCR slips ("|s" for "Is", "\\Was", "[ollow") before comparing
    text = text.replace("|s ", "Is ").replace("\\W", "W").replace("[ollow", "Follow")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def seed_text(number: str) -> str:
    return next(SEEDS.glob(f"{number}_*.txt")).read_text(encoding="utf-8")


def raw_segment(form_id: str) -> str:
    number, start, end = SEGMENTS[form_id]
    text = seed_text(number)
    begin = text.index(start)
    finish = text.index(end, begin) if end else len(text)
    return text[begin:finish]


def seed_segment(form_id: str) -> str:
    return normalise(raw_segment(form_id))


def opening(text: str, words: int = 6) -> str:
    return " ".join(normalise(text).split()[:words])


def norm_all(texts) -> list[str]:
    return [normalise(t) for t in texts]


def section(form: FormDefinition, section_id: str):
    return next(s for s in form.sections if s.id == section_id)


# --- seed 000: the Quality Practice checklist ---------------------------------------------


def qp_table_cells() -> list[str]:
    """The cells of Appendix 2's table, in reading order (the seed separates them by tabs)."""
    tool = raw_segment("quality_practice")
    table = tool[tool.index("Courier number") : tool.index("Team/Unit Manager")]
    return [" ".join(cell.split()) for cell in table.split("\t")[1:]]


def qp_guidance() -> dict[str, list[str]]:
    """Appendix 3 line by line: "preamble", "Q1".."Q14" and "notes" (question headings out)."""
    text = seed_text("000")
    appendix = text[text.index("15.3  Appendix 3 Guidance") : text.index("15.4 Appendix 4")]
    found: dict[str, list[str]] = {"preamble": []}
    current = "preamble"
    for line in appendix.splitlines()[1:]:
        line = " ".join(line.split())
        heading = re.match(r"Q(\d+)\s*-", line)
        if heading:
            current = f"Q{heading.group(1)}"
            found[current] = []
        elif line == "Notes":
            current = "notes"
            found[current] = []
        elif line:
            found[current].append(line)
    return found


def test_quality_practice_prints_the_seed_columns_in_seed_order():
    form = get_form("quality_practice")
    stages = [s for s in form.sections if s.questions]
    assert [s.cells for s in stages] == [("stage", "question", "evidence", "answer")] * 7
    assert [s.joins_previous for s in stages] == [False] + [True] * 6  # one table
    first = stages[0]
    labels = {
        "stage": first.stage_label,
        "question": first.question_label,
        "evidence": first.evidence_label,
        "answer": first.answer_label,
    }
    printed = qp_table_cells()[:4]
    assert norm_all(labels[c] for c in first.cells) == norm_all(printed)


def test_quality_practice_stages_are_the_seed_first_column():
    form = get_form("quality_practice")
    cells = qp_table_cells()
    stage_of, stage = {}, ""
    for i, cell in enumerate(cells):
        number = re.match(r"(\d+)\. ", cell)
        if number:
            stage = cells[i - 1] or stage
            stage_of[number.group(1)] = stage
    assert len(stage_of) == 14
    for s in form.sections:
        for item in s.questions:
            assert normalise(s.title) == normalise(stage_of[item.number]), item.key
            assert normalise(f"{item.number}. {item.label}") in normalise(" ".join(cells))


def test_quality_practice_is_two_stage_with_a_comment_per_standard():
    form = get_form("quality_practice")
    questions = form.questions()
    assert len(questions) == 14
    assert {(q.role, q.evidence_role, q.comment, q.evidence) for q in questions} == {
        ("auditor", "preparer", True, True)
    }
    assert {q.scale.label for q in questions if q.scale} == {"Yes/No/N/A"}  # as printed
    assert form.judgements.grade == "" and form.grade_scale is None  # the seed has no grade
    comments = section(form, "comments")
    roles = {i.id: i.role for i in comments.items}
    assert roles == {
        "team_manager": "preparer",
        "team_manager_signature": "preparer",
        "team_manager_date": "preparer",
        "auditor": "auditor",
        "auditor_signature": "auditor",
        "date_of_audit": "auditor",
    }
    labels = normalise(" | ".join(i.label for i in comments.items))
    for printed in (
        "Team/Unit Manager's Comments / Actions",
        "Date & Signature",
        "Service Manager's / Auditor's comments about the file overall",
        "Date of Audit & Signature",
    ):
        assert normalise(printed) in labels
        assert normalise(printed) in seed_segment("quality_practice")


def test_quality_practice_carries_every_appendix_3_paragraph_verbatim():
    form = get_form("quality_practice")
    seed = qp_guidance()
    assert len([k for k in seed if k.startswith("Q")]) == 14
    for item in form.questions():
        assert norm_all(item.guidance) == norm_all(seed[f"Q{item.number}"]), item.key
    blocks = {g.title: g.lines for g in form.guidance}
    assert norm_all(blocks["Guidance"]) == norm_all(seed["preamble"])
    assert norm_all(blocks["Notes"]) == norm_all(seed["notes"])
    # Q1's paragraph per kind of team, Q2's for children and families' team managers, Q14's
    # note on transfers, by their own words
    q1 = normalise(" ".join(section(form, "screening").items[0].guidance))
    for team in ("R&A teams", "social work / care management teams", "provider teams"):
        assert normalise(f"If the {team} are being audited") in q1
    q2 = normalise(" ".join(section(form, "screening").items[1].guidance))
    assert normalise("For a children and families' team manager the decision") in q2
    q14 = normalise(" ".join(section(form, "closure").items[0].guidance))
    assert normalise("If a case is being transferred it would need to be seen before") in q14


def test_quality_practice_extra_guidance_is_seed_procedure_text():
    form = get_form("quality_practice")
    procedure = normalise(seed_text("000"))
    for block in form.guidance:
        assert block.source.startswith("Seed 000")
        assert [line for line in block.lines if normalise(line) not in procedure] == []


# --- printed headers ---------------------------------------------------------------------


def test_quality_practice_header_is_the_printed_header():
    form = get_form("quality_practice")
    tool = raw_segment("quality_practice")
    printed = [line.split("…")[0].strip() for line in tool.splitlines() if "…" in line]
    assert len(printed) == 7
    assert norm_all(h.label for h in form.header if not h.addition) == norm_all(printed)
    user = next(h for h in form.header if h.label == "Name of user")
    assert user.columns == ("given_names", "family_name")


@pytest.mark.parametrize("form_id", sorted(PRINTED_HEADER))
def test_header_is_the_printed_header(form_id):
    form = get_form(form_id)
    lines = [normalise(line) for line in raw_segment(form_id).splitlines()]
    printed = PRINTED_HEADER[form_id]
    at = [lines.index(normalise(label)) for label in printed]  # each a line of the seed,
    assert at == sorted(at)  # in the printed order
    facts = [label for label in printed if label not in ANSWERED_IN_FORM]
    assert [h.label for h in form.header if not h.addition] == facts
    for label, key in ANSWERED_IN_FORM.items():
        item = form.item(key)
        assert item is not None and item.label == label


@pytest.mark.parametrize("form_id", sorted(ADDITIONS))
def test_only_the_marked_additions(form_id):
    form = get_form(form_id)
    assert [what for what, _ in form.additions()] == ADDITIONS[form_id]
    assert all(why for _, why in form.additions())


def test_supported_lodgings_needs_only_the_printed_facts():
    form = get_form("supported_lodgings")
    case_number = next(h for h in form.header if h.column == "case_number")
    assert not case_number.required and case_number.addition
    assert "worker" not in {h.column for h in form.header}


# --- headings and column labels ------------------------------------------------------------


def printed_headings(form: FormDefinition) -> list[tuple[str, str, str]]:
    """(kind, text, where) for every heading the form prints, in print order: headings and
    subheadings, header group headings, stage cells and each table's column headings."""
    found = []
    for block in layout(form).blocks:
        if block.kind in ("heading", "subheading"):
            found.append((block.kind, block.text, ""))
        for row in block.rows:
            found += [
                (c.kind, c.text, block.name)
                for c in row.cells
                if c.kind in PRINTED and (c.down or c.kind != "stage")  # not a merged stage
            ]
    return found


PRINTED = ("heading", "group", "stage")  # the cells that head something, as printed


def whole(text: str, seed: str) -> bool:
    """`text` in `seed` as whole words, after `normalise` ("Question" is not "Questions")."""
    return f" {normalise(text)} " in f" {seed} "


def seed_lines(form_id: str) -> set[str]:
    """The seed's printed lines, normalised, and each run of two or three of them (the seed
    wraps a long heading over lines: "... Physical Ill Health" / "and Disability")."""
    lines = [line for line in norm_all(raw_segment(form_id).splitlines()) if line]
    return {" ".join(lines[i : i + n]) for n in (1, 2, 3) for i in range(len(lines))}


def split_over_two_lines(label: str, lines: list[str]) -> bool:
    """A column label printed in a two-line table heading: its first words end one seed line's
    cell and the rest start the next line's ("Manager Sign Off" over "Date")."""
    words = normalise(label).split()
    for above, below in itertools.pairwise(lines):
        for cut in range(1, len(words)):
            if whole(" ".join(words[:cut]), above) and whole(" ".join(words[cut:]), below):
                return True
    return False


def group_pattern(template: str) -> re.Pattern[str]:
    """A header group heading as a pattern over normalised seed text: a placeholder stands for
    one or more words (the seed's test case), a [bracketed] part may be absent."""

    def atoms(text: str) -> str:
        marked = PLACEHOLDER.sub(" \x00 ", text)
        return " ".join(
            r"\S+(?: \S+)*?" if word == "\x00" else re.escape(word)
            for token in marked.split()
            for word in (["\x00"] if token == "\x00" else normalise(token).split())
        )

    parts = OPTIONAL.split(template)  # text, optional, text, ...
    pattern = "".join(
        f"(?: {atoms(part)})?" if i % 2 else (" " if i else "") + atoms(part)
        for i, part in enumerate(parts)
        if part.strip()
    )
    return re.compile(pattern.strip())


def elsewhere(form: FormDefinition) -> dict[str, str]:
    """Headings whose words come from another text than the tool's own page: guidance block
    titles (their `source` seed), seed 003's indicator titles, the grades table's columns
    (seed 001 Appendix A para 16)."""
    found = {g.title: g.source.split()[1].strip(",:") for g in form.guidance}
    for s in form.sections:
        for block in s.indicators:
            found |= {block.title: "003", block.outstanding_title: "003"}
    found |= {"Judgement": "001", "Outcomes for Children": "001"}
    return {normalise(text): seed for text, seed in found.items()}


def added_headings(form: FormDefinition) -> set[str]:
    """What `formtool forms show ID` lists as formtool's headings, sections and groups."""
    output = CliRunner().invoke(cli, ["forms", "show", form.id]).output
    listed = output.partition("What formtool adds to the paper tool, and why:\n")[2]
    return {
        line.strip().split(": ", 1)[1]
        for line in listed.splitlines()
        if re.match(r"  (heading|section|header group): ", line)
    }


def unprinted_headings(form_id: str) -> list[str]:
    """Every printed heading and column label that is neither in the seed (verbatim, after
    `normalise`) nor listed by `forms show` as formtool's addition."""
    form = get_form(form_id)
    seed, lines = seed_segment(form_id), norm_all(raw_segment(form_id).splitlines())
    printed_lines, sources, added = seed_lines(form_id), elsewhere(form), added_headings(form)
    missing = []
    for kind, text, table in printed_headings(form):
        if text in added or (kind == "heading" and table in added_sections(form)):
            continue
        source = sources.get(normalise(text)) if table in ("", "grades") else None
        if source:  # guidance, indicator and grade headings: in their own seed
            found = whole(text, normalise(seed_text(source)))
        elif kind == "group":  # a line of the seed, the facts filled in
            found = any(group_pattern(text).fullmatch(line) for line in printed_lines)
        elif kind == "heading" and table:  # a column heading, in a table's heading lines
            found = text == "" or whole(text, seed) or split_over_two_lines(text, lines)
        else:  # a section's heading or a stage: a printed line of its own
            found = normalise(text) in printed_lines
        if not found:
            missing.append(f"{kind} {text!r}" + (f" in {table}" if table else ""))
    return missing


def added_sections(form: FormDefinition) -> set[str]:
    """The ids of the sections formtool adds (their tables' column headings are its own)."""
    return {s.id for s in form.sections if s.addition}


@pytest.mark.parametrize("form_id", sorted(SEGMENTS))
def test_every_heading_and_column_label_is_the_seeds_or_a_listed_addition(form_id):
    assert unprinted_headings(form_id) == []


@pytest.mark.parametrize("form_id", sorted(SEGMENTS))
def test_no_heading_repeats_the_heading_above_it(form_id):
    """The seed prints "Improvement Plan" once over its table, and "Next
    Steps/Recommendations, including ..." with no second "Next Steps/Recommendations"."""
    blocks = [b for b in layout(get_form(form_id)).blocks if b.kind != "guidance"]
    repeated = [
        below.text
        for above, below in itertools.pairwise(blocks)
        if above.kind == "heading"
        and below.kind == "subheading"
        and normalise(above.text).startswith(normalise(below.text))
    ]
    assert repeated == []


def test_the_csc_questions_are_headed_by_the_kss_title_not_question():
    form = get_form("csc")
    for s in form.sections:
        if s.short_title.startswith("KSS"):
            assert s.question_label == s.title  # as printed: "Knowledge and Skills ... 1: ..."


def partitions(labels: list[str], above: list[str], below: list[str]) -> bool:
    """Whether the labels, in order, are exactly the two printed heading lines: each label's
    first words in the top line, the rest in the bottom line."""
    if not labels:
        return not above and not below
    words = normalise(labels[0]).split()
    for cut in range(len(words) + 1):
        top, bottom = words[:cut], words[cut:]
        if (
            above[:cut] == top
            and below[: len(bottom)] == bottom
            and partitions(labels[1:], above[cut:], below[len(bottom) :])
        ):
            return True
    return False


def test_signed_off_action_columns_are_the_printed_two_line_heading():
    """Seed 001's fostering tool prints the oversight actions' heading cleanly on two lines;
    the shared column set reads exactly as those lines, column by column."""
    tool = raw_segment("foster_carer").splitlines()
    at = next(i for i, line in enumerate(tool) if line.startswith("Next Steps / Action Resp"))
    above, below = normalise(tool[at]).split(), normalise(tool[at + 1]).split()
    oversight = get_form("foster_carer").item("oversight.actions")
    assert oversight is not None
    labels = [c.label for c in oversight.columns]
    assert labels[-3:] == ["Comments", "Manager Sign Off", "Manager Sign Off Date"]
    assert partitions(labels, above, below)


def test_header_groups_are_printed_as_in_the_seed():
    """The paper header's groups, each under its heading, no fact paired across groups."""
    expected = {
        "csc": [
            "Details of Child: {given_names} {family_name} (Ref: {case_number})",
            "Social Worker/Team Details",
        ],
        "early_help": [
            "Details of {given_names} {family_name}[, {dob:years} years]",
            "Social Worker/Team Details",
        ],
        "foster_carer": [
            "Details of Person: {given_names} {family_name} (Ref: {case_number})",
            "Basic Information",
        ],
        "prospective_adopter": [
            "Details of Person: {given_names} {family_name} (Ref: {case_number})",
            "Ethnicity and Religion",
            "Gender and Sexuality",
            "Involved Professionals",
        ],
        "supported_lodgings": ["Basic Information"],
    }
    for form_id, groups in expected.items():
        form = get_form(form_id)
        assert [heading for heading, _ in form.header_groups()] == groups, form_id
        rows = layout(form).blocks[2].rows
        for row in rows:  # two facts in a row come from one group
            facts = [c.fact for c in row.cells if c.kind == "fact"]
            owners = {
                g
                for g, (_, group) in enumerate(form.header_groups())
                for h in group
                if h.column in facts
            }
            assert len(owners) <= 1, (form_id, facts)


GROUPED_TOOL = """
id: grouped
version: 1
title: Grouped
subject: child
source: synthetic
header:
  - {column: family_name, label: Family Name, group: "Details of {given_names} {family_name}"}
  - {column: case_number, label: Case Number}
sections:
  - id: s
    title: S
    items: [{text: note, label: Note}]
"""


def test_a_group_heading_names_only_facts_of_the_header(tmp_path):
    tool = tmp_path / "grouped.yaml"
    tool.write_text(GROUPED_TOOL, encoding="utf-8")
    (issue,) = check_form(tool)
    assert (issue.field, issue.code.label) == ("header.family_name.group", "bad-reference")
    assert "names '{given_names}', which this form does not have" in issue.message
    assert "Use one of {case_number}, {family_name}." in issue.message


def test_the_early_help_child_is_printed_with_their_age():
    form = get_form("early_help")
    template = form.header_groups()[0][0]
    facts = {"given_names": "Caf", "family_name": "Test", "dob": "01/01/2012"}
    assert case_heading(template, facts, dt.date(2020, 6, 1)) == "Details of Caf Test, 8 years"
    assert case_heading(template, facts | {"dob": ""}, dt.date(2020, 6, 1)) == (
        "Details of Caf Test"  # no date of birth: no age, rather than ", years"
    )
    assert normalise("Details of Caf Test, 8 years") in seed_segment("early_help")


# --- question counts and wording -------------------------------------------------------


@pytest.mark.parametrize("form_id", sorted(QUESTIONS_PER_DOMAIN))
def test_question_count_per_domain(form_id):
    form = get_form(form_id)
    counted = {s.id: len(s.questions) for s in form.sections if s.questions}
    assert counted == QUESTIONS_PER_DOMAIN[form_id]


def test_adopter_prompts_per_section():
    form = get_form("prospective_adopter")
    counted = {}
    for s in form.sections:
        prompts = sum(  # the PAR's bulleted documents ("• Genogram") are not prompts
            len([g for g in i.guidance if not g.startswith("• ")]) or 1
            for i in s.items
            if i.kind in ("text", "question")
        )
        if s.id in ADOPTER_PROMPTS:
            counted[s.id] = prompts
    assert counted == ADOPTER_PROMPTS


def adopter_process_rows() -> list[str]:
    """The printed process checks: blocks between the comments heading and the judgement."""
    tool = raw_segment("prospective_adopter")
    start = tool.index("Auditors Comments", tool.index("Process Checks"))
    rows = tool[start + len("Auditors Comments") : tool.index("Auditor Judgement", start)]
    return [" ".join(r.split()) for r in rows.split("\n\n") if r.strip()]


def test_adopter_process_checks_are_the_15_printed_rows():
    form = get_form("prospective_adopter")
    process = section(form, "process")
    rows = [i for i in process.items if i.kind in ("text", "date")]
    printed = adopter_process_rows()
    assert len(printed) == len(rows) == ADOPTER_PROCESS_ROWS
    assert norm_all(i.label for i in rows) == norm_all(printed)
    assert {i.key for i in rows if i.kind == "date"} == ADOPTER_DATE_ROWS
    assert not process.questions  # no invented Yes/No/N/A column
    assert [i.id for i in process.items if i.kind == "choice"] == ["judgement"]


def test_adopter_improvement_plan_has_the_printed_columns():
    form = get_form("prospective_adopter")
    (table,) = form.tables()
    assert [c.label for c in table.columns] == ["Action Identified", "By Whom", "By When"]
    assert [c.role for c in table.columns] == ["action", "responsible_person", "due_date"]
    assert normalise(" ".join(c.label for c in table.columns)) in seed_segment(
        "prospective_adopter"
    )


def test_adopter_has_no_moderation_section():
    form = get_form("prospective_adopter")
    assert "moderation" not in {s.id for s in form.sections}
    assert form.judgements.moderated_grade == ""
    assert form.judgements.grade == "overall.grade"


@pytest.mark.parametrize("form_id", sorted(SEGMENTS))
def test_every_question_and_guidance_line_is_in_the_seed(form_id):
    form = get_form(form_id)
    seed = seed_segment(form_id)
    texts = []
    for s in form.sections:
        if s.addition:  # formtool's own section (the urgent-concern question): not on paper
            continue
        texts += [g for g in s.guidance if not g.startswith("Include organisational")]
        for item in s.items:
            if item.kind == "question":
                texts.append(item.label)
            if form_id in ("prospective_adopter", "quality_practice"):
                texts += list(item.guidance)
            if s.id == "process":
                texts.append(item.label)
    missing = [t for t in texts if opening(t) not in seed]
    assert missing == []
    assert len(texts) >= 14


# --- seed 003: "what does good look like" and good practice in auditing ------------------


def hillingdon() -> dict[str, dict[str, Any]]:
    """Seed 003's indicator blocks by topic: title, good, outstanding_title, outstanding."""
    blocks: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    target = "good"
    for line in seed_text("003").splitlines():
        title = re.match(r"^([A-Z][a-z ]+): [Ww]hat does good look like\?$", line)
        if title:
            current = {"title": line, "good": [], "outstanding": []}
            blocks[title.group(1)] = current
            target = "good"
        elif current and line.startswith("Moving t"):
            current["outstanding_title"] = line.rstrip(":")
            target = "outstanding"
        elif current and line.startswith(" - "):
            bullets = current[target]
            bullets[-1] += " " + line[3:]  # "Voice of the child:" and its sub-points
        elif current and line.startswith("- "):
            current[target].append(line[2:])
        elif current and line.strip() and not line.startswith("QA "):
            current.setdefault("lead", line)  # "Records should clearly demonstrate:"
    return blocks


def test_seed_003_indicators_are_verbatim_where_they_apply():
    seed = hillingdon()
    assert sorted(seed) == ["Assessments", "Home visits", "Plans", "Reviews"]
    titles_used = set()
    for form_id, placed in INDICATORS.items():
        form = get_form(form_id)
        shown = {s.id: s.indicators for s in form.sections if s.indicators}
        assert sorted(shown) == sorted(placed), form_id
        for section_id, topics in placed.items():
            assert len(shown[section_id]) == len(topics)
            for block, topic in zip(shown[section_id], topics, strict=True):
                expected = seed[topic]
                title = expected["title"] + (" " + expected["lead"] if "lead" in expected else "")
                assert normalise(block.title) == normalise(title), (form_id, topic)
                assert norm_all(block.good) == norm_all(expected["good"]), (form_id, topic)
                assert norm_all(block.outstanding) == norm_all(expected["outstanding"])
                assert block.outstanding_title == expected["outstanding_title"]
                titles_used.add(block.outstanding_title)
    assert "Moving towards outstanding" in titles_used  # the reviews block, as printed
    assert titles_used <= {
        "Moving to Outstanding",
        "Moving to outstanding",
        "Moving towards outstanding",
    }


def good_practice() -> tuple[str, list[str]]:
    text = seed_text("003")
    part = text[text.index("Good practice in auditing:") : text.index("Indicators of good")]
    lines = [line.strip() for line in part.splitlines() if line.strip()]
    lead = next(line for line in lines if line.startswith("For a completed audit"))
    return lead, [line[2:] for line in lines if line.startswith("- ")]


@pytest.mark.parametrize("form_id", GOOD_PRACTICE_FORMS)
def test_good_practice_in_auditing_is_printed(form_id):
    lead, bullets = good_practice()
    assert len(bullets) == 11
    form = get_form(form_id)
    block = next(g for g in form.guidance if g.title.startswith("Good practice in auditing"))
    assert normalise(block.title) == normalise(f"Good practice in auditing: {lead}")
    assert norm_all(block.lines) == norm_all(bullets)
    assert block.source.startswith("Seed 003")


def test_grade_descriptors_come_from_the_seed():
    form = get_form("csc")
    grade = form.field("overall.grade").scale
    assert grade is not None
    appendix_a = normalise(seed_text("001"))
    for choice in grade.choices:
        assert opening(grade.descriptors[choice], 12) in appendix_a, choice


# --- polarity ------------------------------------------------------------------------------

# Questions whose favourable answer is not the scale's ("Yes"): the reason is in the YAML.
NOT_YES = {
    ("csc", "kss5.exploitation_issues"): "",
    ("csc", "kss8.court_drift_delay"): "No",
    ("csc", "kss10.organisational_learning"): "",
    ("early_help", "kss5.exploitation_issues"): "",
    ("early_help", "kss8.court_drift_delay"): "No",
    ("early_help", "kss10.organisational_learning"): "",
    ("foster_carer", "kss7.panel_attendance"): "",
    ("foster_carer", "kss10.organisational_learning"): "",
    ("supported_lodgings", "kss10.organisational_learning"): "",
    ("prospective_adopter", "family_survey.contacted"): "",
}


def test_every_question_has_a_reviewed_polarity():
    found = {
        (form_id, q.key): q.favourable
        for form_id in SEGMENTS
        for q in get_form(form_id).questions()
        if q.favourable is not None
    }
    assert found == NOT_YES


@pytest.mark.parametrize("form_id", ["csc", "early_help", "foster_carer", "supported_lodgings"])
def test_findings_read_as_sentences(form_id):
    form = get_form(form_id)
    scored = [q for q in form.questions() if q.favourable != ""]
    phrased = [q for q in scored if q.finding != ("", "")]
    assert all(all(q.finding) for q in phrased)  # both phrases or none
    assert all(p[0].islower() or p.startswith("Section") for q in phrased for p in q.finding)
    assert len(phrased) >= len(scored) - 1  # only "What was the quality ..." questions go without
