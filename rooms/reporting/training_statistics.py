"""Training figures for the statistics: per month and attending institution, the trainings
held, the trainees and their attendance hours (docs/statistics.md, "Trainings").

A training belongs to the month of its planned start in the report zone; it counts once it
was held (live or ended). Attendance is what the players' heartbeats measured
(`rooms.training.attendance`), one record per person per training, under the institution the
person belonged to when they watched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rooms.consults.people import Specialty
from rooms.reporting.statistics import Month, Period


@dataclass(frozen=True, slots=True)
class AttendanceRecord:
    """One person's attendance of one held training."""

    training_id: str
    starts_at: datetime
    specialties: frozenset[Specialty]
    user_id: int
    institution_id: int
    seconds: float


@dataclass(frozen=True, slots=True)
class TrainingFigures:
    trainings: int
    """Distinct trainings that people of the row attended."""
    trainees: int
    """Distinct people who attended (a person at three trainings counts once)."""
    attendance_hours: float
    """Their attended time, in hours (two decimals)."""


@dataclass(frozen=True, slots=True)
class TrainingRow:
    month: Month
    institution_id: int
    figures: TrainingFigures


@dataclass(frozen=True, slots=True)
class TrainingStatistics:
    rows: list[TrainingRow]
    """One per (month, institution) with any attendance, by month then institution id."""
    months: list[tuple[Month, TrainingFigures]]
    """Every month of the period, zeros included."""
    overall: TrainingFigures


def _figures(records: Iterable[AttendanceRecord]) -> TrainingFigures:
    trainings: set[str] = set()
    people: set[int] = set()
    seconds = 0.0
    for r in records:
        trainings.add(r.training_id)
        people.add(r.user_id)
        seconds += r.seconds
    return TrainingFigures(len(trainings), len(people), round(seconds / 3600, 2))


def compute_trainings(
    records: Iterable[AttendanceRecord], period: Period, specialty: Specialty | None = None
) -> TrainingStatistics:
    """The figures of `records` inside `period` (of trainings listing `specialty`, if given)."""
    kept = [
        r
        for r in records
        if period.since <= r.starts_at < period.until
        and (specialty is None or specialty in r.specialties)
    ]
    by_row: dict[tuple[Month, int], list[AttendanceRecord]] = defaultdict(list)
    by_month: dict[Month, list[AttendanceRecord]] = defaultdict(list)
    for r in kept:
        month = Month.of(r.starts_at, period.tz)
        by_row[(month, r.institution_id)].append(r)
        by_month[month].append(r)
    return TrainingStatistics(
        rows=[
            TrainingRow(month, institution_id, _figures(group))
            for (month, institution_id), group in sorted(
                by_row.items(), key=lambda item: (item[0][0], item[0][1])
            )
        ],
        months=[(month, _figures(by_month.get(month, []))) for month in period.months],
        overall=_figures(kept),
    )
