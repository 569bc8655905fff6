"""Intake forms: what an exam-room doctor fills in when booking, per specialty, defined as data.

Each specialty that needs its own form has a JSON definition in `rooms/consults/intake_forms/`
(`<specialty>.json`); every other specialty uses `default.json`. The format is described in
`docs/intake-forms.md`. Definitions are checked when they are loaded (at start-up, and by the
unit tests), so a bad file stops the server with its path and the offending key instead of
surfacing as odd validation later.

`check_intake` validates a booking's answer against its specialty's form and lists every problem
(field + reason), raising `InvalidIntake`; nothing here knows about HTTP.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from rooms.consults.errors import DomainError
from rooms.consults.people import Specialty

FORMAT_VERSION = 1
"""The `format` every definition file declares; bumped if the file format changes."""

DEFAULT_FORM = "default"
"""The definition used by every specialty without a file of its own."""

LANGUAGES = ("zh-CN", "en")
"""Every label is given in each of these languages."""

MAX_TEXT_LENGTH = 4000
"""The largest `max_length` a text field may declare."""

MAX_FIELDS = 60
"""The most fields one form may have."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FieldType(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    CHOICE = "choice"
    DATE = "date"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Label:
    """One text in every UI language."""

    zh_cn: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh-CN": self.zh_cn, "en": self.en}


@dataclass(frozen=True, slots=True)
class ChoiceOption:
    value: str
    label: Label


@dataclass(frozen=True, slots=True)
class IntakeField:
    name: str
    type: FieldType
    label: Label
    required: bool = False
    help: Label | None = None
    # number
    unit: Label | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    integer: bool = False
    # text
    max_length: int | None = None
    multiline: bool = False
    # choice
    options: tuple[ChoiceOption, ...] = ()


@dataclass(frozen=True, slots=True)
class IntakeForm:
    id: str
    """`default` or the specialty the definition is for."""
    title: Label
    fields: tuple[IntakeField, ...]

    def field(self, name: str) -> IntakeField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class IntakeProblem:
    field: str
    """The field's name (or `(intake)` for the answer as a whole)."""
    reason: str
    """A stable code: `unknown_field`, `required`, `not_a_number`, `not_an_integer`,
    `below_min`, `above_max`, `off_step`, `not_text`, `too_long`, `not_an_option`,
    `not_a_date`, `not_a_boolean`, `not_an_object`."""
    message: str


class InvalidIntake(DomainError):
    """A booking's intake answer does not fit its specialty's form; every problem is listed."""

    code = "invalid_intake"

    def __init__(self, problems: Iterable[IntakeProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else None
        summary = f"{first.field}: {first.message}" if first else "invalid"
        more = len(self.problems) - 1
        super().__init__(
            f"invalid intake form: {summary}" + (f" (and {more} more)" if more > 0 else "")
        )


class IntakeFormError(ValueError):
    """A definition file that does not follow the format (a deployment bug, not a user error)."""


# ---- loading --------------------------------------------------------------------------------


class _Reader:
    """Pulls typed values out of one definition, naming the file and key on every failure."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> IntakeFormError:
        return IntakeFormError(f"{self.source}: {where}: {problem}")

    def obj(self, value: Any, where: str, allowed: Iterable[str], needed: Iterable[str]) -> None:
        if not isinstance(value, dict):
            raise self.fail(where, "must be an object")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(unknown)}")
        missing = [k for k in needed if k not in value]
        if missing:
            raise self.fail(where, f"missing key(s) {', '.join(missing)}")

    def label(self, value: Any, where: str) -> Label:
        self.obj(value, where, LANGUAGES, LANGUAGES)
        for lang in LANGUAGES:
            text = value[lang]
            if not isinstance(text, str) or not text.strip() or len(text) > 200:
                raise self.fail(f"{where}.{lang}", "must be a non-empty string of ≤ 200 characters")
        return Label(zh_cn=value["zh-CN"], en=value["en"])

    def number(self, value: Any, where: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(where, "must be a finite number")
        return value

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, "must be true or false")
        return value


_COMMON_KEYS = ("name", "type", "label", "required", "help")
_TYPE_KEYS: dict[FieldType, tuple[str, ...]] = {
    FieldType.NUMBER: ("unit", "min", "max", "step", "integer"),
    FieldType.TEXT: ("max_length", "multiline"),
    FieldType.CHOICE: ("options",),
    FieldType.DATE: (),
    FieldType.BOOLEAN: (),
}
_TYPE_NEEDS: dict[FieldType, tuple[str, ...]] = {
    FieldType.NUMBER: ("min", "max"),
    FieldType.TEXT: ("max_length",),
    FieldType.CHOICE: ("options",),
    FieldType.DATE: (),
    FieldType.BOOLEAN: (),
}


def _field(read: _Reader, raw: Any, where: str) -> IntakeField:
    if not isinstance(raw, dict):
        raise read.fail(where, "must be an object")
    try:
        kind = FieldType(str(raw.get("type")))
    except ValueError:
        raise read.fail(
            f"{where}.type", f"must be one of {', '.join(t.value for t in FieldType)}"
        ) from None
    read.obj(raw, where, _COMMON_KEYS + _TYPE_KEYS[kind], ("name", "label", *_TYPE_NEEDS[kind]))
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise read.fail(f"{where}.name", "must match [a-z][a-z0-9_]{0,39}")
    where = f"{where} ({name})"
    common: dict[str, Any] = {
        "name": name,
        "type": kind,
        "label": read.label(raw["label"], f"{where}.label"),
        "required": read.flag(raw.get("required", False), f"{where}.required"),
        "help": read.label(raw["help"], f"{where}.help") if "help" in raw else None,
    }
    if kind is FieldType.NUMBER:
        low = read.number(raw["min"], f"{where}.min")
        high = read.number(raw["max"], f"{where}.max")
        if low >= high:
            raise read.fail(where, "min must be below max")
        integer = read.flag(raw.get("integer", False), f"{where}.integer")
        step = read.number(raw["step"], f"{where}.step") if "step" in raw else None
        if step is not None and step <= 0:
            raise read.fail(f"{where}.step", "must be positive")
        if integer and (not float(low).is_integer() or not float(high).is_integer()):
            raise read.fail(where, "an integer field needs integer min and max")
        if integer and step is not None and not float(step).is_integer():
            raise read.fail(f"{where}.step", "an integer field needs an integer step")
        unit = read.label(raw["unit"], f"{where}.unit") if "unit" in raw else None
        return IntakeField(**common, unit=unit, min=low, max=high, step=step, integer=integer)
    if kind is FieldType.TEXT:
        length = raw["max_length"]
        if isinstance(length, bool) or not isinstance(length, int):
            raise read.fail(f"{where}.max_length", "must be an integer")
        if not 1 <= length <= MAX_TEXT_LENGTH:
            raise read.fail(f"{where}.max_length", f"must be 1 to {MAX_TEXT_LENGTH}")
        multiline = read.flag(raw.get("multiline", False), f"{where}.multiline")
        return IntakeField(**common, max_length=length, multiline=multiline)
    if kind is FieldType.CHOICE:
        raw_options = raw["options"]
        if not isinstance(raw_options, list) or not raw_options:
            raise read.fail(f"{where}.options", "must be a non-empty list")
        options = []
        for i, option in enumerate(raw_options):
            at = f"{where}.options[{i}]"
            read.obj(option, at, ("value", "label"), ("value", "label"))
            value = option["value"]
            if not isinstance(value, str) or not _NAME.match(value):
                raise read.fail(f"{at}.value", "must match [a-z][a-z0-9_]{0,39}")
            options.append(ChoiceOption(value=value, label=read.label(option["label"], at)))
        values = [o.value for o in options]
        if len(set(values)) != len(values):
            raise read.fail(f"{where}.options", "option values must be unique")
        return IntakeField(**common, options=tuple(options))
    return IntakeField(**common)


def parse_form(raw: Any, source: str, expected_id: str | None = None) -> IntakeForm:
    """One definition (already parsed from JSON); `IntakeFormError` naming what is wrong."""
    read = _Reader(source)
    read.obj(
        raw, "(file)", ("format", "form", "title", "fields"), ("format", "form", "title", "fields")
    )
    if raw["format"] != FORMAT_VERSION or isinstance(raw["format"], bool):
        raise read.fail("format", f"must be {FORMAT_VERSION}")
    form_id = raw["form"]
    valid_ids = {DEFAULT_FORM, *(s.value for s in Specialty)}
    if form_id not in valid_ids:
        raise read.fail("form", f"must be {DEFAULT_FORM!r} or a specialty")
    if expected_id is not None and form_id != expected_id:
        raise read.fail("form", f"is {form_id!r} but the file is named for {expected_id!r}")
    raw_fields = raw["fields"]
    if not isinstance(raw_fields, list) or len(raw_fields) > MAX_FIELDS:
        raise read.fail("fields", f"must be a list of at most {MAX_FIELDS} fields")
    fields = tuple(_field(read, f, f"fields[{i}]") for i, f in enumerate(raw_fields))
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise read.fail("fields", f"duplicate field name(s) {', '.join(duplicates)}")
    return IntakeForm(id=form_id, title=read.label(raw["title"], "title"), fields=fields)


@dataclass(frozen=True, slots=True)
class IntakeForms:
    """Every loaded definition; each specialty's form is its own or the default one."""

    forms: Mapping[str, IntakeForm]

    def __post_init__(self) -> None:
        if DEFAULT_FORM not in self.forms:
            raise IntakeFormError(f"there is no {DEFAULT_FORM!r} intake form")

    def for_specialty(self, specialty: Specialty) -> IntakeForm:
        return self.forms.get(specialty.value) or self.forms[DEFAULT_FORM]

    def check(self, specialty: Specialty, answer: Any) -> None:
        check_intake(self.for_specialty(specialty), answer)


def load_forms(files: Iterable[tuple[str, str]]) -> IntakeForms:
    """Definitions from `(file name, JSON text)` pairs; the file name (minus `.json`) is the id."""
    forms: dict[str, IntakeForm] = {}
    for filename, text in files:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntakeFormError(f"{filename}: not JSON: {exc}") from None
        form = parse_form(raw, filename, expected_id=filename.removesuffix(".json"))
        forms[form.id] = form
    return IntakeForms(forms)


@cache
def shipped_forms() -> IntakeForms:
    """The definitions in `rooms/consults/intake_forms/` (read once per process)."""
    folder = resources.files("rooms.consults") / "intake_forms"
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )
    return load_forms(files)


# ---- validating an answer -------------------------------------------------------------------


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _number_problem(spec: IntakeField, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "not_a_number", "must be a number"
    unit = f" {spec.unit.en}" if spec.unit else ""
    if spec.integer and not float(value).is_integer():
        return "not_an_integer", "must be a whole number"
    if spec.min is not None and value < spec.min:
        return "below_min", f"must be at least {_fmt(spec.min)}{unit}"
    if spec.max is not None and value > spec.max:
        return "above_max", f"must be at most {_fmt(spec.max)}{unit}"
    if spec.step is not None:
        base = spec.min if spec.min is not None else 0.0
        steps = (value - base) / spec.step
        if abs(steps - round(steps)) > 1e-6:
            return "off_step", f"must be in steps of {_fmt(spec.step)}{unit}"
    return None


def _problem(spec: IntakeField, value: Any) -> tuple[str, str] | None:
    if spec.type is FieldType.NUMBER:
        return _number_problem(spec, value)
    if spec.type is FieldType.TEXT:
        if not isinstance(value, str):
            return "not_text", "must be text"
        if spec.max_length is not None and len(value) > spec.max_length:
            return "too_long", f"must be at most {spec.max_length} characters"
        return None
    if spec.type is FieldType.CHOICE:
        if value not in {o.value for o in spec.options}:
            allowed = ", ".join(o.value for o in spec.options)
            return "not_an_option", f"must be one of {allowed}"
        return None
    if spec.type is FieldType.DATE:
        if not isinstance(value, str) or not _DATE.match(value):
            return "not_a_date", "must be a date as YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "not_a_date", "must be a date as YYYY-MM-DD"
        return None
    if not isinstance(value, bool):
        return "not_a_boolean", "must be true or false"
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def intake_problems(form: IntakeForm, answer: Any) -> list[IntakeProblem]:
    """Every way `answer` does not fit `form`, in the form's field order (unknown fields last).

    An optional field may be absent or null; a required one must be present, non-null and,
    for text, not blank.
    """
    if not isinstance(answer, Mapping):
        return [IntakeProblem("(intake)", "not_an_object", "must be an object")]
    problems: list[IntakeProblem] = []
    for spec in form.fields:
        value = answer.get(spec.name)
        if _blank(value) and (spec.required or value is None):
            if spec.required:
                problems.append(IntakeProblem(spec.name, "required", "is required"))
            continue
        found = _problem(spec, value)
        if found:
            problems.append(IntakeProblem(spec.name, *found))
    known = {f.name for f in form.fields}
    for name in answer:
        if name not in known:
            problems.append(
                IntakeProblem(str(name)[:60], "unknown_field", f"is not on the {form.id} form")
            )
    return problems


def check_intake(form: IntakeForm, answer: Any) -> None:
    """`InvalidIntake` listing every problem, unless `answer` fits `form`."""
    problems = intake_problems(form, answer)
    if problems:
        raise InvalidIntake(problems)
