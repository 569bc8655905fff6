"""Institutions in their administrative hierarchy: province → city → county → township."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class InstitutionLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"


@dataclass(frozen=True, slots=True)
class Institution:
    id: int
    name: str
    level: InstitutionLevel
    parent_id: int | None = None


class InstitutionTree:
    """Answers 'is this institution under that one?' for permission scopes."""

    def __init__(self, institutions: Iterable[Institution]) -> None:
        self._by_id = {inst.id: inst for inst in institutions}

    def lineage(self, institution_id: int) -> list[int]:
        """The institution itself followed by its ancestors up to the root."""
        chain: list[int] = []
        current = self._by_id.get(institution_id)
        while current is not None and current.id not in chain:
            chain.append(current.id)
            current = self._by_id.get(current.parent_id) if current.parent_id else None
        return chain

    def is_within(self, institution_id: int, ancestor_id: int) -> bool:
        """True when `institution_id` is `ancestor_id` or lies somewhere below it."""
        return ancestor_id in self.lineage(institution_id)

    def subtree(self, root_id: int) -> frozenset[int]:
        """`root_id` and every institution below it."""
        return frozenset(i for i in self._by_id if self.is_within(i, root_id))
