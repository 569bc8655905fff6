"""The one codec per media kind that every leg of a consult negotiates."""

from __future__ import annotations

from aiortc import RTCRtpSender
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import filter_preferred_codecs, find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import MediaDescription

H264_PROFILE_LEVEL_ID = "42e01f"
"""Constrained baseline, level 3.1 (up to 1280x720 at 30 fps): what every browser decodes."""

CLOCK_RATES = {"audio": 48000, "video": 90000}


def codec_name(kind: str, video_codec: str) -> str:
    """The codec a track of this kind carries: `opus`, `VP8` or `H264`."""
    return "opus" if kind == "audio" else video_codec


def codec_preferences(kind: str, video_codec: str) -> list[RTCRtpCodecCapability]:
    """For `transceiver.setCodecPreferences`: the one codec (and its RTX, for video)."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        chosen = [c for c in capabilities if c.mimeType.lower() == "audio/opus"]
    elif video_codec == "VP8":
        chosen = [c for c in capabilities if c.mimeType.lower() == "video/vp8"]
    elif video_codec == "H264":
        chosen = [
            c
            for c in capabilities
            if c.mimeType.lower() == "video/h264"
            and str(c.parameters.get("profile-level-id", "")).lower() == H264_PROFILE_LEVEL_ID
            and str(c.parameters.get("packetization-mode", "0")) == "1"
        ]
    else:
        raise ValueError(f"unknown video codec {video_codec!r}")
    if len(chosen) != 1:
        raise RuntimeError(f"aiortc offers {len(chosen)} codecs matching {kind}/{video_codec}")
    if kind == "video":
        chosen += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen


def offers_codec(media: MediaDescription, preferences: list[RTCRtpCodecCapability]) -> bool:
    """Whether a remote m-section can carry the preferred codec (aiortc's own negotiation)."""
    common = find_common_codecs(CODECS[media.kind], media.rtp.codecs)
    return bool(filter_preferred_codecs(common, preferences))
