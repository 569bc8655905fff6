"""Picture sizes and key frames read from encoded headers, checked against real encoders."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from av.video.codeccontext import VideoCodecContext

from media.recording.bitstream import (
    h264_parameter_sets,
    h264_rtp_starts_access_unit,
    h264_sps_dimensions,
    vp8_dimensions,
    vp8_is_keyframe,
)


def encode_first_frame(codec: str, width: int, height: int) -> bytes:
    encoder = av.CodecContext.create(codec, "w")
    assert isinstance(encoder, VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.framerate = Fraction(30)
    if codec == "libx264":
        encoder.options = {"tune": "zerolatency"}
    picture = av.VideoFrame(width, height, "yuv420p")
    for plane in picture.planes:
        plane.update(bytes(plane.buffer_size))
    picture.pts = 0
    return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (330, 186), (176, 144)])
def test_h264_sps_gives_the_picture_size_cropping_included(size: tuple[int, int]) -> None:
    access_unit = encode_first_frame("libx264", *size)

    sps, pps = h264_parameter_sets(access_unit)

    assert sps is not None and pps is not None
    assert h264_sps_dimensions(sps) == size


@pytest.mark.parametrize("size", [(640, 360), (330, 186)])
def test_vp8_key_frame_header_gives_the_picture_size(size: tuple[int, int]) -> None:
    frame = encode_first_frame("libvpx", *size)

    assert vp8_is_keyframe(frame)
    assert vp8_dimensions(frame) == size


def test_a_vp8_inter_frame_or_garbage_has_no_picture_size() -> None:
    assert vp8_dimensions(b"\x01" + bytes(20)) is None
    assert vp8_dimensions(b"\x00\x00\x00garbage!!") is None
    assert vp8_dimensions(b"") is None


def test_a_malformed_sps_is_refused() -> None:
    with pytest.raises(ValueError):
        h264_sps_dimensions(b"\x67\x42")
    with pytest.raises(ValueError):
        h264_sps_dimensions(b"\x68\xce\x38\x80")  # a PPS


def test_h264_access_unit_starts_are_told_from_later_slices() -> None:
    stap_a_with_sps = b"\x78\x00\x02\x67\x42"
    idr_slice_first_mb_0 = b"\x65\x88\x84"
    later_slice = b"\x41\x1a\x00"  # first_mb_in_slice = 2: "011" begins the Exp-Golomb code
    fu_a_start_of_first_slice = b"\x7c\x85\x88"
    fu_a_middle = b"\x7c\x05\x88"

    assert h264_rtp_starts_access_unit(stap_a_with_sps)
    assert h264_rtp_starts_access_unit(idr_slice_first_mb_0)
    assert h264_rtp_starts_access_unit(fu_a_start_of_first_slice)
    assert not h264_rtp_starts_access_unit(later_slice)
    assert not h264_rtp_starts_access_unit(fu_a_middle)
