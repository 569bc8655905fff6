"""Intake forms: every shipped definition loads, answers are checked field by field."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from rooms.consults.intake import (
    DEFAULT_FORM,
    FieldType,
    IntakeFormError,
    InvalidIntake,
    check_intake,
    intake_problems,
    load_forms,
    shipped_forms,
)
from rooms.consults.people import Specialty
from tests.support.server import VALID_INTAKES

SHIPPED = sorted(
    e.name
    for e in (resources.files("rooms.consults") / "intake_forms").iterdir()
    if e.name.endswith(".json")
)


def problems(specialty: Specialty, answer: Any) -> list[tuple[str, str]]:
    form = shipped_forms().for_specialty(specialty)
    return [(p.field, p.reason) for p in intake_problems(form, answer)]


def test_the_specialties_the_brief_names_have_their_own_form_and_a_default_exists() -> None:
    assert {"default.json", "obstetrics.json", "child_growth.json", "ultrasound.json"} <= set(
        SHIPPED
    )
    assert "paediatrics.json" in SHIPPED


@pytest.mark.parametrize("filename", SHIPPED)
def test_every_shipped_definition_loads(filename: str) -> None:
    text = (resources.files("rooms.consults") / "intake_forms" / filename).read_text(
        encoding="utf-8"
    )
    forms = load_forms([("default.json", _DEFAULT), (filename, text)])
    form = forms.forms[filename.removesuffix(".json")]
    assert form.fields
    for f in form.fields:
        assert f.label.zh_cn and f.label.en
        if f.type is FieldType.NUMBER:
            assert f.min is not None and f.max is not None
        if f.type is FieldType.CHOICE:
            assert all(o.label.zh_cn and o.label.en for o in f.options)


def test_the_child_growth_and_obstetrics_forms_ask_what_the_specialists_need() -> None:
    forms = shipped_forms()
    growth = {f.name for f in forms.for_specialty(Specialty.CHILD_GROWTH).fields}
    assert {
        "height_cm",
        "weight_kg",
        "bone_age_years",
        "father_height_cm",
        "mother_height_cm",
        "birth_date",
    } <= growth
    obstetrics = forms.for_specialty(Specialty.OBSTETRICS)
    assert {
        "gestational_week",
        "fundal_height_cm",
        "gravida",
        "para",
        "last_menstrual_period",
        "bp_systolic",
        "bp_diastolic",
        "fetal_heart_rate",
    } <= {f.name for f in obstetrics.fields}
    week = obstetrics.field("gestational_week")
    assert week is not None and (week.min, week.max, week.integer) == (4, 42, True)


def test_a_specialty_without_its_own_definition_gets_the_default_form() -> None:
    forms = shipped_forms()
    assert forms.for_specialty(Specialty.CARDIOLOGY).id == DEFAULT_FORM
    assert forms.for_specialty(Specialty.OBSTETRICS).id == "obstetrics"
    assert problems(Specialty.CARDIOLOGY, {}) == []  # nothing on the default form is required
    assert problems(Specialty.CARDIOLOGY, {"gestational_week": 30}) == [
        ("gestational_week", "unknown_field")
    ]


@pytest.mark.parametrize("specialty", list(Specialty))
def test_the_sample_answers_the_tests_book_with_are_valid(specialty: Specialty) -> None:
    assert problems(specialty, VALID_INTAKES.get(specialty.value, {})) == []


def test_a_full_valid_answer_passes() -> None:
    answer = {
        "gestational_week": 34,
        "last_menstrual_period": "2026-03-30",
        "gravida": 2,
        "para": 1,
        "fundal_height_cm": 32.5,
        "bp_systolic": 150,
        "bp_diastolic": 96,
        "fetal_heart_rate": 142,
        "fetal_presentation": "cephalic",
        "proteinuria": False,
    }
    assert problems(Specialty.OBSTETRICS, answer) == []
    check_intake(shipped_forms().for_specialty(Specialty.OBSTETRICS), answer)


def test_optional_fields_may_be_absent_or_null() -> None:
    assert problems(Specialty.OBSTETRICS, {"gestational_week": 20, "para": None}) == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({}, [("gestational_week", "required")]),
        ({"gestational_week": None}, [("gestational_week", "required")]),
        ({"gestational_week": "32"}, [("gestational_week", "not_a_number")]),
        ({"gestational_week": True}, [("gestational_week", "not_a_number")]),
        ({"gestational_week": 32.5}, [("gestational_week", "not_an_integer")]),
        ({"gestational_week": 3}, [("gestational_week", "below_min")]),
        ({"gestational_week": 43}, [("gestational_week", "above_max")]),
        ({"gestational_week": 30, "fundal_height_cm": 30.2}, [("fundal_height_cm", "off_step")]),
        (
            {"gestational_week": 30, "fetal_presentation": "sideways"},
            [("fetal_presentation", "not_an_option")],
        ),
        (
            {"gestational_week": 30, "last_menstrual_period": "2026-02-30"},
            [("last_menstrual_period", "not_a_date")],
        ),
        (
            {"gestational_week": 30, "last_menstrual_period": "30/03/2026"},
            [("last_menstrual_period", "not_a_date")],
        ),
        ({"gestational_week": 30, "proteinuria": "yes"}, [("proteinuria", "not_a_boolean")]),
        (
            {"gestational_week": 30, "blood_pressure": "148/95"},
            [("blood_pressure", "unknown_field")],
        ),
        ("gestational_week=30", [("(intake)", "not_an_object")]),
    ],
)
def test_each_kind_of_bad_answer_names_its_field_and_reason(
    answer: Any, expected: list[tuple[str, str]]
) -> None:
    assert problems(Specialty.OBSTETRICS, answer) == expected


def test_text_is_bounded_and_required_text_must_not_be_blank() -> None:
    assert problems(Specialty.PAEDIATRICS, {"weight_kg": 10, "allergies": "x" * 501}) == [
        ("allergies", "too_long")
    ]
    assert problems(Specialty.PAEDIATRICS, {"weight_kg": 10, "allergies": 3}) == [
        ("allergies", "not_text")
    ]
    assert problems(Specialty.PAEDIATRICS, {"weight_kg": 10, "allergies": ""}) == []
    assert problems(Specialty.ULTRASOUND, {"exam_type": ""}) == [("exam_type", "required")]


def test_every_problem_is_listed_not_just_the_first() -> None:
    answer = {"height_cm": 500, "weight_kg": "heavy", "shoe_size": 30}
    with pytest.raises(InvalidIntake) as caught:
        shipped_forms().check(Specialty.CHILD_GROWTH, answer)
    found = [(p.field, p.reason) for p in caught.value.problems]
    assert found == [
        ("birth_date", "required"),
        ("height_cm", "above_max"),
        ("weight_kg", "not_a_number"),
        ("shoe_size", "unknown_field"),
    ]
    assert caught.value.code == "invalid_intake"
    assert "birth_date: is required (and 3 more)" in caught.value.message


# ---- bad definitions fail loudly -----------------------------------------------------------

_DEFAULT = json.dumps(
    {"format": 1, "form": "default", "title": {"zh-CN": "资料", "en": "Intake"}, "fields": []}
)
_GOOD: dict[str, Any] = {
    "format": 1,
    "form": "ophthalmology",
    "title": {"zh-CN": "眼科", "en": "Eyes"},
    "fields": [
        {
            "name": "acuity",
            "type": "number",
            "min": 0,
            "max": 2,
            "step": 0.1,
            "label": {"zh-CN": "视力", "en": "Acuity"},
        }
    ],
}


def _load(definition: Any, filename: str = "ophthalmology.json") -> None:
    load_forms([("default.json", _DEFAULT), (filename, json.dumps(definition))])


def _broken(change: Any) -> Any:
    definition = copy.deepcopy(_GOOD)
    change(definition)
    return definition


def test_the_good_definition_used_below_loads() -> None:
    _load(_GOOD)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.update(format=2), "format"),
        (lambda d: d.update(form="astrology"), "form"),
        (lambda d: d["fields"][0].update(type="slider"), "fields[0].type"),
        (lambda d: d["fields"][0].update(colour="red"), "unknown key(s) colour"),
        (lambda d: d["fields"][0].pop("max"), "missing key(s) max"),
        (lambda d: d["fields"][0].update(min=5), "min must be below max"),
        (lambda d: d["fields"][0].update(step=0), "step: must be positive"),
        (lambda d: d["fields"][0].update(name="Acuity!"), "name: must match"),
        (lambda d: d["fields"][0]["label"].pop("en"), "missing key(s) en"),
        (lambda d: d["fields"][0].update(required="yes"), "required: must be true or false"),
        (lambda d: d["fields"][0].update(max_length=10), "unknown key(s) max_length"),
        (lambda d: d["fields"].append(copy.deepcopy(d["fields"][0])), "duplicate field name"),
        (
            lambda d: d["fields"].append(
                {
                    "name": "eye",
                    "type": "choice",
                    "label": {"zh-CN": "眼", "en": "Eye"},
                    "options": [{"value": "left", "label": {"zh-CN": "左", "en": "Left"}}] * 2,
                }
            ),
            "option values must be unique",
        ),
        (
            lambda d: d["fields"].append(
                {
                    "name": "note",
                    "type": "text",
                    "label": {"zh-CN": "注", "en": "Note"},
                    "max_length": 100_000,
                }
            ),
            "max_length: must be 1 to 4000",
        ),
    ],
)
def test_a_bad_definition_fails_naming_the_file_and_key(change: Any, complaint: str) -> None:
    with pytest.raises(IntakeFormError) as caught:
        _load(_broken(change))
    assert "ophthalmology.json" in str(caught.value)
    assert complaint in str(caught.value)


def test_a_definition_must_be_named_for_its_form_and_a_default_must_exist() -> None:
    with pytest.raises(IntakeFormError, match="named for 'cardiology'"):
        _load(_GOOD, filename="cardiology.json")
    with pytest.raises(IntakeFormError, match="no 'default' intake form"):
        load_forms([("ophthalmology.json", json.dumps(_GOOD))])
    with pytest.raises(IntakeFormError, match="not JSON"):
        load_forms([("default.json", "{")])
