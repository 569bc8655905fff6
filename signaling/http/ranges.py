"""HTTP byte ranges (RFC 9110 §14): one range per request, as media players ask for them."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")

MAX_POSITION_DIGITS = 18
"""A byte position longer than this (a billion gigabytes) lies outside every file; longer ones
are refused before `int()` (which gives up beyond 4 300 digits) is asked to read them."""


class UnsatisfiableRange(ValueError):
    """The range lies outside the file (416) or is not a single byte range we serve."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    first: int
    last: int
    """Inclusive."""
    partial: bool
    """False when the whole file is sent (no Range header): answer 200, not 206."""

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_range(header: str | None, size: int) -> ByteRange:
    """The bytes to send for a `Range` header (None: the whole file) on a file of `size` bytes."""
    if not header:
        if size == 0:
            raise UnsatisfiableRange("the file is empty")
        return ByteRange(0, size - 1, partial=False)
    match = _RANGE.match(header.strip())
    if match is None:
        raise UnsatisfiableRange(f"only one byte range is served, not {header[:80]!r}")
    start, end = match.groups()
    if len(start) > MAX_POSITION_DIGITS or len(end) > MAX_POSITION_DIGITS:
        raise UnsatisfiableRange(f"a byte position over {MAX_POSITION_DIGITS} digits")
    if not start and not end:
        raise UnsatisfiableRange("a byte range needs a start or an end")
    if not start:  # the last N bytes
        suffix = int(end)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange("an empty suffix range")
        return ByteRange(max(0, size - suffix), size - 1, partial=True)
    first = int(start)
    last = int(end) if end else size - 1
    if first >= size or last < first:
        raise UnsatisfiableRange(f"bytes {first}-{last} lie outside a file of {size} bytes")
    return ByteRange(first, min(last, size - 1), partial=True)
