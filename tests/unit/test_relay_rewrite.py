"""Sequence-number and timestamp mapping of a forwarded leg (media/relay/rewrite.py)."""

from __future__ import annotations

import pytest

from media.relay.rewrite import StreamRewriter

VIDEO = 90000
SOURCE = 0x11111111
OTHER = 0x22222222


def test_the_first_packet_gets_the_legs_own_start_and_later_ones_follow_it() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=1000, ts_start=5_000_000)
    assert rewriter.last is None
    assert rewriter.rewrite(SOURCE, 40000, 123456, now=0.0) == (1000, 5_000_000)
    assert rewriter.rewrite(SOURCE, 40001, 123456, now=0.0) == (1001, 5_000_000)
    assert rewriter.rewrite(SOURCE, 40002, 126456, now=0.033) == (1002, 5_003_000)
    assert rewriter.last == (1002, 5_003_000)


def test_gaps_are_preserved_and_a_late_packet_lands_on_its_own_number() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=10, ts_start=0)
    rewriter.rewrite(SOURCE, 500, 0, now=0.0)
    assert rewriter.rewrite(SOURCE, 503, 3000, now=0.1) == (13, 3000)  # 501, 502 lost
    assert rewriter.rewrite(SOURCE, 501, 0, now=0.2) == (11, 0)  # retransmitted later
    assert rewriter.last == (13, 3000)  # a late packet does not move "newest"


def sequence_numbers(rewriter: StreamRewriter, incoming: list[int]) -> list[int | None]:
    out = [rewriter.rewrite(SOURCE, seq, 0, now=0.0) for seq in incoming]
    return [None if mapped is None else mapped[0] for mapped in out]


def test_sequence_numbers_wrap_around_in_and_out() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=65534, ts_start=0)
    assert sequence_numbers(rewriter, [100, 101, 102, 103]) == [65534, 65535, 0, 1]

    rewriter = StreamRewriter(VIDEO, seq_start=7, ts_start=0)
    assert sequence_numbers(rewriter, [65534, 65535, 0, 1]) == [7, 8, 9, 10]
    assert rewriter.rewrite(SOURCE, 65535, 0, now=0.0) == (8, 0)  # late, across the wrap


def test_timestamps_wrap_around_in_and_out() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=0, ts_start=0xFFFFFF00)
    assert rewriter.rewrite(SOURCE, 1, 1000, now=0.0) == (0, 0xFFFFFF00)
    assert rewriter.rewrite(SOURCE, 2, 4000, now=0.033) == (1, 3000 - 0x100)

    rewriter = StreamRewriter(VIDEO, seq_start=0, ts_start=5000)
    assert rewriter.rewrite(SOURCE, 1, 0xFFFFF000, now=0.0) == (0, 5000)
    assert rewriter.rewrite(SOURCE, 2, 0x00000800, now=0.033) == (1, 5000 + 0x1800)


def test_a_new_source_continues_the_numbering_after_the_time_that_passed() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=100, ts_start=0)
    rewriter.rewrite(SOURCE, 9000, 777, now=10.0)
    rewriter.rewrite(SOURCE, 9001, 3777, now=10.033)
    # The publisher restarted on a new SSRC, half a second later.
    assert rewriter.rewrite(OTHER, 42, 999_999, now=10.533) == (102, 3000 + 45000)
    assert rewriter.rewrite(OTHER, 43, 1_002_999, now=10.566) == (103, 51000)
    # Stragglers of the old source would collide with numbers already used: dropped.
    assert rewriter.rewrite(SOURCE, 9002, 6777, now=10.6) is None
    # So are packets of the new source older than its first one on this leg.
    assert rewriter.rewrite(OTHER, 41, 996_999, now=10.6) is None


def test_switching_source_explicitly_rebases_even_on_the_same_ssrc() -> None:
    rewriter = StreamRewriter(48000, seq_start=0, ts_start=0)
    rewriter.rewrite(SOURCE, 10, 960, now=0.0)
    rewriter.switch_source()  # the leg now carries another track
    assert rewriter.rewrite(OTHER, 500, 123, now=0.02) == (1, 960)
    assert rewriter.rewrite(SOURCE, 11, 1920, now=0.04) is None  # the old track: retired


def test_the_timestamp_always_moves_forward_on_a_source_change() -> None:
    rewriter = StreamRewriter(VIDEO, seq_start=0, ts_start=0)
    rewriter.rewrite(SOURCE, 1, 0, now=5.0)
    assert rewriter.rewrite(OTHER, 1, 0, now=5.0) == (1, 1)


def test_a_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StreamRewriter(0, seq_start=0, ts_start=0)
