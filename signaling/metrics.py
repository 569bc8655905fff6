"""The signaling process's figures for Prometheus: connections, live consults, joins and their
latency, errors by code.

Counted where they happen (a join, an error answered) or read at scrape time (connections and
rooms, through `watch`). A relayed `signal` that succeeds costs nothing here: only refusals
are counted on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

    def joined(self, outcome: str, seconds: float) -> None:
        self.joins.labels(outcome).inc()
        self.join_seconds.labels(outcome).observe(seconds)

    def refused(self, code: str) -> None:
        """A socket.io event answered with an error."""
        self.errors.labels(code, "socketio").inc()

    def http_error(self, code: str) -> None:
        """A REST request answered with an error."""
        self.errors.labels(code, "http").inc()
