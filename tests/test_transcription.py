"""Transcription: every form matches its seed audit tool, domain by domain.

Counts are the number of question rows in each domain of the paper tool; every question
(and every printed guidance bullet) must also be found, by its opening words, in the seed.
"""

from __future__ import annotations

import re

import pytest

from formtool.definitions import get_form

from conftest import SEEDS

pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason="shared/seeds not beside the repo")

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
ADOPTER_PROCESS_CHECKS = {"date": 8, "question": 14}  # 15 printed rows, dates split out

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


def seed_segment(form_id: str) -> str:
    number, start, end = SEGMENTS[form_id]
    text = next(SEEDS.glob(f"{number}_*.txt")).read_text(encoding="utf-8")
    begin = text.index(start)
    finish = text.index(end, begin) if end else len(text)
    return normalise(text[begin:finish])


def opening(text: str, words: int = 6) -> str:
    return " ".join(normalise(text).split()[:words])


@pytest.mark.parametrize("form_id", sorted(QUESTIONS_PER_DOMAIN))
def test_question_count_per_domain(form_id):
    form = get_form(form_id)
    counted = {s.id: len(s.questions) for s in form.sections if s.questions}
    assert counted == QUESTIONS_PER_DOMAIN[form_id]


def test_adopter_prompts_per_section():
    form = get_form("prospective_adopter")
    counted = {}
    for section in form.sections:
        prompts = sum(len(i.guidance) or 1 for i in section.items if i.kind in ("text", "question"))
        if section.id in ADOPTER_PROMPTS:
            counted[section.id] = prompts
    assert counted == ADOPTER_PROMPTS
    process = next(s for s in form.sections if s.id == "process")
    kinds = {k: sum(1 for i in process.items if i.kind == k) for k in ADOPTER_PROCESS_CHECKS}
    assert kinds == ADOPTER_PROCESS_CHECKS


@pytest.mark.parametrize("form_id", sorted(SEGMENTS))
def test_every_question_and_guidance_line_is_in_the_seed(form_id):
    form = get_form(form_id)
    seed = seed_segment(form_id)
    texts = []
    for section in form.sections:
        texts += [g for g in section.guidance if not g.startswith("Include organisational")]
        for item in section.items:
            if item.kind == "question" and form_id != "prospective_adopter":
                texts.append(item.label)
            if item.kind == "text" and form_id == "prospective_adopter":
                texts += list(item.guidance)
            if item.kind == "question" and form_id == "quality_practice":
                texts.append(item.guidance[0])
    missing = [t for t in texts if opening(t) not in seed]
    assert missing == []
    assert len(texts) >= 14


def test_grade_descriptors_and_indicators_come_from_the_seeds():
    form = get_form("csc")
    grade = form.field("overall.grade").scale
    appendix_a = normalise(next(SEEDS.glob("001_*.txt")).read_text(encoding="utf-8"))
    for choice in grade.choices:
        assert opening(grade.descriptors[choice], 12) in appendix_a, choice
    hillingdon = normalise(next(SEEDS.glob("003_*.txt")).read_text(encoding="utf-8"))
    indicators = [
        line
        for s in form.sections
        for block in s.indicators
        for line in block.good + block.outstanding
    ]
    assert len(indicators) == 6 + 3 + 11 + 4 + 9 + 3 + 9 + 4
    assert [i for i in indicators if opening(i, 4) not in hillingdon] == []
