"""Settings from environment variables, with the embedded defaults (see docs/configuration.md)."""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from media.bucket_config import BucketConfig
from media.event_loop import DEFAULT_EVENT_LOOP, EVENT_LOOPS
from media.event_loop import available as event_loop_available
from rooms.consults.expiry import ExpiryRules
from rooms.consults.invitations import MAX_INVITED_SPECIALISTS, PARTICIPANTS_BESIDES_INVITEES
from rooms.duty.push import KNOWN_PUSH_SERVICES
from rooms.records.attachments import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_PER_CONSULT,
    AttachmentLimits,
)
from rooms.reporting.statistics import DEFAULT_REPORT_TIMEZONE, report_timezone
from signaling.ice import TRANSPORT_POLICIES, IceConfig, TransportPolicy
from signaling.limits import Limits

MIN_FREE_DISK_MB = 200
"""Free space (MiB) the recordings directory should keep: below it `/healthz` answers 503 with
`"storage": "low"`, so that monitoring calls someone before the disk is full (at 2 Mbit/s, one
recorded video track writes about 15 MiB a minute). Recording itself goes on until the disk
says ENOSPC, then stops cleanly (`notice: "storage_full"`)."""


class ConfigError(ValueError):
    """A setting has a value teleconsult cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    database_url: str = ""
    database_statement_timeout: int = 10
    """DATABASE_STATEMENT_TIMEOUT_SECONDS: on PostgreSQL, how long one statement may run (lock
    waits included) before it is cancelled and answered `database_unavailable` (503)."""
    database_connect_timeout: int = 5
    """DATABASE_CONNECT_TIMEOUT_SECONDS: on PostgreSQL, how long opening a connection may take
    before the database counts as unavailable."""
    jwt_secret: str = ""
    jwt_audience: str = "teleconsult"
    token_ttl: timedelta = timedelta(hours=12)
    join_link_ttl: timedelta = timedelta(minutes=30)
    public_url: str = ""
    redis_url: str | None = None
    redis_timeout: int = 2
    """REDIS_TIMEOUT_SECONDS: how long one Redis command (publish, ping, subscribe) of the
    fan-out may take before Redis counts as unreachable."""
    fanout_backlog_bytes: int = 8 * 1024 * 1024
    """FANOUT_BACKLOG_BYTES (with `REDIS_URL`): how much may wait to be published to the other
    signaling processes before what does not fit is dropped (and made good once it drains)."""
    room_lease_seconds: float = 2.5
    """ROOM_LEASE_SECONDS (with `REDIS_URL`): how long a signaling process's claim on a live
    consult's room lasts in Redis unless renewed (every third of it); a process that hangs
    without dying loses its rooms to the next join after this long."""
    media_address: str | None = None
    media_port_min: int | None = None
    media_port_max: int | None = None
    relay_video_codec: str = "VP8"
    event_loop: str = DEFAULT_EVENT_LOOP
    """EVENT_LOOP: `uvloop` or `asyncio`, the loop the server (and its media relay) runs on."""
    recordings_dir: Path = Path("data/media")
    min_free_disk_mb: int = MIN_FREE_DISK_MB
    """MIN_FREE_DISK_MB: below this much free space in `recordings_dir`, `/healthz` says
    `"storage": "low"` (503); 0 turns the check off."""
    playback_ttl: timedelta = timedelta(minutes=10)
    report_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_REPORT_TIMEZONE))
    ice: IceConfig = field(default_factory=IceConfig)
    limits: Limits = field(default_factory=Limits)
    attachments: AttachmentLimits = field(default_factory=AttachmentLimits)
    escalate_after: timedelta = timedelta(minutes=10)
    """ESCALATE_AFTER_SECONDS: how long each escalation step waits for somebody to accept."""
    reminder_before: timedelta = timedelta(minutes=15)
    """REMINDER_BEFORE_SECONDS: how long before the scheduled time the reminder goes out."""
    duty_tick: timedelta = timedelta(seconds=15)
    """DUTY_TICK_SECONDS: how often the escalation scheduler wakes (a step is at most this
    late)."""
    push_timeout: timedelta = timedelta(seconds=10)
    """PUSH_TIMEOUT_SECONDS: longest wait for a push service to take one notification."""
    push_ttl: timedelta = timedelta(hours=1)
    """PUSH_TTL_SECONDS: how long a push service keeps a notification for an offline phone."""
    vapid_subject: str = "mailto:teleconsult@localhost"
    """VAPID_SUBJECT: the contact push services see in the VAPID token (mailto: or https:)."""
    expiry: ExpiryRules = field(default_factory=ExpiryRules)
    """REQUEST_EXPIRES_AFTER_SECONDS / ACCEPTED_EXPIRES_AFTER_SECONDS: when an unanswered
    request, or an accepted consult nobody opened, expires (counted from its scheduled time)."""
    invited_specialists: int = MAX_INVITED_SPECIALISTS
    """INVITED_SPECIALISTS_PER_CONSULT: further specialists the assigned specialist may invite
    into one consult (a multi-disciplinary consult); must fit MAX_PARTICIPANTS_PER_CONSULT."""
    push_service_hosts: tuple[str, ...] = KNOWN_PUSH_SERVICES
    """PUSH_SERVICE_HOSTS: the push services (hosts, subdomains included) endpoints may point at."""
    push_allow_http_loopback: bool = False
    """PUSH_ALLOW_HTTP_LOOPBACK: accept http:// push endpoints on loopback (a local test push
    service); otherwise only https endpoints are accepted."""
    recordings_s3: BucketConfig | None = None
    """RECORDINGS_S3_*: finished recordings go to this S3-compatible bucket (None: local disk)."""
    metrics_token: str = ""
    """METRICS_TOKEN: `/metrics` wants `Authorization: Bearer <it>`; empty: loopback only."""
    metrics_port: int = 0
    """METRICS_PORT: `teleconsult media-node` serves `/metrics` on HOST:METRICS_PORT (0: not)."""
    log_format: str = "text"
    """LOG_FORMAT: `text` (the default) or `json` (one JSON object per line)."""
    # ---- trainings (docs/training.md) ---------------------------------------------------------
    training_viewer_url_ttl: timedelta = timedelta(hours=1)
    """TRAINING_VIEWER_URL_TTL_SECONDS: how long a signed viewer URL of a broadcast stays valid
    after admission (rounded up to TRAINING_VIEWER_URL_BUCKET_SECONDS)."""
    training_viewer_url_bucket: timedelta = timedelta(minutes=5)
    """TRAINING_VIEWER_URL_BUCKET_SECONDS: viewers admitted within one bucket share one URL, so
    a cache in front keeps each segment once per bucket."""
    training_segment_seconds: int = 2
    """TRAINING_SEGMENT_SECONDS: HLS segment length (a key frame is asked for this often)."""

    @property
    def training_dir(self) -> Path:
        """Where broadcasts keep their HLS files (beside the recordings)."""
        return self.recordings_dir / "trainings"

    media_nodes: str = "local"
    """MEDIA_NODES: `local` (the relay and recorder run in this process) or `redis` (consults'
    media runs on `teleconsult media-node` processes found through REDIS_URL)."""
    media_node_id: str = ""
    """MEDIA_NODE_ID: this process's name as a media node and recording writer (its partial
    folder); empty: `<role>-<host>-<pid>`, new at every start."""
    media_request_timeout: float = 5.0
    """MEDIA_REQUEST_TIMEOUT_SECONDS: how long signaling waits for a media node's answer."""
    media_node_lease: float = 2.0
    """MEDIA_NODE_LEASE_SECONDS: a media node that has not renewed its lease for this long is
    dead; its consults move to another node."""
    # ---- quality telemetry (docs/network.md, "Quality telemetry") -----------------------------
    quality_bucket_seconds: int = 10
    """QUALITY_BUCKET_SECONDS: width of one stored quality bucket, and how often the buckets
    whose time has passed are written (1-60; the tests use a short one)."""

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _ice_servers(raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"ICE_SERVERS must be a JSON list of RTCIceServer objects: {exc}"
        ) from None
    if not isinstance(servers, list) or not all(
        isinstance(s, dict) and "urls" in s for s in servers
    ):
        raise ConfigError('ICE_SERVERS must look like [{"urls": "turn:turn.example:3478"}]')
    return servers


def _ice(env: Mapping[str, str]) -> IceConfig:
    config = IceConfig(
        servers=_ice_servers(env.get("ICE_SERVERS")),
        turn_urls=[u.strip() for u in (env.get("TURN_URLS") or "").split(",") if u.strip()],
        turn_secret=env.get("TURN_SECRET") or None,
        turn_ttl_seconds=_int(env, "TURN_TTL_SECONDS", 3600),
        turn_renew_percent=_int(env, "TURN_RENEW_PERCENT", 80),
        transport_policy=_transport_policy(env),
    )
    if config.turn_renew_percent > 95:
        raise ConfigError(
            "TURN_RENEW_PERCENT must be at most 95 (of TURN_TTL_SECONDS): a page needs time to "
            "renew its connections before the credentials expire; 0 turns renewal off"
        )
    if config.transport_policy == "relay" and not config.has_turn:
        raise ConfigError(
            "ICE_TRANSPORT_POLICY=relay needs a TURN server: set TURN_URLS and TURN_SECRET "
            "(or put a turn: URL in ICE_SERVERS)"
        )
    return config


def _transport_policy(env: Mapping[str, str]) -> TransportPolicy:
    raw = (env.get("ICE_TRANSPORT_POLICY") or "all").strip().lower()
    for policy in TRANSPORT_POLICIES:
        if raw == policy:
            return policy
    raise ConfigError(
        f"ICE_TRANSPORT_POLICY must be one of {', '.join(TRANSPORT_POLICIES)}, not {raw!r}"
    )


VIDEO_CODECS = ("VP8", "H264")


def _port_range(env: Mapping[str, str]) -> tuple[int | None, int | None]:
    low, high = env.get("MEDIA_PORT_MIN") or "", env.get("MEDIA_PORT_MAX") or ""
    if not low and not high:
        return None, None
    if not low or not high:
        raise ConfigError("set both MEDIA_PORT_MIN and MEDIA_PORT_MAX, or neither")
    port_min, port_max = _int(env, "MEDIA_PORT_MIN", 0), _int(env, "MEDIA_PORT_MAX", 0)
    if not 1024 <= port_min <= port_max <= 65535:
        raise ConfigError(
            f"MEDIA_PORT_MIN..MEDIA_PORT_MAX must lie within 1024..65535 with MIN <= MAX, "
            f"not {port_min}..{port_max}"
        )
    return port_min, port_max


def _video_codec(env: Mapping[str, str]) -> str:
    codec = (env.get("RELAY_VIDEO_CODEC") or "VP8").upper()
    if codec not in VIDEO_CODECS:
        raise ConfigError(f"RELAY_VIDEO_CODEC must be one of {', '.join(VIDEO_CODECS)}")
    return codec


def _event_loop(env: Mapping[str, str]) -> str:
    name = (env.get("EVENT_LOOP") or DEFAULT_EVENT_LOOP).strip().lower()
    if name not in EVENT_LOOPS:
        raise ConfigError(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if not event_loop_available(name):
        raise ConfigError(f"EVENT_LOOP={name} but {name} is not installed; set EVENT_LOOP=asyncio")
    return name


def _loopback_host(host: str | None) -> str | None:
    """A server that listens on loopback only serves browsers on this machine: its relay then
    announces that loopback address too (aioice would announce the LAN addresses)."""
    host = host or "127.0.0.1"
    return host if host.startswith("127.") else None


def _report_timezone(env: Mapping[str, str]) -> ZoneInfo:
    try:
        return report_timezone(env.get("REPORT_TIMEZONE") or DEFAULT_REPORT_TIMEZONE)
    except ValueError as exc:
        raise ConfigError(f"REPORT_TIMEZONE: {exc}") from None


def _kept_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret kept in `path`, made by `make` and written (mode 0600) on first use; if
    another process writes it first, theirs."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = make()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secret)
            return secret
    return path.read_bytes()


def jwt_secret_in(data_dir: Path) -> str:
    """The JWT secret kept in the data directory, created (mode 0600) on first use."""
    secret = _kept_secret(data_dir / "jwt_secret", lambda: secrets.token_urlsafe(48).encode())
    return secret.decode().strip()


def installation_id_in(data_dir: Path) -> str:
    """This installation's id (a random UUID) kept in the data directory, created on first use."""
    kept = _kept_secret(data_dir / "installation_id", lambda: uuid.uuid4().hex.encode())
    return kept.decode().strip()


def fhir_identity(settings: Settings) -> str:
    """What names the server's FHIR identifiers: `PUBLIC_URL` when it is set, otherwise
    `urn:teleconsult:<installation id>` — never the `Host` a request happened to use, so one
    consult keeps one identity whichever address it is exported through."""
    return settings.public_url or f"urn:teleconsult:{installation_id_in(settings.data_dir)}"


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


VAPID_KEY_FILE = "vapid_private_key.pem"


def vapid_key_in(data_dir: Path) -> Vapid02:
    """The server's VAPID key pair kept in the data directory, created (mode 0600) on first use."""

    def new_pem() -> bytes:
        vapid = Vapid02()
        vapid.generate_keys()
        pem: bytes = vapid.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem

    return Vapid02.from_pem(_kept_secret(data_dir / VAPID_KEY_FILE, new_pem))


def _push_service_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("PUSH_SERVICE_HOSTS")
    if raw is None or not raw.strip():
        return KNOWN_PUSH_SERVICES
    hosts = tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
    for host in hosts:
        if host != "*" and not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", host
        ):
            raise ConfigError(
                f"PUSH_SERVICE_HOSTS: {host!r} is not a host name (comma-separated, e.g. "
                "fcm.googleapis.com,push.hospital.example; * allows any https host)"
            )
    return hosts


def _vapid_subject(env: Mapping[str, str]) -> str:
    subject = env.get("VAPID_SUBJECT") or "mailto:teleconsult@localhost"
    if not subject.startswith(("mailto:", "https://")):
        raise ConfigError("VAPID_SUBJECT must be a mailto: or https: URL")
    return subject


def _room_lease(env: Mapping[str, str]) -> float:
    raw = env.get("ROOM_LEASE_SECONDS")
    if not raw:
        return 2.5
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"ROOM_LEASE_SECONDS must be a number of seconds, not {raw!r}") from None
    if not 0.5 <= value <= 60:
        raise ConfigError(f"ROOM_LEASE_SECONDS must be between 0.5 and 60, not {raw}")
    return value


def _positive_seconds(env: Mapping[str, str], name: str, default: int) -> timedelta:
    return timedelta(seconds=_positive(env, name, default))


def _invited_specialists(env: Mapping[str, str], max_participants: int) -> int:
    """INVITED_SPECIALISTS_PER_CONSULT, checked against the consult room's participant limit:
    invitations nobody could take up (the room full) would only disappoint the invitees. Unset,
    it is the default lowered to what the room holds (0: no invitations)."""
    room = max(0, max_participants - PARTICIPANTS_BESIDES_INVITEES)
    if not env.get("INVITED_SPECIALISTS_PER_CONSULT"):
        return min(MAX_INVITED_SPECIALISTS, room)
    value = _positive(env, "INVITED_SPECIALISTS_PER_CONSULT", MAX_INVITED_SPECIALISTS)
    if value > room:
        raise ConfigError(
            f"INVITED_SPECIALISTS_PER_CONSULT ({value}) + {PARTICIPANTS_BESIDES_INVITEES} "
            f"(the exam room and the assigned specialist) exceeds "
            f"MAX_PARTICIPANTS_PER_CONSULT ({max_participants})"
        )
    return value


MEDIA_NODE_MODES = ("local", "redis")
MEDIA_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _media_nodes(env: Mapping[str, str]) -> str:
    mode = (env.get("MEDIA_NODES") or "local").strip().lower()
    if mode not in MEDIA_NODE_MODES:
        raise ConfigError(f"MEDIA_NODES must be one of {', '.join(MEDIA_NODE_MODES)}, not {mode!r}")
    if mode == "redis" and not env.get("REDIS_URL"):
        raise ConfigError("MEDIA_NODES=redis needs REDIS_URL (media nodes are found through Redis)")
    return mode


def _media_node_id(env: Mapping[str, str]) -> str:
    node_id = (env.get("MEDIA_NODE_ID") or "").strip()
    if node_id and not MEDIA_NODE_ID.fullmatch(node_id):
        raise ConfigError(
            f"MEDIA_NODE_ID must be 1-63 letters, digits, '.', '_' or '-' (starting with a "
            f"letter or digit), not {node_id!r}"
        )
    return node_id


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be more than 0")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("DATA_DIR") or "data").resolve()
    limits = Limits()
    port_min, port_max = _port_range(env)
    overrides = {
        name: _int(env, name.upper(), getattr(limits, name)) for name in Limits.__dataclass_fields__
    }
    invited = _invited_specialists(env, overrides["max_participants_per_consult"])
    return Settings(
        host=env.get("HOST") or "127.0.0.1",
        port=_int(env, "PORT", 8080),
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'teleconsult.db'}",
        database_statement_timeout=_positive(env, "DATABASE_STATEMENT_TIMEOUT_SECONDS", 10),
        database_connect_timeout=_positive(env, "DATABASE_CONNECT_TIMEOUT_SECONDS", 5),
        jwt_secret=env.get("JWT_SECRET") or "",
        jwt_audience=env.get("JWT_AUDIENCE") or "teleconsult",
        token_ttl=timedelta(seconds=_int(env, "TOKEN_TTL_SECONDS", 12 * 3600)),
        join_link_ttl=timedelta(seconds=_int(env, "JOIN_LINK_TTL_SECONDS", 30 * 60)),
        public_url=(env.get("PUBLIC_URL") or "").rstrip("/"),
        redis_url=env.get("REDIS_URL") or None,
        redis_timeout=_positive(env, "REDIS_TIMEOUT_SECONDS", 2),
        fanout_backlog_bytes=_positive(env, "FANOUT_BACKLOG_BYTES", 8 * 1024 * 1024),
        room_lease_seconds=_room_lease(env),
        media_address=env.get("MEDIA_ADDRESS") or _loopback_host(env.get("HOST")),
        media_port_min=port_min,
        media_port_max=port_max,
        relay_video_codec=_video_codec(env),
        event_loop=_event_loop(env),
        recordings_dir=Path(env.get("RECORDINGS_DIR") or data_dir / "media").resolve(),
        min_free_disk_mb=_int(env, "MIN_FREE_DISK_MB", MIN_FREE_DISK_MB),
        playback_ttl=timedelta(seconds=_int(env, "PLAYBACK_TTL_SECONDS", 600)),
        report_timezone=_report_timezone(env),
        ice=_ice(env),
        limits=Limits(**overrides),
        attachments=AttachmentLimits(
            max_bytes=_positive(env, "ATTACHMENT_MAX_BYTES", ATTACHMENT_MAX_BYTES),
            max_per_consult=_positive(env, "ATTACHMENTS_PER_CONSULT", ATTACHMENTS_PER_CONSULT),
        ),
        escalate_after=_positive_seconds(env, "ESCALATE_AFTER_SECONDS", 600),
        reminder_before=_positive_seconds(env, "REMINDER_BEFORE_SECONDS", 900),
        duty_tick=_positive_seconds(env, "DUTY_TICK_SECONDS", 15),
        push_timeout=_positive_seconds(env, "PUSH_TIMEOUT_SECONDS", 10),
        push_ttl=_positive_seconds(env, "PUSH_TTL_SECONDS", 3600),
        vapid_subject=_vapid_subject(env),
        invited_specialists=invited,
        push_allow_http_loopback=(env.get("PUSH_ALLOW_HTTP_LOOPBACK") or "") in ("1", "true"),
        push_service_hosts=_push_service_hosts(env),
        expiry=ExpiryRules(
            request_grace=_positive_seconds(env, "REQUEST_EXPIRES_AFTER_SECONDS", 2 * 3600),
            accepted_grace=_positive_seconds(env, "ACCEPTED_EXPIRES_AFTER_SECONDS", 24 * 3600),
        ),
        recordings_s3=_recordings_s3(env),
        metrics_token=_metrics_token(env),
        metrics_port=_metrics_port(env),
        log_format=_log_format(env),
        training_viewer_url_ttl=_positive_seconds(env, "TRAINING_VIEWER_URL_TTL_SECONDS", 3600),
        training_viewer_url_bucket=_positive_seconds(
            env, "TRAINING_VIEWER_URL_BUCKET_SECONDS", 300
        ),
        training_segment_seconds=_positive(env, "TRAINING_SEGMENT_SECONDS", 2),
        media_nodes=_media_nodes(env),
        media_node_id=_media_node_id(env),
        media_request_timeout=_positive_float(env, "MEDIA_REQUEST_TIMEOUT_SECONDS", 5.0),
        media_node_lease=_positive_float(env, "MEDIA_NODE_LEASE_SECONDS", 2.0),
        quality_bucket_seconds=_quality_bucket_seconds(env),
    )


def resolved_jwt_secret(settings: Settings) -> str:
    return settings.jwt_secret or jwt_secret_in(settings.data_dir)


# ---- recordings in S3, metrics, logs ----------------------------------------------------------


def _recordings_s3(env: Mapping[str, str]) -> BucketConfig | None:
    """RECORDINGS_S3_ENDPOINT and RECORDINGS_S3_BUCKET (both or neither) with their keys."""
    endpoint = (env.get("RECORDINGS_S3_ENDPOINT") or "").strip().rstrip("/")
    bucket = (env.get("RECORDINGS_S3_BUCKET") or "").strip()
    if not endpoint and not bucket:
        return None
    if not endpoint or not bucket:
        raise ConfigError("set both RECORDINGS_S3_ENDPOINT and RECORDINGS_S3_BUCKET, or neither")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", endpoint):
        raise ConfigError(
            f"RECORDINGS_S3_ENDPOINT must be http(s)://host[:port] (no path), not {endpoint[:80]!r}"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ConfigError(
            "RECORDINGS_S3_BUCKET must be an S3 bucket name (3-63 of a-z, 0-9, '.', '-')"
        )
    access_key = env.get("RECORDINGS_S3_ACCESS_KEY") or ""
    secret_key = env.get("RECORDINGS_S3_SECRET_KEY") or ""
    if not access_key or not secret_key:
        raise ConfigError(
            "RECORDINGS_S3_ACCESS_KEY and RECORDINGS_S3_SECRET_KEY are needed with "
            "RECORDINGS_S3_ENDPOINT"
        )
    prefix = (env.get("RECORDINGS_S3_PREFIX") or "").strip()
    if prefix and not re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*/)+", prefix):
        raise ConfigError(
            "RECORDINGS_S3_PREFIX must be folder names each ending in '/', e.g. recordings/"
        )
    part_mb = _positive(env, "RECORDINGS_S3_PART_MB", 16)
    if part_mb < 5:
        raise ConfigError("RECORDINGS_S3_PART_MB must be at least 5 (S3's smallest part)")
    return BucketConfig(
        endpoint=endpoint,
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        region=(env.get("RECORDINGS_S3_REGION") or "us-east-1").strip(),
        prefix=prefix,
        part_bytes=part_mb * 1024 * 1024,
        timeout_seconds=_positive(env, "RECORDINGS_S3_TIMEOUT_SECONDS", 10),
        retry_seconds=_positive(env, "RECORDINGS_S3_RETRY_SECONDS", 30),
    )


def _metrics_token(env: Mapping[str, str]) -> str:
    token = env.get("METRICS_TOKEN") or ""
    if token and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters")
    return token


def _metrics_port(env: Mapping[str, str]) -> int:
    port = _int(env, "METRICS_PORT", 0)
    if port > 65535:
        raise ConfigError(f"METRICS_PORT must be a TCP port (1..65535) or 0, not {port}")
    return port


LOG_FORMATS = ("text", "json")


def _log_format(env: Mapping[str, str]) -> str:
    name = (env.get("LOG_FORMAT") or "text").strip().lower()
    if name not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {name!r}")
    return name


QUALITY_BUCKET_SECONDS_MAX = 60
"""The widest quality bucket: one row a minute per participant and source."""


def _quality_bucket_seconds(env: Mapping[str, str]) -> int:
    value = _positive(env, "QUALITY_BUCKET_SECONDS", 10)
    if value > QUALITY_BUCKET_SECONDS_MAX:
        raise ConfigError(
            f"QUALITY_BUCKET_SECONDS must be at most {QUALITY_BUCKET_SECONDS_MAX}, not {value}"
        )
    return value
