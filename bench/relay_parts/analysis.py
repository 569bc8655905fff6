"""Turning the children's raw records into figures: latency matching, percentiles, deltas.

Latency of a leg: for every frame a subscriber received in the window, the wall time its first
packet arrived minus the wall time the publisher handed that frame's first packet to SRTP
(both `time.time()` on one machine). The relay may shift RTP timestamps by a constant per
leg, so the received frame is found by that constant: every (received, sent) pair whose send
time lies up to `MAX_LATENCY_S` before the arrival votes for the timestamp difference of the
pair, and the difference with most votes (counting those within ±`SLACK` ticks: a transcoding
relay rounds timestamps by a tick now and then) wins. Frame timestamps carry a fixed jitter
pattern (source.pts_jitter), so only the true difference collects a vote from nearly every
frame; a winner with fewer than half the received frames is reported as "no match".
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

MAX_LATENCY_S = 2.0
MASK32 = 0xFFFFFFFF
SLACK = 2


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p90, p99, max, mean and min of durations in seconds, in milliseconds."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    xs = sorted(seconds)
    return {
        "n": len(xs),
        "p50_ms": round(percentile(xs, 50) * 1000, 2),
        "p90_ms": round(percentile(xs, 90) * 1000, 2),
        "p99_ms": round(percentile(xs, 99) * 1000, 2),
        "max_ms": round(xs[-1] * 1000, 2),
        "mean_ms": round(sum(xs) / len(xs) * 1000, 2),
        "min_ms": round(xs[0] * 1000, 2),
    }


def timestamp_offset(
    sent: Sequence[Sequence[float]], received: Sequence[Sequence[float]]
) -> tuple[int | None, float]:
    """The RTP timestamp difference (received - sent, mod 2³²) and the share of frames voting."""
    if not sent or not received:
        return None, 0.0
    by_time = sorted((row[1], int(row[0])) for row in sent)
    times = [t for t, _ in by_time]
    votes: Counter[int] = Counter()
    for ts, arrived in received:
        first = bisect.bisect_left(times, arrived - MAX_LATENCY_S)
        last = bisect.bisect_right(times, arrived + 0.001)
        for _, sent_ts in by_time[first:last]:
            votes[(int(ts) - sent_ts) & MASK32] += 1

    def score(offset: int) -> int:
        return sum(votes.get((offset + k) & MASK32, 0) for k in range(-SLACK, SLACK + 1))

    offset = max(votes, key=score)
    share = min(1.0, score(offset) / len(received))
    return (offset if share >= 0.5 else None), round(share, 3)


def leg_latencies(
    sent: Sequence[Sequence[float]], received: Sequence[Sequence[float]]
) -> tuple[list[float], dict[int, float], dict[str, Any]]:
    """One-way latencies (s) of the received frames, the same by the sender's frame number,
    and how the matching went. `sent` rows are [rtp timestamp, wall time, frame number]."""
    offset, share = timestamp_offset(sent, received)
    info: dict[str, Any] = {
        "frames_received": len(received),
        "timestamp_offset": offset,
        "matched_share": share,
    }
    if offset is None:
        return [], {}, info
    send_time = {int(row[0]): (row[1], int(row[2])) for row in sent}
    values: list[float] = []
    by_frame: dict[int, float] = {}
    tries = sorted(range(-SLACK, SLACK + 1), key=abs)
    for ts, arrived in received:
        for k in tries:
            found = send_time.get((int(ts) - offset + k) & MASK32)
            if found is not None:
                values.append(arrived - found[0])
                by_frame[found[1]] = arrived - found[0]
                break
    info["frames_matched"] = len(values)
    return values, by_frame, info


def paired_differences(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a[n] - b[n] for every frame number n in both."""
    return [a[n] - b[n] for n in a.keys() & b.keys()]


def delta(after: Any, before: Any) -> Any:
    """after - before for numbers, recursively through dicts; other values taken from after."""
    if isinstance(after, bool) or isinstance(before, bool):
        return after
    if isinstance(after, int | float) and isinstance(before, int | float):
        return round(after - before, 6)
    if isinstance(after, dict) and isinstance(before, dict):
        return {k: delta(v, before.get(k, 0)) for k, v in after.items()}
    return after


def pct(part: float, whole: float) -> float | None:
    return None if whole <= 0 else round(100 * part / whole, 3)
