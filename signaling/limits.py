"""Every limit the signaling edge enforces, each a named setting with its reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 64 * 1024
    """Largest socket.io event payload (JSON-encoded) accepted; a Chrome offer with audio, video
    and a second video source is ~10 KiB, so 64 KiB leaves room without letting one client
    make the server buffer megabytes. Larger events get `message_too_large`."""

    transport_max_bytes: int = 1024 * 1024
    """Hard ceiling for one engine.io packet: beyond it the transport itself drops the
    connection before the payload is parsed. Kept well above `max_message_bytes` so that
    ordinary oversize gets a clear error rather than a disconnect."""

    max_unread_bytes: int = 2 * 1024 * 1024
    """Messages one connection may leave unread on the server (encoded, waiting for its
    websocket writer or its next poll) before it is cut off: a page that stops reading cannot
    make the server hold more for it. A page that reads holds close to nothing (the kernel and
    transport buffers take a burst first); 2 MiB is 64 events of the largest size
    (`max_message_bytes`). A `signal` that could not be queued is answered `peer_unreachable`."""

    max_sdp_bytes: int = 32 * 1024
    """Largest session description relayed; offers beyond it get `sdp_too_large`."""

    max_candidate_bytes: int = 1024
    """Largest ICE candidate line; real ones are under 200 bytes."""

    max_request_bytes: int = 256 * 1024
    """Largest REST request body; bodies beyond it get 413 `payload_too_large`."""

    max_intake_bytes: int = 32 * 1024
    """Largest intake form (JSON-encoded) on a booking."""

    max_participants_per_consult: int = 8
    """People allowed in one consult room at once: the exam room, the specialist and up to
    six invited specialists in a multi-disciplinary consult. A person counts once however many
    tabs or devices they open (the newest connection takes over)."""

    joins_per_minute: int = 30
    """Joins one connection may attempt per minute; a page stuck in a join loop beyond it gets
    `rate_limited`. Counted per connection, not per person, so a person whose other device
    flaps is never locked out of their own consult."""

    joins_per_second: int = 600
    """Joins the whole process accepts per second (every connection together), the guard
    against a reconnect storm; beyond it `join` gets `rate_limited` and the pages retry.
    Twice the 300 joins/s one process is meant to take (README, performance): the guard sheds
    a storm beyond what the process can answer, never joins it could; at 200 it refused joins
    of the benchmark's 1000-pair runs (191 `rate_limited`) that the process could answer."""

    signals_per_second: int = 200
    """`signal` events one connection may send per second; beyond it `rate_limited`. A browser
    trickles dozens of ICE candidates in its first second per peer, and a newcomer in a full
    room (`max_participants_per_consult`) negotiates with seven peers at once: about 7 x 25 signals.
    The limit stops a client relaying thousands a second through the server to a peer."""

    socket_recheck_seconds: int = 30
    """How often live connections are checked against their token's expiry and their user's
    state: a disabled user or an expired token is disconnected at most this long after."""

    p2p_check_seconds: int = 5
    """How long the server waits for a page to confirm that the direct link it reported as
    failed is still down before moving the consult to the relay (no answer: it stays)."""

    login_attempts_per_minute: int = 10
    """Failed logins per username per minute before further attempts get `rate_limited`."""

    login_attempts_per_address_per_minute: int = 30
    """Failed logins per client address per minute before further attempts from it get
    `rate_limited`, whatever the username: one address guessing over many usernames is held
    to this. The address is the TCP peer (`request.remote`); behind a reverse proxy that is the
    proxy, so every user shares it (raise this, or rely on the proxy's own limits). A county
    hospital behind one NAT address has a few dozen staff, who rarely mistype 30 times a
    minute together."""

    login_tracked_keys: int = 10_000
    """Usernames, and separately addresses, whose failed logins are remembered at once. Entries
    expire a minute after their last failure; beyond this many the one least recently failed
    is forgotten, so credential stuffing over millions of usernames cannot grow memory."""

    password_checks_at_once: int = 1
    """argon2id password verifications (and hashes) running at once, in worker threads off the
    event loop (argon2 releases the GIL; the threads run at nice +10). Each costs ~140 ms of
    one core. 1 on a 2-core machine leaves the other core to the event loop that forwards
    media: under 50 concurrent failed logins (`bench/login.py`, before the threads were
    niced) the signal round trip's p99 rose 11 ms with 1 and 27 ms with 2, for the same
    login throughput on a busy machine. One checker still verifies ~7
    logins a second, a whole shift logging in within a minute. Raise it with the cores."""

    password_checks_waiting: int = 128
    """Logins that may wait for a free password checker (first come, first served); beyond
    it a login gets 429 `rate_limited` ("server busy checking passwords") at once. A waiting
    login costs the event loop nothing, while a refused one comes straight back: flooding
    clients that are refused spin and cost the loop more than clients that wait (50 clients
    against 32 places: /healthz p99 +476 ms; against 64: +64 ms). At 1 checker a full queue
    is a wait of ~18 s, which a login page tolerates better than a refusal."""

    max_statistics_months: int = 24
    """Longest statistics period (whole months, both ends included) one request may ask for:
    two years of trends without letting one request load a decade of consults. Longer
    periods get `invalid_period`."""

    max_quality_report_bytes: int = 1024
    """Largest `quality-report` payload (JSON-encoded): a full report is ~350 bytes. Larger
    ones get `message_too_large` and are not stored."""

    quality_reports_per_minute: int = 30
    """`quality-report` events one connection may send per minute; a page reports every 5 s
    (12 a minute), so 30 leaves room for a burst after a reconnect. Beyond it `rate_limited`,
    not stored."""
