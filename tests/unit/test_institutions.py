"""The institution hierarchy answers 'is this under that?' for permission scopes."""

from rooms.consults.institutions import InstitutionTree
from tests.unit.fakes import CITY, COUNTY_A, COUNTY_B, INSTITUTIONS, PROVINCE, TOWNSHIP_A

TREE = InstitutionTree(INSTITUTIONS)


def test_a_township_lies_under_its_county_city_and_province() -> None:
    assert TREE.lineage(TOWNSHIP_A) == [TOWNSHIP_A, COUNTY_A, CITY, PROVINCE]


def test_a_county_is_not_under_its_sibling() -> None:
    assert not TREE.is_within(COUNTY_A, COUNTY_B)
    assert not TREE.is_within(TOWNSHIP_A, COUNTY_B)


def test_an_institution_is_within_itself() -> None:
    assert TREE.is_within(COUNTY_B, COUNTY_B)


def test_an_unknown_institution_is_within_nothing() -> None:
    assert not TREE.is_within(999, PROVINCE)
