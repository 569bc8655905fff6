"""What the recorder must read inside encoded frames: VP8 key frame headers, H.264 NAL units.

Only headers are read, never pixels: the picture size a container's track header needs, whether
a frame is a key frame, and H.264's parameter sets (SPS/PPS) that a decoder needs first.
"""

from __future__ import annotations

from collections.abc import Iterator

VP8_START_CODE = b"\x9d\x01\x2a"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_STAP_A = 24
NAL_FU_A = 28

# profile_idc values whose SPS carries chroma format, bit depths and scaling lists (H.264 7.3.2.1.1)
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def vp8_is_keyframe(frame: bytes) -> bool:
    """True for a VP8 key frame (RFC 6386 9.1: bit 0 of the frame tag is 0)."""
    return bool(frame) and not frame[0] & 1


def vp8_dimensions(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame's header, None if it is not a well-formed key frame."""
    if len(frame) < 10 or not vp8_is_keyframe(frame) or frame[3:6] != VP8_START_CODE:
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def annexb_nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        if nxt == -1:
            yield data[begin:]
            return
        # A 4-byte start code's leading zero belongs to the next start code, not to this NAL.
        end = nxt - 1 if data[nxt - 1] == 0 else nxt
        yield data[begin:end]
        start = nxt


def _unescape(rbsp: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 -> 00 00)."""
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8

    def u(self, n: int) -> int:
        if n > self.left:
            raise ValueError("SPS is truncated")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def h264_sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) of the pictures an H.264 SPS NAL unit (header byte included) describes.

    Follows H.264 7.3.2.1.1 up to the frame cropping fields; raises ValueError if malformed.
    """
    if not sps or sps[0] & 0x1F != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    bits = _Bits(_unescape(sps[1:]))
    profile_idc = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            sub_width = 1 if chroma_format_idc == 3 else 2
            sub_height = 2 if chroma_format_idc == 1 else 1
            crop_x, crop_y = sub_width, sub_height * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS describes an empty picture")
    return width, height


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt:
            nxt = (last + bits.se() + 256) % 256
        last = nxt or last


def h264_parameter_sets(access_unit: bytes) -> tuple[bytes | None, bytes | None]:
    """The (SPS, PPS) NAL units an Annex B access unit carries, each None if absent."""
    sps = pps = None
    for nal in annexb_nal_units(access_unit):
        if not nal:
            continue
        kind = nal[0] & 0x1F
        if kind == NAL_SPS:
            sps = nal
        elif kind == NAL_PPS:
            pps = nal
    return sps, pps


def h264_rtp_nal_types(payload: bytes) -> Iterator[int]:
    """Types of the NAL units an H.264 RTP payload (RFC 6184) starts or carries whole."""
    if not payload:
        return
    kind = payload[0] & 0x1F
    if kind == NAL_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            yield payload[pos + 2] & 0x1F
            pos += 2 + size
    elif kind == NAL_FU_A:
        if len(payload) > 1 and payload[1] & 0x80:  # start of the fragmented unit
            yield payload[1] & 0x1F
    else:
        yield kind


def h264_rtp_starts_access_unit(payload: bytes) -> bool:
    """True if this RTP payload begins a new picture (access unit).

    Parameter sets, SEI and access unit delimiters only come first; a slice begins a picture
    when its first_mb_in_slice is 0, i.e. when the first bit after the NAL header is 1.
    """
    if len(payload) < 2:
        return False
    kind = payload[0] & 0x1F
    if kind == NAL_STAP_A:  # 2-byte size, then the first aggregated NAL unit
        if len(payload) < 5:
            return False
        kind, first_payload_byte = payload[3] & 0x1F, payload[4]
    elif kind == NAL_FU_A:
        if not payload[1] & 0x80 or len(payload) < 3:
            return False
        kind, first_payload_byte = payload[1] & 0x1F, payload[2]
    else:
        first_payload_byte = payload[1]
    if kind in (NAL_SLICE, NAL_IDR):
        return bool(first_payload_byte & 0x80)
    return kind in (NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD)
