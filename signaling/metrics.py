"""The signaling process's figures for Prometheus: connections, live consults, joins and their
latency, errors by code.

Counted where they happen (a join, an error answered) or read at scrape time (connections and
rooms, through `watch`). A relayed `signal` that succeeds costs nothing here: only refusals
are counted on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from signaling.fanout_outbox import Outbox


class FanOutFigures(Protocol):
    """What `watch_fanout` reads of `signaling.fanout.RedisFanOut`."""

    outbox: Outbox
    full_drops: int
    dropped_total: int
    consults_resent: int


JOIN_SECONDS_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""A join takes ~6 ms of server time when the machine is quiet (README): the buckets resolve
that, and the seconds a busy database can make of it."""


class SignalingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "teleconsult_socket_connections",
            "socket.io connections open on this process (authenticated)",
            registry=self.registry,
        )
        self.live_consults = Gauge(
            "teleconsult_live_consults",
            "consults whose live room is open on this process (somebody is in them)",
            registry=self.registry,
        )
        self.people_in_consults = Gauge(
            "teleconsult_people_in_consults",
            "people present in the live consult rooms of this process",
            registry=self.registry,
        )
        self.joins = Counter(
            "teleconsult_joins",
            "consult joins answered, by outcome (ok, refused)",
            ["outcome"],
            registry=self.registry,
        )
        self.join_seconds = Histogram(
            "teleconsult_join_seconds",
            "server time from a join arriving to its answer (ok or refused)",
            ["outcome"],
            buckets=JOIN_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "teleconsult_errors",
            "errors answered to clients, by code and by channel (socketio acks, http)",
            ["code", "via"],
            registry=self.registry,
        )

        for outcome in ("ok", "refused"):  # shown from the start, at 0
            self.joins.labels(outcome)
            self.join_seconds.labels(outcome)

    def watch(
        self,
        connections: Callable[[], int],
        live_consults: Callable[[], int],
        people: Callable[[], int],
    ) -> None:
        """Read these at every scrape."""
        self.connections.set_function(connections)
        self.live_consults.set_function(live_consults)
        self.people_in_consults.set_function(people)

    def watch_fanout(self, fanout: FanOutFigures) -> None:
        """With `REDIS_URL`: the Redis fan-out's queue, read at every scrape."""
        outbox = fanout.outbox
        figures: list[tuple[str, str, Callable[[], float]]] = [
            ("waiting_messages", "messages waiting to be published now", lambda: len(outbox)),
            ("waiting_bytes", "bytes waiting to be published now", lambda: outbox.waiting_bytes),
            (
                "high_water_messages",
                "the most messages that ever waited at once (since the start)",
                lambda: outbox.high_water_messages,
            ),
            (
                "high_water_bytes",
                "the most bytes that ever waited at once (since the start)",
                lambda: outbox.high_water_bytes,
            ),
            (
                "largest_batch_messages",
                "the most messages published in one round trip (since the start)",
                lambda: outbox.largest_batch,
            ),
            (
                "published_messages",
                "messages published (since the start)",
                lambda: outbox.published,
            ),
            (
                "dropped_full_messages",
                "messages dropped because the queue was full (since the start)",
                lambda: fanout.full_drops,
            ),
            (
                "dropped_messages",
                "messages dropped, queue full or Redis unreachable (since the start)",
                lambda: fanout.dropped_total,
            ),
            (
                "consults_resent",
                "consult states sent again after the queue drained (since the start)",
                lambda: fanout.consults_resent,
            ),
        ]
        for name, text, read in figures:
            gauge = Gauge(
                f"teleconsult_fanout_{name}",
                f"Redis fan-out to other signaling processes: {text}",
                registry=self.registry,
            )
            gauge.set_function(read)

    def joined(self, outcome: str, seconds: float) -> None:
        self.joins.labels(outcome).inc()
        self.join_seconds.labels(outcome).observe(seconds)

    def refused(self, code: str) -> None:
        """A socket.io event answered with an error."""
        self.errors.labels(code, "socketio").inc()

    def http_error(self, code: str) -> None:
        """A REST request answered with an error."""
        self.errors.labels(code, "http").inc()
