"""When a consult moves from peer-to-peer to the relay, and that it stays there."""

from __future__ import annotations

import pytest

from rooms.calls.media_path import RelayReason, relay_reason
from rooms.consults.consult import MediaMode


@pytest.mark.parametrize(
    ("participants", "recording", "p2p_failed", "expected"),
    [
        (2, False, False, None),
        (1, False, False, None),
        (3, False, False, RelayReason.PARTICIPANTS),
        (7, False, False, RelayReason.PARTICIPANTS),
        (2, True, False, RelayReason.RECORDING),
        (2, False, True, RelayReason.P2P_FAILED),
        (3, True, True, RelayReason.RECORDING),
    ],
)
def test_a_p2p_consult_moves_to_the_relay_when_it_must(
    participants: int, recording: bool, p2p_failed: bool, expected: RelayReason | None
) -> None:
    assert relay_reason(MediaMode.P2P, participants, recording, p2p_failed) is expected


def test_a_relayed_consult_stays_on_the_relay() -> None:
    assert relay_reason(MediaMode.RELAY, 2) is None
    assert relay_reason(MediaMode.RELAY, 1, recording=False, p2p_failed=False) is None
    assert relay_reason(MediaMode.RELAY, 5, recording=True) is None
