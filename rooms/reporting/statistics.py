"""Consult statistics per (month, requesting institution, specialty): what happened to the
consults requested in each month, how long they waited, how long they lasted, how they were
carried. The definitions below are the ones docs/statistics.md documents; keep them together.

Cohorts, not events: a consult belongs to the month (in the report time zone) in which it was
*requested*, and every figure of that row describes the same consults. So a consult requested on
31 January and held on 2 February counts as requested *and* held in January, and the outcome
counts of a row always add up to its `requested`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rooms.calls.quality import ConsultQuality
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import DomainError
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty

DEFAULT_REPORT_TIMEZONE = "Asia/Shanghai"
"""The zone months are cut in unless REPORT_TIMEZONE says otherwise (China has one zone)."""


class InvalidPeriod(DomainError):
    """A statistics period that is malformed, reversed or longer than allowed."""

    code = "invalid_period"


def report_timezone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; `ValueError` naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name, e.g. Asia/Shanghai)"
        ) from None


_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")

FIRST_YEAR, LAST_YEAR = 1970, 2999
"""The years a statistics month may lie in: far enough from `datetime`'s year 9999 that the
month after the last one (the period's end) still exists."""


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    @staticmethod
    def parse(text: str, what: str = "month") -> Month:
        """`YYYY-MM` as a Month; `InvalidPeriod` naming `what` otherwise."""
        found = _MONTH.match(text)
        if (
            not found
            or not 1 <= int(found.group(2)) <= 12
            or not FIRST_YEAR <= int(found.group(1)) <= LAST_YEAR
        ):
            raise InvalidPeriod(
                f"{what} must be a month written YYYY-MM in {FIRST_YEAR}…{LAST_YEAR}, "
                f"not {text[:40]!r}"
            )
        return Month(int(found.group(1)), int(found.group(2)))

    @staticmethod
    def of(at: datetime, tz: ZoneInfo) -> Month:
        """The month in which the instant `at` falls, in zone `tz`."""
        local = at.astimezone(tz)
        return Month(local.year, local.month)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def start(self, tz: ZoneInfo) -> datetime:
        """Midnight of the month's first day in `tz` (an aware datetime)."""
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Period:
    """Whole months `first`..`last`, both included, cut in zone `tz`."""

    first: Month
    last: Month
    tz: ZoneInfo

    @staticmethod
    def parse(first: str, last: str, tz: ZoneInfo, max_months: int) -> Period:
        """The period `first`..`last` (YYYY-MM each); `InvalidPeriod` when malformed, reversed
        or longer than `max_months` months."""
        period = Period(Month.parse(first, "from"), Month.parse(last, "to"), tz)
        if period.first > period.last:
            raise InvalidPeriod(f"from ({period.first}) is after to ({period.last})")
        if len(period.months) > max_months:
            raise InvalidPeriod(
                f"{period.first}..{period.last} spans {len(period.months)} months; "
                f"at most {max_months} months at once"
            )
        return period

    @property
    def months(self) -> list[Month]:
        out = [self.first]
        while out[-1] < self.last:
            out.append(out[-1].next())
        return out

    @property
    def since(self) -> datetime:
        """The first instant of the period."""
        return self.first.start(self.tz)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return self.last.next().start(self.tz)


@dataclass(frozen=True, slots=True)
class DurationSummary:
    """Seconds between two stamps over the consults that have both: how many, median, p90.

    p90 is the nearest-rank 90th percentile (the smallest value at least 90% of the values do
    not exceed), so it is always one of the measured values. Both are None without values.
    """

    count: int
    median_s: float | None
    p90_s: float | None

    @staticmethod
    def of(seconds: Iterable[float]) -> DurationSummary:
        values = sorted(seconds)
        if not values:
            return DurationSummary(0, None, None)
        rank = math.ceil(0.9 * len(values))
        return DurationSummary(len(values), float(median(values)), values[rank - 1])


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one group of consults (a row, a month's total, the overall total)."""

    requested: int
    held: int
    """Ended after going live (both sides were present at some point)."""
    declined: int
    expired: int
    cancelled: int
    ended_unheld: int
    """Ended while still waiting: somebody opened the room, the other side never came."""
    open: int
    """Not finished yet: requested, accepted, waiting or live."""
    time_to_accept: DurationSummary
    """requested_at → accepted_at, over every consult that was accepted."""
    booking_to_start: DurationSummary
    """requested_at → started_at (went live), over every consult that went live."""
    duration: DurationSummary
    """started_at → ended_at, over held consults."""
    relayed: int
    """Held consults whose media went through the server's relay."""
    peer_to_peer: int
    """Held consults whose media stayed directly between the browsers."""
    relay_share: float | None
    """relayed / held, or None when nothing was held."""
    quality: QualityFigures
    """What the pages measured during these consults (`rooms.calls.quality`)."""


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """Call quality over the consults of a group that reported any (docs/statistics.md)."""

    consults: int
    """Consults with quality reports."""
    hours: float
    """Participant-hours reported (two people for half an hour: 1.0)."""
    median_bitrate_kbps: float | None
    """Median, over those consults, of each consult's time-weighted mean receive bitrate."""
    audio_only_share: float | None
    """Share of the reported time a page was audio-only; None without reported time."""
    freezes_per_hour: float | None
    """Video freezes the pages counted per participant-hour; None without reported time."""

    @staticmethod
    def of(found: Iterable[ConsultQuality]) -> QualityFigures:
        have = [q for q in found if q.seconds > 0]
        seconds = sum(q.seconds for q in have)
        rates = [q.bitrate_in_kbps for q in have if q.bitrate_in_kbps is not None]
        return QualityFigures(
            consults=len(have),
            hours=round(seconds / 3600, 3),
            median_bitrate_kbps=round(float(median(rates)), 1) if rates else None,
            audio_only_share=(
                round(sum(q.audio_only_s for q in have) / seconds, 4) if seconds else None
            ),
            freezes_per_hour=(
                round(sum(q.freezes for q in have) * 3600 / seconds, 2) if seconds else None
            ),
        )


def is_held(consult: Consult) -> bool:
    """Ended after going live: `started_at` is stamped only by START (waiting → live)."""
    return consult.status is ConsultStatus.ENDED and consult.started_at is not None


def was_relayed(consult: Consult) -> bool:
    """Whether the consult's media went through the relay. A consult that moves to the relay
    stays there until it ends (`rooms.calls.media_path`), and every move saves `media_mode` with its
    `consult.media_path` audit entry, so the final media mode tells."""
    return consult.media_mode is MediaMode.RELAY


_OPEN = frozenset(
    {ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED, ConsultStatus.WAITING, ConsultStatus.LIVE}
)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(slots=True)
class _Tally:
    consults: list[Consult] = field(default_factory=list)

    def figures(self, quality: Mapping[str, ConsultQuality]) -> Figures:
        cs = self.consults
        held = [c for c in cs if is_held(c)]
        relayed = sum(1 for c in held if was_relayed(c))

        def spans(of: Iterable[Consult], start: str, end: str) -> DurationSummary:
            found = (_seconds(getattr(c, start), getattr(c, end)) for c in of)
            return DurationSummary.of(s for s in found if s is not None)

        def count(status: ConsultStatus) -> int:
            return sum(1 for c in cs if c.status is status)

        return Figures(
            requested=len(cs),
            held=len(held),
            declined=count(ConsultStatus.DECLINED),
            expired=count(ConsultStatus.EXPIRED),
            cancelled=count(ConsultStatus.CANCELLED),
            ended_unheld=sum(
                1 for c in cs if c.status is ConsultStatus.ENDED and c.started_at is None
            ),
            open=sum(1 for c in cs if c.status in _OPEN),
            time_to_accept=spans(cs, "requested_at", "accepted_at"),
            booking_to_start=spans(cs, "requested_at", "started_at"),
            duration=spans(held, "started_at", "ended_at"),
            relayed=relayed,
            peer_to_peer=len(held) - relayed,
            relay_share=relayed / len(held) if held else None,
            quality=QualityFigures.of(quality[c.id] for c in cs if c.id in quality),
        )


@dataclass(frozen=True, slots=True)
class Row:
    month: Month
    institution_id: int
    specialty: Specialty
    figures: Figures


@dataclass(frozen=True, slots=True)
class Statistics:
    rows: list[Row]
    """One per (month, institution, specialty) with at least one consult, in that order."""
    months: list[tuple[Month, Figures]]
    """Every month of the period, in order, with the total over all its rows (zeros if none)."""
    overall: Figures


def compute(
    consults: Iterable[Consult],
    period: Period,
    quality: Mapping[str, ConsultQuality] | None = None,
) -> Statistics:
    """The statistics of `consults` (those requested outside `period` are ignored), with the
    call quality of those in `quality` (by consult id)."""
    measured = quality or {}
    months = period.months
    wanted = set(months)
    rows: dict[tuple[Month, int, Specialty], _Tally] = {}
    per_month: dict[Month, _Tally] = {m: _Tally() for m in months}
    overall = _Tally()
    for consult in consults:
        month = Month.of(consult.requested_at, period.tz)
        if month not in wanted:
            continue
        key = (month, consult.requesting_institution_id, consult.specialty)
        rows.setdefault(key, _Tally()).consults.append(consult)
        per_month[month].consults.append(consult)
        overall.consults.append(consult)
    return Statistics(
        rows=[
            Row(
                month,
                institution_id,
                specialty,
                rows[(month, institution_id, specialty)].figures(measured),
            )
            for month, institution_id, specialty in sorted(rows, key=lambda k: (k[0], k[1], k[2]))
        ],
        months=[(m, per_month[m].figures(measured)) for m in months],
        overall=overall.figures(measured),
    )
