"""Consult statistics (supervisors, admins): JSON for the charts, CSV for spreadsheets.

The figures and their definitions are in `rooms.reporting.statistics` and docs/statistics.md.
The CSV is written for Excel on Chinese Windows: UTF-8 with a byte-order mark (without it Excel
reads the institution names as GBK), one row per (month, institution, specialty), institution
names not ids, and text cells that a spreadsheet would run as a formula defused.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from rooms.consults.people import Specialty, User
from rooms.reporting.statistics import DurationSummary, Figures, Period, QualityFigures
from rooms.reporting.statistics_service import StatisticsReport, StatisticsService
from rooms.reporting.training_statistics import TrainingFigures
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, json_response
from signaling.schemas import MAX_ID, InstitutionRef, Strict

# ---- wire schemas --------------------------------------------------------------------------

MonthText = Annotated[str, StringConstraints(max_length=7)]


class StatisticsQuery(Strict):
    """`GET /api/statistics[.csv]` query: months as YYYY-MM (checked by
    rooms.reporting.statistics)."""

    from_: MonthText = Field(alias="from")
    to: MonthText
    institution: int | None = Field(default=None, ge=1, le=MAX_ID)
    specialty: Specialty | None = None


class DurationOut(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class QualityFiguresOut(BaseModel):
    consults: int
    hours: float
    median_bitrate_kbps: float | None
    audio_only_share: float | None
    freezes_per_hour: float | None


class FiguresOut(BaseModel):
    requested: int
    held: int
    declined: int
    expired: int
    cancelled: int
    ended_unheld: int
    open: int
    time_to_accept: DurationOut
    booking_to_start: DurationOut
    duration: DurationOut
    relayed: int
    peer_to_peer: int
    relay_share: float | None
    quality: QualityFiguresOut


class StatisticsRowOut(FiguresOut):
    month: str
    institution_id: int
    institution_name: str
    specialty: Specialty


class StatisticsMonthOut(FiguresOut):
    month: str


class TrainingFiguresOut(BaseModel):
    trainings: int
    """Distinct held trainings attended."""
    trainees: int
    """Distinct people who attended."""
    attendance_hours: float


class TrainingRowOut(TrainingFiguresOut):
    month: str
    institution_id: int
    institution_name: str


class TrainingMonthOut(TrainingFiguresOut):
    month: str


class TrainingStatisticsOut(BaseModel):
    rows: list[TrainingRowOut]
    """One per (month, attending institution) with any attendance."""
    months: list[TrainingMonthOut]
    overall: TrainingFiguresOut


class StatisticsOut(BaseModel):
    from_month: str
    to_month: str
    timezone: str
    institution_id: int | None
    specialty: Specialty | None
    rows: list[StatisticsRowOut]
    months: list[StatisticsMonthOut]
    overall: FiguresOut
    institutions: list[InstitutionRef]
    """The institutions the caller may filter by (their own and everything below it)."""
    trainings: TrainingStatisticsOut
    """Trainings attended by people of the same institutions (docs/statistics.md)."""


CSV_BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula (or becomes one) in Excel and LibreOffice."""

CSV_COLUMNS = (
    "month",
    "institution",
    "specialty",
    "requested",
    "held",
    "declined",
    "expired",
    "cancelled",
    "ended_unheld",
    "open",
    "time_to_accept_median_min",
    "time_to_accept_p90_min",
    "booking_to_start_median_min",
    "booking_to_start_p90_min",
    "duration_median_min",
    "duration_p90_min",
    "relayed",
    "peer_to_peer",
    "relay_share_percent",
    "quality_consults",
    "quality_hours",
    "median_bitrate_kbps",
    "audio_only_percent",
    "freezes_per_hour",
)
"""The CSV header, in order (documented in docs/statistics.md)."""


def parse_query(request: web.Request) -> StatisticsQuery:
    """The query string as `StatisticsQuery`; `invalid_payload` naming the first problem."""
    params: dict[str, str] = {}
    for key, value in request.query.items():
        if key in params:
            raise ApiError(errors.INVALID_PAYLOAD, f"query parameter {key!r} given twice", 422)
        params[key] = value
    try:
        return StatisticsQuery.model_validate(params)
    except ValidationError as exc:
        raise errors.from_validation(exc, "query") from None


def _duration(d: DurationSummary) -> DurationOut:
    return DurationOut(count=d.count, median_s=d.median_s, p90_s=d.p90_s)


def quality_out(q: QualityFigures) -> QualityFiguresOut:
    return QualityFiguresOut(
        consults=q.consults,
        hours=q.hours,
        median_bitrate_kbps=q.median_bitrate_kbps,
        audio_only_share=q.audio_only_share,
        freezes_per_hour=q.freezes_per_hour,
    )


def figures_out(f: Figures) -> FiguresOut:
    return FiguresOut(
        requested=f.requested,
        held=f.held,
        declined=f.declined,
        expired=f.expired,
        cancelled=f.cancelled,
        ended_unheld=f.ended_unheld,
        open=f.open,
        time_to_accept=_duration(f.time_to_accept),
        booking_to_start=_duration(f.booking_to_start),
        duration=_duration(f.duration),
        relayed=f.relayed,
        peer_to_peer=f.peer_to_peer,
        relay_share=f.relay_share,
        quality=quality_out(f.quality),
    )


def training_figures_out(f: TrainingFigures) -> TrainingFiguresOut:
    return TrainingFiguresOut(
        trainings=f.trainings, trainees=f.trainees, attendance_hours=f.attendance_hours
    )


def trainings_out(report: StatisticsReport) -> TrainingStatisticsOut:
    stats = report.trainings
    return TrainingStatisticsOut(
        rows=[
            TrainingRowOut(
                month=str(row.month),
                institution_id=row.institution_id,
                institution_name=institution_name(report, row.institution_id),
                **training_figures_out(row.figures).model_dump(),
            )
            for row in stats.rows
        ],
        months=[
            TrainingMonthOut(month=str(month), **training_figures_out(f).model_dump())
            for month, f in stats.months
        ],
        overall=training_figures_out(stats.overall),
    )


def institution_name(report: StatisticsReport, institution_id: int) -> str:
    found = report.institutions.get(institution_id)
    return found.name if found else f"#{institution_id}"


def statistics_out(report: StatisticsReport) -> StatisticsOut:
    stats = report.statistics
    return StatisticsOut(
        from_month=str(report.period.first),
        to_month=str(report.period.last),
        timezone=report.period.tz.key,
        institution_id=report.institution_id,
        specialty=report.specialty,
        rows=[
            StatisticsRowOut(
                month=str(row.month),
                institution_id=row.institution_id,
                institution_name=institution_name(report, row.institution_id),
                specialty=row.specialty,
                **figures_out(row.figures).model_dump(),
            )
            for row in stats.rows
        ],
        months=[
            StatisticsMonthOut(month=str(month), **figures_out(figures).model_dump())
            for month, figures in stats.months
        ],
        overall=figures_out(stats.overall),
        institutions=[InstitutionRef(id=i.id, name=i.name) for i in report.scope],
        trainings=trainings_out(report),
    )


def safe_cell(text: str) -> str:
    """`text` as a spreadsheet shows it, never runs it: formula starts get a leading `'`."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def statistics_csv(report: StatisticsReport) -> str:
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.statistics.rows:
        f = row.figures
        q = f.quality
        writer.writerow(
            [
                str(row.month),
                safe_cell(institution_name(report, row.institution_id)),
                safe_cell(row.specialty.value),
                f.requested,
                f.held,
                f.declined,
                f.expired,
                f.cancelled,
                f.ended_unheld,
                f.open,
                _minutes(f.time_to_accept.median_s),
                _minutes(f.time_to_accept.p90_s),
                _minutes(f.booking_to_start.median_s),
                _minutes(f.booking_to_start.p90_s),
                _minutes(f.duration.median_s),
                _minutes(f.duration.p90_s),
                f.relayed,
                f.peer_to_peer,
                "" if f.relay_share is None else f"{100 * f.relay_share:.1f}",
                q.consults,
                f"{q.hours:.2f}",
                "" if q.median_bitrate_kbps is None else f"{q.median_bitrate_kbps:.0f}",
                "" if q.audio_only_share is None else f"{100 * q.audio_only_share:.1f}",
                "" if q.freezes_per_hour is None else f"{q.freezes_per_hour:.1f}",
            ]
        )
    return out.getvalue()


TRAINING_CSV_COLUMNS = ("month", "institution", "trainings", "trainees", "attendance_hours")
"""The trainings CSV header, in order (documented in docs/statistics.md)."""


def trainings_csv(report: StatisticsReport) -> str:
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRAINING_CSV_COLUMNS)
    for row in report.trainings.rows:
        f = row.figures
        writer.writerow(
            [
                str(row.month),
                safe_cell(institution_name(report, row.institution_id)),
                f.trainings,
                f.trainees,
                f"{f.attendance_hours:.2f}",
            ]
        )
    return out.getvalue()


STATISTICS_ERRORS = ("forbidden", "invalid_period", errors.INVALID_PAYLOAD)


# ---- routes --------------------------------------------------------------------------------


def routes(
    edge: Edge, *, service: StatisticsService, timezone: ZoneInfo, max_months: int
) -> Feature:
    """`timezone`: the zone months are cut in (`REPORT_TIMEZONE`); `max_months`: the longest
    period one request may ask for."""
    feature = Feature("statistics")

    async def load_report(request: web.Request) -> tuple[User, StatisticsReport]:
        user = await edge.caller(request)
        query = parse_query(request)
        period = Period.parse(query.from_, query.to, timezone, max_months)
        report = await service.report(user, period, query.institution, query.specialty)
        return user, report

    @feature.route(
        "GET",
        "/api/statistics",
        "Consult statistics per month, institution and specialty (`?from=YYYY-MM&to=YYYY-MM"
        "[&institution=][&specialty=]`; supervisors, admins)",
        response=StatisticsOut,
        errors=STATISTICS_ERRORS,
        query=StatisticsQuery,
    )
    async def get_statistics(request: web.Request) -> web.Response:
        _user, report = await load_report(request)
        return json_response(statistics_out(report))

    @feature.route(
        "GET",
        "/api/statistics.csv",
        "The same statistics as CSV (UTF-8 with BOM; audited as statistics.exported)",
        writes=True,  # the audit entry
        errors=STATISTICS_ERRORS,
        other_response=(("text/csv", "string"),),
        query=StatisticsQuery,
    )
    async def get_statistics_csv(request: web.Request) -> web.Response:
        user, report = await load_report(request)
        body = statistics_csv(report)
        await service.exported(user, report, len(report.statistics.rows))
        name = f"teleconsult-statistics-{report.period.first}_{report.period.last}.csv"
        return csv_response(body, name)

    @feature.route(
        "GET",
        "/api/statistics/trainings.csv",
        "The trainings per month and attending institution as CSV (same parameters; UTF-8 "
        "with BOM; audited as statistics.exported, kind trainings)",
        writes=True,  # the audit entry
        errors=STATISTICS_ERRORS,
        other_response=(("text/csv", "string"),),
        query=StatisticsQuery,
    )
    async def get_training_statistics_csv(request: web.Request) -> web.Response:
        user, report = await load_report(request)
        body = trainings_csv(report)
        await service.exported(user, report, len(report.trainings.rows), kind="trainings")
        name = f"teleconsult-trainings-{report.period.first}_{report.period.last}.csv"
        return csv_response(body, name)

    def csv_response(body: str, name: str) -> web.Response:
        return web.Response(
            text=body,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Cache-Control": "private, no-store",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    return feature
