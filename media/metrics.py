"""The media node's figures for Prometheus, read when `/metrics` is scraped.

`MediaNodeCollector` asks the node for its sums at scrape time (`LocalMediaNode.relay_totals`,
`load`, `recording_counts`), so the packet path pays nothing for them: the counters it reads
are the ones the relay keeps anyway for RTCP and `stats()`. Register it on the registry of
whichever process runs the node (the embedded server, or a media node of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client import Metric

    from media.node import LocalMediaNode
    from media.object_storage import RecordingUploads

RELAY_COUNTERS = (
    ("packets_received", "relay_packets_received", "RTP packets received from publishers"),
    ("bytes_received", "relay_received_bytes", "RTP payload bytes received from publishers"),
    ("packets_forwarded", "relay_packets_forwarded", "RTP packets forwarded to subscribers"),
    ("bytes_forwarded", "relay_forwarded_bytes", "bytes forwarded to subscribers (RTP payload)"),
    ("nacks_sent", "relay_nacks_sent", "sequence numbers NACKed upstream to publishers"),
    ("nacks_received", "relay_nacks_received", "NACKs received from subscribers"),
    ("retransmissions", "relay_retransmissions", "packets sent again in answer to NACKs"),
    ("plis_sent", "relay_plis_sent", "keyframe requests (PLI) sent upstream to publishers"),
    (
        "keyframe_requests_received",
        "relay_keyframe_requests_received",
        "keyframe requests (PLI/FIR) received from subscribers",
    ),
)


class MediaNodeCollector(Collector):
    def __init__(
        self, node: LocalMediaNode, uploads: RecordingUploads | None = None, node_name: str = ""
    ) -> None:
        self.node = node
        self.uploads = uploads
        self.node_name = node_name

    def collect(self) -> Iterable[Metric]:
        labels = ["node"]
        node = [self.node_name]
        totals = self.node.relay_totals()
        for attribute, name, doc in RELAY_COUNTERS:
            family = CounterMetricFamily(f"teleconsult_{name}", doc, labels=labels)
            family.add_metric(node, getattr(totals, attribute))
            yield family
        consults, participants, tracks = self.node.load()
        for name, doc, value in (
            ("relay_consults", "consults on this node's relay now", consults),
            ("relay_participants", "participants connected to this node's relay now", participants),
            ("relay_streams", "tracks published to this node's relay now", tracks),
            (
                "recording_tracks",
                "tracks being recorded on this node now",
                self.node.recording_tracks(),
            ),
        ):
            gauge = GaugeMetricFamily(f"teleconsult_{name}", doc, labels=labels)
            gauge.add_metric(node, value)
            yield gauge
        counts = self.node.recording_counts
        for name, doc, value in (
            ("recording_tracks_finalized", "recorded tracks finalized", counts.tracks_finalized),
            (
                "recording_finalized_bytes",
                "bytes of finalized recording files",
                counts.bytes_finalized,
            ),
            (
                "recording_tracks_uploaded",
                "finished files put in the bucket, SHA-256 checked",
                counts.tracks_uploaded,
            ),
            (
                "recording_uploaded_bytes",
                "bytes put in the bucket, SHA-256 checked",
                counts.bytes_uploaded,
            ),
        ):
            counter = CounterMetricFamily(f"teleconsult_{name}", doc, labels=labels)
            counter.add_metric(node, value)
            yield counter
        failures = CounterMetricFamily(
            "teleconsult_recording_failures",
            "recording failures by reason: storage_full, finalize (left for recovery), upload "
            "(the bucket did not take a finished file; kept and retried), mismatch",
            labels=["node", "reason"],
        )
        for reason in ("storage_full", "finalize", "upload", "mismatch"):
            failures.add_metric([self.node_name, reason], counts.failures.get(reason, 0))
        yield failures
        if self.uploads is not None:
            waiting = GaugeMetricFamily(
                "teleconsult_recording_uploads_waiting",
                "finished recordings kept locally until the bucket takes them",
                labels=labels,
            )
            waiting.add_metric(node, len(self.uploads.pending()))
            yield waiting
            down = GaugeMetricFamily(
                "teleconsult_recording_bucket_up",
                "1 when the last upload to the recordings' bucket succeeded (or none failed)",
                labels=labels,
            )
            down.add_metric(node, 0 if self.uploads.down_since is not None else 1)
            yield down
