"""The people who use teleconsult: their roles, specialties and institution."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    EXAM_ROOM_DOCTOR = "exam_room_doctor"
    """A county or township doctor who books consults and sits with the patient."""
    SPECIALIST = "specialist"
    """A provincial specialist who accepts consults in their specialty."""
    SUPERVISOR = "supervisor"
    """Reviews consults of their institution and everything below it."""
    ADMIN = "admin"
    """Keeps users and institutions."""
    TRAINEE = "trainee"
    """Staff who only attend trainings (`rooms.training`): no consult is open to them."""


class Specialty(StrEnum):
    OBSTETRICS = "obstetrics"
    PAEDIATRICS = "paediatrics"
    CHILD_GROWTH = "child_growth"
    REPRODUCTIVE_MEDICINE = "reproductive_medicine"
    ULTRASOUND = "ultrasound"
    OPHTHALMOLOGY = "ophthalmology"
    IMAGING = "imaging"
    CARDIOLOGY = "cardiology"
    NEUROLOGY = "neurology"
    GENERAL_MEDICINE = "general_medicine"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    institution_id: int
    specialty: Specialty | None = None
    active: bool = True
