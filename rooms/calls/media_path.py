"""Which path a consult's media takes: directly between browsers, or through the server's relay."""

from __future__ import annotations

from enum import StrEnum

from rooms.consults.consult import MediaMode

MAX_P2P_PARTICIPANTS = 2
"""A direct call joins two browsers; a third participant needs the relay."""


class RelayReason(StrEnum):
    RECORDING = "recording"
    """Every present participant consented to recording; only the relay can record."""
    PARTICIPANTS = "participants"
    """More than two participants: a multi-disciplinary consult."""
    P2P_FAILED = "p2p_failed"
    """A participant reported that the direct connection failed."""


def relay_reason(
    current: MediaMode,
    participants: int,
    recording: bool = False,
    p2p_failed: bool = False,
) -> RelayReason | None:
    """Why the consult must move to the relay now, or None when it stays where it is.

    A consult that runs through the relay stays there until it ends: moving back would
    renegotiate every connection mid-examination for no gain to the users.
    """
    if current is MediaMode.RELAY:
        return None
    if recording:
        return RelayReason.RECORDING
    if participants > MAX_P2P_PARTICIPANTS:
        return RelayReason.PARTICIPANTS
    if p2p_failed:
        return RelayReason.P2P_FAILED
    return None
