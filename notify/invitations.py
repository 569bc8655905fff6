"""Tells an invited specialist's phones of the invitation (Web Push)."""

from __future__ import annotations

from notify.messages import invited_push
from notify.push import WebPushSender
from rooms.consults.consult import Consult


class InvitationPushes:
    def __init__(self, pusher: WebPushSender) -> None:
        self.pusher = pusher

    async def invited(self, consult: Consult, specialist_id: int) -> int:
        """Push to every browser the specialist registered; how many push services took it."""
        return await self.pusher.send([specialist_id], invited_push(consult))
