"""HTTP Range requests on recordings: what players ask for, and what is refused (416)."""

from __future__ import annotations

import pytest

from signaling.http.ranges import ByteRange, UnsatisfiableRange, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ByteRange(0, 999, partial=False)),
        ("bytes=0-", ByteRange(0, 999, partial=True)),
        ("bytes=0-99", ByteRange(0, 99, partial=True)),
        ("bytes=500-", ByteRange(500, 999, partial=True)),
        ("bytes=900-5000", ByteRange(900, 999, partial=True)),
        ("bytes=-100", ByteRange(900, 999, partial=True)),
        ("bytes=-5000", ByteRange(0, 999, partial=True)),
    ],
)
def test_a_single_range_is_served(header: str | None, expected: ByteRange) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=5-2", "bytes=-0", "bytes=-", "bytes=0-1,5-6", "items=0-1", "bytes=a-b"],
)
def test_a_range_outside_the_file_or_of_another_form_is_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 1000)


def test_the_length_counts_both_ends() -> None:
    assert ByteRange(10, 19, partial=True).length == 10


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "9" * 5000,
        "bytes=" + "9" * 5000 + "-",
        "bytes=0-" + "9" * 19,
        "bytes=\u0661-\u0662",
        "bytes=0-\u0669",
    ],
    ids=["huge end", "huge suffix", "huge start", "19 digits", "arabic-indic", "arabic-indic end"],
)
def test_a_position_too_long_or_not_ascii_is_unsatisfiable_not_a_crash(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 1000)
