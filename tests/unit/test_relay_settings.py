"""The relay's settings and codec rule (no I/O)."""

from __future__ import annotations

import pytest
from aiortc import RTCIceServer

from media.relay import RelayConfig
from media.relay.codecs import codec_name, codec_preferences
from media.relay.room import msid_token


def test_defaults_are_vp8_with_no_ice_server_and_ephemeral_ports() -> None:
    config = RelayConfig()
    assert config.video_codec == "VP8"
    assert config.ice_servers == []  # never aiortc's default public STUN server
    assert (config.address, config.port_min, config.port_max) == (None, None, None)


@pytest.mark.parametrize(
    "settings",
    [
        {"video_codec": "VP9"},
        {"port_min": 40000},
        {"port_max": 40000},
        {"port_min": 40010, "port_max": 40000},
        {"port_min": 0, "port_max": 10},
        {"port_min": 65000, "port_max": 70000},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RelayConfig(**settings)  # type: ignore[arg-type]


def test_ice_servers_are_kept_as_given() -> None:
    servers = [RTCIceServer(urls="turn:turn.example.org:3478", username="u", credential="p")]
    assert RelayConfig(ice_servers=servers).ice_servers == servers


def test_vp8_mode_prefers_vp8_and_its_rtx_only() -> None:
    video = codec_preferences("video", "VP8")
    assert [c.mimeType for c in video] == ["video/VP8", "video/rtx"]
    assert [c.mimeType for c in codec_preferences("audio", "VP8")] == ["audio/opus"]
    assert codec_name("video", "VP8") == "VP8"
    assert codec_name("audio", "VP8") == "opus"


def test_h264_mode_prefers_constrained_baseline_packetization_mode_1() -> None:
    video = codec_preferences("video", "H264")
    assert [c.mimeType for c in video] == ["video/H264", "video/rtx"]
    assert video[0].parameters["profile-level-id"] == "42e01f"
    assert video[0].parameters["packetization-mode"] == "1"
    assert codec_name("video", "H264") == "H264"


def test_msid_tokens_are_sdp_safe() -> None:
    assert msid_token("peer-42") == "peer-42"
    assert msid_token("peer 42/x~y") == "peer_42_x~y"
    assert msid_token("") == "_"
    assert len(msid_token("x" * 200)) == 64
