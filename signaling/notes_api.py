"""Notes taken during a consult: the REST list, and the view both it and `note-add` answer with.

Notes are added over socket.io (`note-add`, see `signaling.events`) by those in the consult
room; anyone who may view the consult reads them here.
"""

from __future__ import annotations

from aiohttp import web

from rooms.records.notes import Note, NoteService
from signaling.context import Signaling, built_with
from signaling.rest import SIGNALING, api, consult_id_of, current_user, json_response
from signaling.schemas import NoteListOut, NoteOut
from signaling.views import Directory


def note_service(ctx: Signaling) -> NoteService:
    return built_with(ctx.notes, "notes")


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


@api.route(
    "GET",
    "/api/consults/{consult_id}/notes",
    "The notes taken during a consult, oldest first",
    response=NoteListOut,
    errors=("not_found", "forbidden"),
)
async def list_notes(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    found = await note_service(ctx).list(user, consult_id_of(request))
    return json_response(NoteListOut(notes=await notes_out(Directory(ctx.service.store), found)))
