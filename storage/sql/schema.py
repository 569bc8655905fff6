"""Table definitions shared by the store and the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

institutions = Table(
    "institutions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("level", String(20), nullable=False),
    Column("parent_id", Integer, ForeignKey("institutions.id"), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("specialty", String(40), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

consults = Table(
    "consults",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("media_mode", String(10), nullable=False),
    Column("specialty", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("patient", JSON, nullable=False),
    Column("intake", JSON, nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("requesting_institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("requesting_doctor_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("specialist_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("closing_note", Text, nullable=False, default=""),
    Column("ended_by_id", Integer, nullable=True),
    Column("version", Integer, nullable=False, default=0),
    Index("ix_consults_institution", "requesting_institution_id"),
    Index("ix_consults_specialist", "specialist_id"),
    Index("ix_consults_specialty_status", "specialty", "status"),
    # Statistics: the consults of some institutions requested in a time range.
    Index("ix_consults_institution_requested", "requesting_institution_id", "requested_at"),
    # The expiry and reminder scans: consults in some statuses scheduled before/around a time.
    Index("ix_consults_status_scheduled", "status", "scheduled_at"),
)

conclusion_drafts = Table(
    "conclusion_drafts",
    metadata,
    Column("consult_id", String(32), ForeignKey("consults.id"), primary_key=True),
    Column("text", Text, nullable=False),
    Column("author_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("action", String(64), nullable=False),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_consult", "consult_id"),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("participant_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("source", String(20), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("codec", String(20), nullable=False),
    Column("container", String(20), nullable=False),
    Column("storage_key", String(300), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_offset_s", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("duration_s", Float, nullable=False, default=0.0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("sha256", String(64), nullable=False, default=""),
    Column("recovered", Boolean, nullable=False, default=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_recordings_consult", "consult_id"),
    Index("ix_recordings_status", "status"),
)

recording_consents = Table(
    "recording_consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("session_id", String(32), nullable=False),
    Index("ix_recording_consents_consult", "consult_id"),
)

notes = Table(
    "notes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("author_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("recording_offset_s", Float, nullable=True),
    Index("ix_notes_consult", "consult_id", "at"),
)

duty_shifts = Table(
    "duty_shifts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("specialist_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("specialty", String(40), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("tier", Integer, nullable=False, default=0),
    Index("ix_duty_shifts_specialty_time", "specialty", "start_at", "end_at"),
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("endpoint", String(1000), nullable=False, unique=True),
    Column("p256dh", String(100), nullable=False),
    Column("auth", String(50), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_push_subscriptions_user", "user_id"),
)

consult_notices = Table(
    "consult_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("fallback", Boolean, nullable=False, default=False),
    # The claim: a kind of notice goes out once per consult, whichever process gets here first.
    UniqueConstraint("consult_id", "kind", name="uq_consult_notices_kind"),
)

review_comments = Table(
    "review_comments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("author_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("timeline_s", Float, nullable=True),
    Index("ix_review_comments_consult", "consult_id", "at"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("uploader_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("media_type", String(40), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(300), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    Index("ix_attachments_consult", "consult_id", "uploaded_at"),
)

consult_invitations = Table(
    "consult_invitations",
    metadata,
    # A row while the invitation stands; declining or withdrawing deletes it (the audit log
    # keeps the history). One invitation per specialist per consult.
    Column("consult_id", String(32), ForeignKey("consults.id"), primary_key=True),
    Column("specialist_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("invited_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("invited_at", UTCDateTime, nullable=False),
    Index("ix_consult_invitations_specialist", "specialist_id"),
)

call_quality = Table(
    "call_quality",
    metadata,
    # One row per (consult, participant, source) and `rooms.calls.quality.BUCKET_SECONDS` of
    # call: the figures the pages (source "client") and the relay ("relay") reported, folded.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consult_id", String(32), ForeignKey("consults.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("source", String(10), nullable=False),
    Column("bucket_start", UTCDateTime, nullable=False),
    Column("path", String(10), nullable=False),
    Column("reports", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("bitrate_in_kbps", Float, nullable=False),
    Column("bitrate_out_kbps", Float, nullable=False),
    Column("loss_pct", Float, nullable=False),
    Column("loss_max_pct", Float, nullable=False),
    Column("rtt_ms", Float, nullable=True),
    Column("jitter_ms", Float, nullable=True),
    Column("frames_decoded", Integer, nullable=False),
    Column("frames_dropped", Integer, nullable=False),
    Column("freezes", Integer, nullable=False),
    Column("freeze_ms", Float, nullable=False),
    Column("audio_concealed_pct", Float, nullable=False),
    Column("audio_only_s", Float, nullable=False),
    Column("nacks", Integer, nullable=False),
    Column("plis", Integer, nullable=False),
    Index("ix_call_quality_consult", "consult_id", "bucket_start"),
)


trainings = Table(
    "trainings",
    metadata,
    # One row per training (`rooms.training`); its lecturers, audience institutions and
    # specialties are short lists kept as JSON (a province has about a hundred institutions).
    Column("id", String(32), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("organiser_institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("lecturer_ids", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("audience_kind", String(10), nullable=False),
    Column("audience_institution_ids", JSON, nullable=False),
    Column("specialties", JSON, nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_trainings_starts_at", "starts_at"),
)

training_attendance = Table(
    "training_attendance",
    metadata,
    # One row per person per training, written in batches from the players' heartbeats
    # (`rooms.training.attendance`): not a row per heartbeat.
    Column("training_id", String(32), ForeignKey("trainings.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("seconds", Float, nullable=False),
)

training_questions = Table(
    "training_questions",
    metadata,
    # Trainees' questions during a live training (`rooms.training.questions`): pending until a
    # moderator shows or dismisses them; the shown ones are the replay's markers.
    Column("id", String(32), primary_key=True),
    Column("training_id", String(32), ForeignKey("trainings.id"), nullable=False),
    Column("asker_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("text", String(500), nullable=False),
    Column("asked_at", UTCDateTime, nullable=False),
    Column("status", String(10), nullable=False),
    Column("moderated_by", Integer, ForeignKey("users.id"), nullable=True),
    Column("moderated_at", UTCDateTime, nullable=True),
    Index("ix_training_questions_training", "training_id", "asked_at"),
)
