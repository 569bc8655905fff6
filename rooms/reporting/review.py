"""Supervisor review: finding consults, one review timeline for their recordings, comments.

- **Filters** (`ConsultFilter`, `ReviewService.search`): supervisors and admins list the
  consults of their institution subtree, narrowed by institution (that institution and those
  below it, which must lie within the user's subtree), specialties, statuses, a half-open range
  of scheduled instants, and whether they were recorded; a page of at most `MAX_PAGE` consults.
- **Timeline** (`build_timeline`): a consult may hold several recording sessions (recording
  stopped and started again). Each track's `started_offset_s` and each note's
  `recording_offset_s` count from the start of *their* session; the review timeline lays the
  sessions end to end in the order they were recorded, so one scrubber covers them all.
- **Comments** (`Comment`): append-only remarks by supervisors (and admins) on a consult,
  optionally pinned to a point of the review timeline; each written with `comment.added`.
- **Viewing** is audited: opening a consult's review writes `consult.reviewed`; playback links
  and byte reads are audited by `rooms.calls.recording_service`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rooms.calls.ports import RecordingStore
from rooms.calls.recordings import Recording, RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import DomainError, PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.permissions import Action, is_permitted
from rooms.consults.ports import ConsultQuery, ConsultStore
from rooms.consults.service import Clock, institution_tree, load_permitted, utc_now
from rooms.records.notes import Note
from rooms.records.ports import NoteStore
from rooms.reporting.ports import CommentStore

MAX_PAGE = 200
"""Most consults one search answers; the client pages on with `offset`."""

MAX_OFFSET = 100_000
"""Largest `offset` a search accepts: deeper than any real review, so a bigger one is a mistake."""

MAX_COMMENT_CHARS = 2000
"""Longest review comment, in characters after trimming."""

MAX_PIN_BEYOND_END_S = 1.0
"""How far past the end of the recordings a comment may be pinned (the player's last frame)."""

SESSION_MATCH_S = 0.5
"""Tracks (and notes) whose session starts lie within this many seconds are one session."""

SEARCH_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
"""Who may search with filters; the others keep their plain listing."""


class InvalidFilter(DomainError):
    """A search filter that cannot be applied (bad range, unknown institution); nothing ran."""

    code = "invalid_payload"


class InvalidComment(DomainError):
    """A comment that is empty, too long, or pinned outside the recordings; nothing was saved."""

    code = "invalid_payload"


# ---- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsultFilter:
    """What a supervisor asks for. Empty sets and None mean 'any'."""

    institution_id: int | None = None
    specialties: frozenset[Specialty] = frozenset()
    statuses: frozenset[ConsultStatus] = frozenset()
    scheduled_from: datetime | None = None
    scheduled_before: datetime | None = None
    recorded: bool | None = None
    limit: int = MAX_PAGE
    offset: int = 0

    def __post_init__(self) -> None:
        for name, instant in (
            ("from", self.scheduled_from),
            ("to", self.scheduled_before),
        ):
            if instant is not None and instant.utcoffset() is None:
                raise InvalidFilter(f"{name} needs a timezone offset (e.g. +08:00)")
        if (
            self.scheduled_from is not None
            and self.scheduled_before is not None
            and self.scheduled_before <= self.scheduled_from
        ):
            raise InvalidFilter("to must be later than from (the range is [from, to))")
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidFilter(f"limit must be between 1 and {MAX_PAGE}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise InvalidFilter(f"offset must be between 0 and {MAX_OFFSET}")


@dataclass(frozen=True, slots=True)
class ConsultPage:
    consults: list[Consult]
    next_offset: int | None
    """Where the next page starts; None when this was the last one."""


# ---- the review timeline -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineSession:
    index: int
    started_at: datetime
    """When this recording session started (wall clock, UTC)."""
    start_s: float
    """Where it begins on the review timeline."""
    duration_s: float


@dataclass(frozen=True, slots=True)
class TimelineTrack:
    recording: Recording
    session: int
    start_s: float
    """Where the track's first frame falls on the review timeline."""
    end_s: float


@dataclass(frozen=True, slots=True)
class TimelineMarker:
    note: Note
    session: int | None
    """The recording session the note was taken in; None when it was not recorded."""
    at_s: float | None
    """Where the note falls on the review timeline; None when there is nothing to seek to."""


@dataclass(frozen=True, slots=True)
class Timeline:
    sessions: list[TimelineSession] = field(default_factory=list)
    tracks: list[TimelineTrack] = field(default_factory=list)
    markers: list[TimelineMarker] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return max((s.start_s + s.duration_s for s in self.sessions), default=0.0)


def session_start(recording: Recording) -> datetime:
    """When the recording session of this track started (its start minus its offset)."""
    return recording.started_at - timedelta(seconds=recording.started_offset_s)


def build_timeline(recordings: Iterable[Recording], notes: Iterable[Note]) -> Timeline:
    """The finished tracks and the notes on one timeline, sessions laid end to end.

    Tracks are grouped into sessions by their session start (within `SESSION_MATCH_S`); a
    session lasts until its last track ends. A note is placed in the session whose start equals
    the note's time minus its recording offset, clamped to that session's length.
    """
    ready = sorted(
        (r for r in recordings if r.status is RecordingStatus.READY),
        key=lambda r: (session_start(r), r.started_offset_s, r.id),
    )
    groups: list[tuple[datetime, list[Recording]]] = []
    for rec in ready:
        start = session_start(rec)
        if groups and abs((start - groups[-1][0]).total_seconds()) <= SESSION_MATCH_S:
            groups[-1][1].append(rec)
        else:
            groups.append((start, [rec]))
    sessions: list[TimelineSession] = []
    tracks: list[TimelineTrack] = []
    position = 0.0
    for index, (started_at, members) in enumerate(groups):
        duration = max(r.started_offset_s + r.duration_s for r in members)
        sessions.append(TimelineSession(index, started_at, round(position, 3), round(duration, 3)))
        for rec in members:
            start_s = position + rec.started_offset_s
            tracks.append(
                TimelineTrack(rec, index, round(start_s, 3), round(start_s + rec.duration_s, 3))
            )
        position += duration
    markers = [_marker(note, sessions) for note in notes]
    return Timeline(sessions, tracks, markers)


def _marker(note: Note, sessions: list[TimelineSession]) -> TimelineMarker:
    if note.recording_offset_s is None:
        return TimelineMarker(note, None, None)
    started = note.at - timedelta(seconds=note.recording_offset_s)
    for session in sessions:
        if abs((started - session.started_at).total_seconds()) <= SESSION_MATCH_S:
            offset = min(note.recording_offset_s, session.duration_s)
            return TimelineMarker(note, session.index, round(session.start_s + offset, 3))
    return TimelineMarker(note, None, None)  # its session left no finished track


# ---- comments ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    consult_id: str
    author_id: int
    text: str
    at: datetime
    """Wall-clock time (UTC) the server took the comment."""
    timeline_s: float | None = None
    """The point of the review timeline it is pinned to (see `build_timeline`); None: unpinned."""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def comment_text(text: str) -> str:
    """The comment's text, trimmed; `InvalidComment` if nothing is left or it is too long."""
    trimmed = text.strip()
    if not trimmed:
        raise InvalidComment("a comment needs some text")
    if len(trimmed) > MAX_COMMENT_CHARS:
        raise InvalidComment(
            f"a comment is at most {MAX_COMMENT_CHARS} characters ({len(trimmed)} given)"
        )
    return trimmed


def check_pin(timeline_s: float | None, timeline: Timeline) -> float | None:
    """A pin that lies on the recordings' timeline, rounded to ms; `InvalidComment` otherwise."""
    if timeline_s is None:
        return None
    if not timeline.sessions:
        raise InvalidComment("this consult has no recordings to pin a comment to")
    if timeline_s < 0 or timeline_s > timeline.duration_s + MAX_PIN_BEYOND_END_S:
        raise InvalidComment(
            f"the pin must lie between 0 and {timeline.duration_s:.1f} s (the recordings' length)"
        )
    return round(min(timeline_s, timeline.duration_s), 3)


# ---- the use cases -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    consult: Consult
    timeline: Timeline


class ReviewService:
    """Reads the consults, their recordings and notes; `store` keeps the review comments."""

    def __init__(
        self,
        consults: ConsultStore,
        recordings: RecordingStore,
        notes: NoteStore,
        store: CommentStore,
        clock: Clock = utc_now,
    ) -> None:
        self.consults = consults
        self.recordings = recordings
        self.notes = notes
        self.store = store
        self.clock = clock

    async def search(self, user: User, wanted: ConsultFilter) -> ConsultPage:
        """One page of the consults of `user`'s subtree that match `wanted`, newest first."""
        if user.role not in SEARCH_ROLES or not user.active:
            raise PermissionDenied(f"a {user.role.value} may not search consults with filters")
        tree = await institution_tree(self.consults)
        root = user.institution_id
        if wanted.institution_id is not None:
            if not tree.lineage(wanted.institution_id):
                raise InvalidFilter(f"no institution {wanted.institution_id}")
            if not tree.is_within(wanted.institution_id, user.institution_id):
                raise PermissionDenied(
                    f"institution {wanted.institution_id} is not within your institution's subtree"
                )
            root = wanted.institution_id
        found = await self.consults.list_consults(
            ConsultQuery(
                requesting_institution_ids=tree.subtree(root),
                statuses=wanted.statuses,
                specialties=wanted.specialties,
                scheduled_from=wanted.scheduled_from,
                scheduled_before=wanted.scheduled_before,
                recorded=wanted.recorded,
                limit=wanted.limit + 1,  # one more tells whether another page follows
                offset=wanted.offset,
            )
        )
        more = len(found) > wanted.limit
        page = [
            c for c in found[: wanted.limit] if is_permitted(user, Action.VIEW_CONSULT, c, tree)
        ]
        return ConsultPage(page, wanted.offset + wanted.limit if more else None)

    async def open(self, user: User, consult_id: str) -> Review:
        """The consult with its review timeline; the viewing is audited (`consult.reviewed`)."""
        consult = await load_permitted(self.consults, user, consult_id, Action.REVIEW_CONSULT)
        timeline = build_timeline(
            await self.recordings.list_recordings(consult_id),
            await self.notes.list_notes(consult_id),
        )
        await self.consults.append_audit(
            AuditEntry(
                at=self.clock(),
                actor_id=user.id,
                action="consult.reviewed",
                consult_id=consult_id,
                detail={
                    "recordings": [t.recording.id for t in timeline.tracks],
                    "duration_s": round(timeline.duration_s, 3),
                },
            )
        )
        return Review(consult, timeline)

    async def playback_timeline(self, user: User, consult_id: str) -> Timeline:
        """The consult's recordings and notes on the review timeline, for anyone who may play
        its recordings (`VIEW_RECORDINGS`): the one player behind a consult's "play recording".
        Not audited itself: what is audited is each track's playback link and every read of
        its bytes (`recording.playback_granted`, `recording.accessed`)."""
        await load_permitted(self.consults, user, consult_id, Action.VIEW_RECORDINGS)
        return build_timeline(
            await self.recordings.list_recordings(consult_id),
            await self.notes.list_notes(consult_id),
        )

    async def add_comment(
        self, user: User, consult_id: str, text: str, timeline_s: float | None = None
    ) -> Comment:
        """Add a review comment by `user`, optionally pinned to a point of the timeline."""
        trimmed = comment_text(text)
        await load_permitted(self.consults, user, consult_id, Action.COMMENT_CONSULT)
        if timeline_s is not None:
            timeline = build_timeline(await self.recordings.list_recordings(consult_id), [])
            timeline_s = check_pin(timeline_s, timeline)
        now = self.clock()
        comment = Comment(
            id=Comment.new_id(),
            consult_id=consult_id,
            author_id=user.id,
            text=trimmed,
            at=now,
            timeline_s=timeline_s,
        )
        await self.store.add_comment(
            comment,
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="comment.added",
                consult_id=consult_id,
                detail={"comment": comment.id, "timeline_s": timeline_s},
            ),
        )
        return comment

    async def comments(self, user: User, consult_id: str) -> list[Comment]:
        """The consult's review comments, oldest first, for those who may review it."""
        await load_permitted(self.consults, user, consult_id, Action.REVIEW_CONSULT)
        return await self.store.list_comments(consult_id)
