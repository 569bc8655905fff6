"""Frames from RTP packets: reordering, duplicates, loss, wrap-around, padding, key frames."""

from __future__ import annotations

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import RtpPacket

from media.recording.frames import (
    EncodedFrame,
    FrameAssembler,
    H264Depacketizer,
    OpusDepacketizer,
    Vp8Depacketizer,
)
from media.recording.recorder import VIDEO_REORDER_WINDOW_S
from tests.support.rtp_source import AudioSource, VideoSource

FRAME_TICKS = 3000  # 30 fps at 90 kHz


def vp8_packets(seq: int, ts: int, key: bool, parts: int, tag: int) -> list[RtpPacket]:
    """A fake VP8 frame in `parts` packets; its bytes spell out `tag` so frames can be told apart.

    Bit 0 of a VP8 frame's first byte is 0 for a key frame.
    """
    body = bytes([0x00 if key else 0x01]) + bytes([tag]) * (10 * parts)
    chunk = len(body) // parts
    packets = []
    for i in range(parts):
        descriptor = VpxPayloadDescriptor(partition_start=int(i == 0), partition_id=0)
        piece = body[i * chunk : (i + 1) * chunk if i < parts - 1 else None]
        packets.append(
            RtpPacket(
                payload_type=96,
                marker=int(i == parts - 1),
                sequence_number=(seq + i) & 0xFFFF,
                timestamp=ts & 0xFFFFFFFF,
                ssrc=1,
                payload=bytes(descriptor) + piece,
            )
        )
    return packets


def stream(
    count: int, parts: int = 3, seq0: int = 100, ts0: int = 5000, keyframes: tuple[int, ...] = (0,)
) -> list[list[RtpPacket]]:
    """`count` fake VP8 frames, packetized, in sending order."""
    frames = []
    seq = seq0
    for i in range(count):
        frames.append(vp8_packets(seq, ts0 + i * FRAME_TICKS, i in keyframes, parts, tag=i))
        seq += parts
    return frames


def vp8_assembler() -> FrameAssembler:
    return FrameAssembler(Vp8Depacketizer(), 90000, VIDEO_REORDER_WINDOW_S)


def push_all(assembler: FrameAssembler, packets: list[RtpPacket]) -> list[EncodedFrame]:
    out: list[EncodedFrame] = []
    for packet in packets:
        out.extend(assembler.push(packet))
    return out


def tags(frames: list[EncodedFrame]) -> list[int]:
    return [f.data[1] for f in frames]


def test_frames_come_out_whole_once_and_in_order_although_packets_were_reordered() -> None:
    frames = stream(6)
    wire = [p for f in frames for p in f]
    # Swap inside a frame, across a frame boundary, and move a packet two frames later.
    wire[1], wire[2] = wire[2], wire[1]
    wire[5], wire[6] = wire[6], wire[5]
    moved = wire.pop(9)
    wire.insert(15, moved)

    out = push_all(vp8_assembler(), wire)

    assert tags(out) == [0, 1, 2, 3, 4, 5]
    assert [f.timestamp for f in out] == [i * FRAME_TICKS for i in range(6)]
    assert [f.keyframe for f in out] == [True] + [False] * 5
    assert not any(f.after_loss for f in out)
    assert out[0].data == b"\x00" + bytes([0]) * 30


def test_duplicated_packets_are_ignored() -> None:
    frames = stream(3)
    wire = [p for f in frames for p in f]
    assembler = vp8_assembler()

    out = push_all(assembler, wire[:4] + wire[1:2] + wire[4:] + wire[8:9])

    assert tags(out) == [0, 1, 2]
    assert assembler.packets_late == 2


def test_an_incomplete_frame_is_given_up_once_the_stream_is_past_the_reorder_window() -> None:
    frames = stream(30)
    lost = frames[5].pop(1)
    assembler = vp8_assembler()
    wire = [p for f in frames for p in f]

    out = push_all(assembler, wire)

    assert lost.timestamp not in [f.timestamp + 5000 for f in out]
    assert tags(out) == [i for i in range(30) if i != 5]
    assert [f.after_loss for f in out if f.data[1] == 6] == [True]
    assert sum(f.after_loss for f in out) == 1
    assert assembler.frames_lost == 1


def test_frames_after_a_gap_wait_for_it_until_the_window_passes() -> None:
    frames = stream(30)
    frames[5].pop(1)
    window_frames = int(VIDEO_REORDER_WINDOW_S * 30)
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames[: 5 + window_frames] for p in f])

    assert tags(out) == [0, 1, 2, 3, 4], "nothing after the gap leaves before it is given up"


def test_a_retransmission_within_the_window_completes_the_frame() -> None:
    frames = stream(10)
    missing = frames[3].pop(2)
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames[:6] for p in f])
    out += assembler.push(missing)  # the NACKed packet, repaired
    out += push_all(assembler, [p for f in frames[6:] for p in f])

    assert tags(out) == list(range(10))
    assert not any(f.after_loss for f in out)
    assert assembler.frames_lost == 0


def test_a_frame_lost_whole_is_noticed_by_the_sequence_gap() -> None:
    frames = stream(30, parts=1)
    del frames[7]
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f])

    assert tags(out) == [i for i in range(30) if i != 7]
    assert [f.data[1] for f in out if f.after_loss] == [8]
    assert assembler.frames_lost == 1


def test_padding_only_packets_are_not_a_gap() -> None:
    frames = stream(4, parts=2)
    wire: list[RtpPacket] = []
    seq = 100
    for f in frames:
        for p in f:
            p.sequence_number = seq
            seq += 1
            wire.append(p)
        # Bandwidth probing: an empty payload with the last frame's timestamp.
        wire.append(RtpPacket(96, 0, seq, f[0].timestamp, 1, b""))
        seq += 1

    out = push_all(vp8_assembler(), wire)

    assert tags(out) == [0, 1, 2, 3]
    assert not any(f.after_loss for f in out)


def test_sequence_numbers_and_timestamps_wrap_around() -> None:
    frames = stream(20, seq0=0xFFFF - 10, ts0=0xFFFFFFFF - 5 * FRAME_TICKS)

    out = push_all(vp8_assembler(), [p for f in frames for p in f])

    assert tags(out) == list(range(20))
    assert [f.timestamp for f in out] == [i * FRAME_TICKS for i in range(20)]


def test_a_whole_key_frame_releases_the_older_frames_still_waited_for() -> None:
    frames = stream(8, keyframes=(0, 4))
    frames[2].pop(1)
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f])

    assert tags(out) == [0, 1, 4, 5, 6, 7], "no waiting for frame 2 once key frame 4 is whole"
    assert out[2].keyframe and out[2].after_loss


def test_a_packet_arriving_after_its_frame_was_given_up_is_ignored() -> None:
    frames = stream(30)
    late = frames[3].pop(0)
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f])
    out += assembler.push(late)

    assert 3 not in tags(out)
    assert assembler.packets_late == 1


def test_a_stream_that_starts_in_the_middle_of_a_frame_starts_at_the_next_whole_one() -> None:
    frames = stream(20, keyframes=(0, 1))
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f][1:])

    assert tags(out) == list(range(1, 20))


def test_flush_hands_out_the_whole_frames_still_held_behind_a_gap() -> None:
    frames = stream(6)
    frames[2].pop(1)
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f])
    out += assembler.flush()

    assert tags(out) == [0, 1, 3, 4, 5]
    assert out[2].after_loss


def test_every_opus_packet_is_a_frame_and_a_lost_one_is_skipped() -> None:
    source = AudioSource(seed=3)
    sent = list(source.frames(40))
    wire = [f.packets[0] for f in sent]
    del wire[10]
    wire[20], wire[21] = wire[21], wire[20]
    assembler = FrameAssembler(OpusDepacketizer(), 48000, 0.2)

    out = push_all(assembler, wire)

    assert [f.timestamp for f in out] == [i * 960 for i in range(40) if i != 10]
    assert [f.data for f in out] == [f.packets[0].payload for f in sent if f.index != 10]


def test_h264_access_units_are_rebuilt_from_stap_a_and_fu_a_packets() -> None:
    source = VideoSource("H264", 320, 240, seed=4)
    sent = list(source.frames(10))
    source.close()
    assert any(len(f.packets) > 1 for f in sent), "the test needs fragmented frames"
    assembler = FrameAssembler(H264Depacketizer(), 90000, VIDEO_REORDER_WINDOW_S)

    out = push_all(assembler, [p for f in sent for p in f.packets])

    assert len(out) == 10
    assert [f.keyframe for f in out] == [f.keyframe for f in sent]
    assert out[0].data.startswith(b"\x00\x00\x00\x01\x67"), "SPS first, Annex B"


def test_a_malformed_packet_is_counted_and_its_frame_never_comes_out() -> None:
    frames = stream(30)
    frames[4][1].payload = b"\xff"  # an extended descriptor cut short
    assembler = vp8_assembler()

    out = push_all(assembler, [p for f in frames for p in f])

    assert 4 not in tags(out)
    assert assembler.packets_malformed == 1
    assert len(out) == 29
