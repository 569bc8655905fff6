"""Sequence-number and timestamp mapping of one forwarded leg (pure, no I/O).

Each leg (one subscriber receiving one track) has its own SSRC, its own random starting sequence
number and its own random timestamp origin, as if the relay were the sender. Its numbering is
derived from the source's by a constant offset, modulo 2^16 for sequence numbers and 2^32 for
timestamps:

- gaps are preserved: a packet the relay never got leaves a hole the subscriber NACKs, and when
  the publisher's retransmission of it arrives later it lands on exactly that number;
- when the source changes (the leg is given another track, or the publisher restarts its stream
  on a new SSRC) the offsets are recomputed so the leg continues where it stopped: the next
  sequence number, and the timestamp advanced by the wall time elapsed;
- packets of a source the leg has left, or older than the first packet it forwarded of its
  current source, are dropped (they would collide with numbers already used). After an
  explicit `switch_source` (the leg now carries another track) the first packet is taken
  whatever its SSRC: a track re-published on the same m-section keeps the old one's SSRC.
"""

from __future__ import annotations

SEQ_MOD = 0x10000
TS_MOD = 0x100000000
_SEQ_HALF = 0x8000
_RETIRED_MAX = 8


class StreamRewriter:
    """Maps (ssrc, sequence number, timestamp) of the source onto the leg's numbering."""

    __slots__ = (
        "_clock_rate",
        "_first_seq",
        "_last_seq",
        "_last_time",
        "_last_ts",
        "_retired",
        "_seq_offset",
        "_seq_start",
        "_source",
        "_ts_offset",
        "_ts_start",
    )

    def __init__(self, clock_rate: int, seq_start: int, ts_start: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self._clock_rate = clock_rate
        self._seq_start = seq_start % SEQ_MOD
        self._ts_start = ts_start % TS_MOD
        self._source: int | None = None
        self._retired: list[int] = []
        self._first_seq = 0
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = 0
        self._last_ts = 0
        self._last_time: float | None = None

    @property
    def last(self) -> tuple[int, int] | None:
        """The newest (sequence number, timestamp) sent on the leg, or None before the first."""
        if self._last_time is None:
            return None
        return self._last_seq, self._last_ts

    def switch_source(self) -> None:
        """The leg will carry another source: rebase on its next packet (whatever its SSRC, even
        the old one's), then drop the old one's."""
        self._retire()

    def rewrite(self, ssrc: int, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """The leg's (sequence number, timestamp) for this packet, or None to drop it.

        `now` is a monotonic time in seconds (it spaces the timestamps across a source change).
        """
        if ssrc != self._source:
            if ssrc in self._retired:
                if self._source is not None:
                    return None  # a straggler of a source the leg has left
                # The leg's new track is sent on an SSRC it carried before (a publisher that
                # stopped a source and started it again on the same m-section).
                self._retired.remove(ssrc)
            self._retire()
            self._rebase(ssrc, seq, ts, now)
        elif (seq - self._first_seq) % SEQ_MOD >= _SEQ_HALF:
            return None  # older than where this source started on the leg
        out_seq = (seq + self._seq_offset) % SEQ_MOD
        out_ts = (ts + self._ts_offset) % TS_MOD
        if 0 < (out_seq - self._last_seq) % SEQ_MOD < _SEQ_HALF or self._last_time is None:
            self._last_seq = out_seq
            self._last_ts = out_ts
            self._last_time = now
        return out_seq, out_ts

    def _retire(self) -> None:
        if self._source is not None:
            self._retired.append(self._source)
            del self._retired[:-_RETIRED_MAX]
            self._source = None

    def _rebase(self, ssrc: int, seq: int, ts: int, now: float) -> None:
        if self._last_time is None:
            out_seq, out_ts = self._seq_start, self._ts_start
        else:
            elapsed = max(1, int((now - self._last_time) * self._clock_rate))
            out_seq = (self._last_seq + 1) % SEQ_MOD
            out_ts = (self._last_ts + elapsed) % TS_MOD
        self._source = ssrc
        self._first_seq = seq
        self._seq_offset = (out_seq - seq) % SEQ_MOD
        self._ts_offset = (out_ts - ts) % TS_MOD
