"""The statistics use case: which consults a user may count, loaded for a period, computed.

Every consult is checked against the permission table (`VIEW_STATISTICS`), so a supervisor's
figures only ever count consults of their own institution subtree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rooms.calls.ports import QualityStore
from rooms.consults.audit import AuditEntry
from rooms.consults.errors import PermissionDenied
from rooms.consults.institutions import Institution, InstitutionTree
from rooms.consults.people import Specialty, User
from rooms.consults.permissions import Action, grants, is_permitted
from rooms.consults.service import Clock, utc_now
from rooms.reporting.ports import StatisticsStore, TrainingAttendanceStore
from rooms.reporting.statistics import Period, Statistics, compute
from rooms.reporting.training_statistics import TrainingStatistics, compute_trainings


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    period: Period
    institution_id: int | None
    """The filter: this institution and everything below it; None for the user's subtree."""
    specialty: Specialty | None
    statistics: Statistics
    institutions: dict[int, Institution]
    """Every institution a row may name, by id."""
    scope: list[Institution]
    """The institutions the user may filter by (their own and everything below it), by id."""
    consults: int
    """How many consults were counted."""
    trainings: TrainingStatistics
    """The trainings attended by people of the same institutions in the period."""


class StatisticsService:
    def __init__(
        self,
        store: StatisticsStore,
        clock: Clock = utc_now,
        quality: QualityStore | None = None,
        trainings: TrainingAttendanceStore | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.quality = quality
        """Call quality buckets; None counts no quality (the figures say none was reported)."""
        self.trainings = trainings
        """The trainings' attendance; None counts no training (all zeros)."""

    async def report(
        self,
        user: User,
        period: Period,
        institution_id: int | None = None,
        specialty: Specialty | None = None,
    ) -> StatisticsReport:
        """The statistics of the consults `user` may count in `period`, optionally only those
        of one institution (and its subtree) and/or one specialty."""
        if not grants(user, Action.VIEW_STATISTICS):
            raise PermissionDenied(f"a {user.role.value} may not {Action.VIEW_STATISTICS.value}")
        known = await self.store.institutions()
        tree = InstitutionTree(known)
        scope = tree.subtree(user.institution_id)
        mine = [i for i in known if i.id in scope]
        if institution_id is not None:
            if institution_id not in scope:
                # Unknown ids get the same answer, so ids outside one's subtree are not probed.
                raise PermissionDenied(
                    f"institution {institution_id} is not within your institution's subtree"
                )
            scope = tree.subtree(institution_id)
        found = await self.store.consults_for_statistics(
            scope, period.since, period.until, specialty
        )
        counted = [c for c in found if is_permitted(user, Action.VIEW_STATISTICS, c, tree)]
        measured = (
            {
                q.consult_id: q
                for q in await self.quality.quality_of_consults(frozenset(c.id for c in counted))
            }
            if self.quality is not None and counted
            else {}
        )
        attended = (
            await self.trainings.attendance_for_statistics(
                frozenset(scope), period.since, period.until
            )
            if self.trainings is not None
            else []
        )
        return StatisticsReport(
            period=period,
            institution_id=institution_id,
            specialty=specialty,
            statistics=compute(counted, period, measured),
            institutions={i.id: i for i in known},
            scope=mine,
            consults=len(counted),
            trainings=compute_trainings(attended, period, specialty),
        )

    async def exported(
        self, user: User, report: StatisticsReport, rows: int, kind: str = "consults"
    ) -> None:
        """Audit a CSV export (`kind`: consults or trainings): the figures are leaving."""
        detail: dict[str, Any] = {
            "kind": kind,
            "from": str(report.period.first),
            "to": str(report.period.last),
            "timezone": report.period.tz.key,
            "institution": report.institution_id,
            "specialty": report.specialty.value if report.specialty else None,
            "rows": rows,
            "consults": report.consults,
        }
        await self.store.append_audit(
            AuditEntry(
                at=self.clock(), actor_id=user.id, action="statistics.exported", detail=detail
            )
        )
