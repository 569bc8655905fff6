"""Notes taken during a consult: the REST list, and the view both it and `note-add` answer with.

Notes are added over socket.io (`note-add`, see `signaling.events`) by those in the consult
room; anyone who may view the consult reads them here.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from rooms.records.notes import Note, NoteService
from signaling.http.api import Edge, Feature, consult_id_of, json_response
from signaling.schemas import PersonRef
from signaling.views import Directory

# ---- wire schemas --------------------------------------------------------------------------


class NoteOut(BaseModel):
    id: str
    author: PersonRef
    text: str
    at: datetime
    recording_offset_s: float | None


class NoteListOut(BaseModel):
    notes: list[NoteOut]


async def notes_out(directory: Directory, notes: list[Note]) -> list[NoteOut]:
    """Notes as the client sees them, each author's name resolved."""
    return [
        NoteOut(
            id=note.id,
            author=await directory.person(note.author_id),
            text=note.text,
            at=note.at,
            recording_offset_s=note.recording_offset_s,
        )
        for note in notes
    ]


# ---- routes --------------------------------------------------------------------------------


def routes(edge: Edge, *, notes: NoteService) -> Feature:
    feature = Feature("notes")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/notes",
        "The notes taken during a consult, oldest first",
        response=NoteListOut,
        errors=("not_found", "forbidden"),
    )
    async def list_notes(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        found = await notes.list(user, consult_id_of(request))
        return json_response(NoteListOut(notes=await notes_out(edge.directory(), found)))

    return feature
