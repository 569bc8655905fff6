"""REST for intake forms: the per-specialty forms a booking's `intake` must fit.

The definitions are data (`rooms/consults/intake_forms/*.json`, see docs/intake-forms.md); these
endpoints hand them to clients so the booking page can render and check the same form the
server validates against.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms.consults.intake import IntakeField, IntakeForm, IntakeForms, Label
from rooms.consults.people import Specialty
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, json_response

# ---- wire schemas --------------------------------------------------------------------------


class LabelOut(BaseModel):
    """One text in every UI language."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    zh_cn: str = Field(alias="zh-CN")
    en: str


class ChoiceOptionOut(BaseModel):
    value: str
    label: LabelOut


class IntakeFieldOut(BaseModel):
    name: str
    type: Literal["number", "text", "choice", "date", "boolean"]
    label: LabelOut
    required: bool
    help: LabelOut | None = None
    unit: LabelOut | None = None
    """number: the unit the value is in."""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    """number: values are `min + k·step` (any value from min to max when null)."""
    integer: bool = False
    max_length: int | None = None
    """text: the most characters."""
    multiline: bool = False
    options: list[ChoiceOptionOut] | None = None
    """choice: the values allowed, each with its label."""


class IntakeFormOut(BaseModel):
    specialty: Specialty
    form: str
    """The definition used: the specialty's own, or `default`."""
    title: LabelOut
    fields: list[IntakeFieldOut]


class IntakeFormListOut(BaseModel):
    forms: list[IntakeFormOut]
    """One per specialty, in the order of the specialty list."""


def _label(label: Label | None) -> LabelOut | None:
    return None if label is None else LabelOut(zh_cn=label.zh_cn, en=label.en)


def _field_out(f: IntakeField) -> IntakeFieldOut:
    return IntakeFieldOut(
        name=f.name,
        type=f.type.value,
        label=LabelOut(zh_cn=f.label.zh_cn, en=f.label.en),
        required=f.required,
        help=_label(f.help),
        unit=_label(f.unit),
        min=f.min,
        max=f.max,
        step=f.step,
        integer=f.integer,
        max_length=f.max_length,
        multiline=f.multiline,
        options=[
            ChoiceOptionOut(value=o.value, label=LabelOut(zh_cn=o.label.zh_cn, en=o.label.en))
            for o in f.options
        ]
        if f.options
        else None,
    )


def form_out(specialty: Specialty, form: IntakeForm) -> IntakeFormOut:
    return IntakeFormOut(
        specialty=specialty,
        form=form.id,
        title=LabelOut(zh_cn=form.title.zh_cn, en=form.title.en),
        fields=[_field_out(f) for f in form.fields],
    )


# ---- routes --------------------------------------------------------------------------------


def routes(edge: Edge, *, forms: IntakeForms) -> Feature:
    feature = Feature("intake")

    @feature.route(
        "GET",
        "/api/intake-forms",
        "The intake form of every specialty",
        response=IntakeFormListOut,
    )
    async def list_intake_forms(request: web.Request) -> web.Response:
        await edge.caller(request)
        return json_response(
            IntakeFormListOut(forms=[form_out(s, forms.for_specialty(s)) for s in Specialty])
        )

    @feature.route(
        "GET",
        "/api/intake-forms/{specialty}",
        "The intake form of one specialty",
        response=IntakeFormOut,
        errors=("not_found",),
    )
    async def get_intake_form(request: web.Request) -> web.Response:
        await edge.caller(request)
        raw = request.match_info["specialty"]
        try:
            specialty = Specialty(raw)
        except ValueError:
            raise ApiError("not_found", f"no specialty {raw[:40]!r}", 404) from None
        return json_response(form_out(specialty, forms.for_specialty(specialty)))

    return feature
