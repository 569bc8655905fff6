"""The relay benchmark's report: headline figures, machine information and the table."""

from __future__ import annotations

import os
import platform
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

DEFINITIONS = {
    "relay_cpu_pct_per_stream": (
        "forwarding relay process CPU (user+system, all threads) in % of one core over the "
        "window, divided by the number of streams; at the largest --streams count"
    ),
    "transcode_cpu_pct_per_stream": (
        "the same for aiortc's decode → MediaRelay → re-encode relay, at the smallest "
        "--transcode-streams count (more streams saturate a small machine)"
    ),
    "relay_added_latency_ms_p50": (
        "p50 over frames of (latency of frame n through the relay - latency of frame n on a "
        "direct peer-to-peer leg from the same publisher clock, sent half a frame later); at the "
        "smallest --streams count (p99 likewise)"
    ),
    "recording_cpu_pct_per_stream": (
        "(relay CPU with the recorder tapping every stream - mean relay CPU of the windows "
        "before and after) / streams, in % of one core; at the largest --streams count"
    ),
    "recording_loop_cpu_pct_per_stream": (
        "CPU time of the relay's event-loop thread inside the recorder's add_rtp (time.thread_time "
        "around each call) during the recording window, per stream: the recorder's in-line cost, "
        "without its executor work; at the largest --streams count"
    ),
    "stream": "one published 720p video track forwarded to one subscriber",
    "latency": (
        "wall time (time.time(), one machine) from the publisher handing a frame's first RTP "
        "packet to SRTP until the first packet of that frame reaches the subscriber's receiver"
    ),
}


def machine_info() -> dict[str, Any]:
    import aiortc
    import av

    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                model,
            )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "cpu_freq_mhz": round(psutil.cpu_freq().current) if psutil.cpu_freq() else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "pyav": av.__version__,
        "ffmpeg_libavcodec": _libavcodec_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _libavcodec_version() -> str | None:
    try:
        import av

        version = av.library_versions.get("libavcodec")
        return None if version is None else ".".join(map(str, version))
    except Exception:
        return None


def _complete(
    runs: list[dict[str, Any]], mode: str, media: str | None = "video", variant: str | None = None
) -> list[dict[str, Any]]:
    return sorted(
        (
            r
            for r in runs
            if r.get("mode") == mode
            and "plain" in r
            and (media is None or r.get("media", "video") == media)
            and r.get("variant") == variant
        ),
        key=lambda r: int(r["streams"]),
    )


def us_per_packet(run: dict[str, Any] | None) -> float | None:
    """CPU microseconds of the relay (or Janus) per packet its subscribers received (video,
    RTX and audio): comparable when a starved machine made the publishers send fewer frames."""
    if run is None or "plain" not in run:
        return None
    plain = run["plain"]
    got = plain.get("subscribers", {}).get("relay", {})
    packets = sum(int(got.get(k, 0)) for k in ("packets", "rtx_packets", "audio_packets"))
    if not packets:
        return None
    cpu_s = plain["cpu_pct_of_one_core"]["relay"] / 100 * plain["seconds"]
    return round(cpu_s / packets * 1e6, 1)


def comparison(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relay beside Janus: CPU % of one core per stream at each (media, streams), and the ratio."""
    rows = []
    medias = dict.fromkeys(r.get("media", "video") for r in runs if r.get("mode") == "forward")
    for media in medias:
        janus = {r["streams"]: r for r in _complete(runs, "janus", media)}
        for run in _complete(runs, "forward", media):
            n = run["streams"]
            relay_pct = run["plain"]["relay_cpu_pct_per_stream"]
            anchor = janus.get(n)
            janus_pct = None if anchor is None else anchor["plain"]["relay_cpu_pct_per_stream"]
            relay_us, janus_us = us_per_packet(run), us_per_packet(anchor)
            rows.append(
                {
                    "media": media,
                    "streams": n,
                    "relay_cpu_pct_per_stream": relay_pct,
                    "janus_cpu_pct_per_stream": janus_pct,
                    "ratio": round(relay_pct / janus_pct, 2) if janus_pct else None,
                    "relay_cpu_us_per_packet": relay_us,
                    "janus_cpu_us_per_packet": janus_us,
                    "ratio_per_packet": round(relay_us / janus_us, 2)
                    if relay_us and janus_us
                    else None,
                    "relay_frames_per_s_per_stream": _get(
                        run, "plain", "subscribers", "relay", "frames_per_s_per_leg"
                    ),
                    "janus_frames_per_s_per_stream": _get(
                        anchor, "plain", "subscribers", "relay", "frames_per_s_per_leg"
                    ),
                    "relay_added_latency_ms_p50": _get(run, "plain", "latency", "added_p50_ms"),
                    "janus_added_latency_ms_p50": _get(anchor, "plain", "latency", "added_p50_ms"),
                    "relay_loss_pct": _get(run, "plain", "subscribers", "relay", "loss_pct"),
                    "janus_loss_pct": _get(anchor, "plain", "subscribers", "relay", "loss_pct"),
                    "event_loop": run.get("event_loop"),
                }
            )
    return rows


def variant_comparison(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant beside the default relay: CPU % per stream at each (media, streams)."""
    names = dict.fromkeys(r["variant"] for r in runs if r.get("variant"))
    rows = []
    for name in names:
        for media in dict.fromkeys(r.get("media", "video") for r in runs):
            default = {r["streams"]: r for r in _complete(runs, "forward", media)}
            for run in _complete(runs, "forward", media, name):
                base = default.get(run["streams"])
                a = None if base is None else base["plain"]["relay_cpu_pct_per_stream"]
                b = run["plain"]["relay_cpu_pct_per_stream"]
                rows.append(
                    {
                        "variant": name,
                        "media": media,
                        "streams": run["streams"],
                        "default_cpu_pct_per_stream": a,
                        "variant_cpu_pct_per_stream": b,
                        "default_added_latency_ms_p50": _get(
                            base, "plain", "latency", "added_p50_ms"
                        ),
                        "variant_added_latency_ms_p50": _get(
                            run, "plain", "latency", "added_p50_ms"
                        ),
                    }
                )
    return rows


def recording_cost(run: dict[str, Any]) -> float | None:
    if "recording" not in run:
        return None
    with_rec = float(run["recording"]["cpu_pct_of_one_core"]["relay"])
    without = [
        float(run[w]["cpu_pct_of_one_core"]["relay"]) for w in ("plain", "after") if w in run
    ]
    return round((with_rec - sum(without) / len(without)) / int(run["streams"]), 2)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures (top-level numbers) and which run each comes from."""
    forward, transcode = _complete(runs, "forward"), _complete(runs, "transcode")
    out: dict[str, Any] = {
        "relay_cpu_pct_per_stream": None,
        "transcode_cpu_pct_per_stream": None,
        "relay_added_latency_ms_p50": None,
        "relay_added_latency_ms_p99": None,
        "recording_cpu_pct_per_stream": None,
        "recording_loop_cpu_pct_per_stream": None,
        "figures_at_streams": {},
        "relay_vs_janus": comparison(runs),
        "relay_variants": variant_comparison(runs),
        "definitions": DEFINITIONS,
    }
    at = out["figures_at_streams"]
    if forward:
        top = forward[-1]
        out["relay_cpu_pct_per_stream"] = top["plain"]["relay_cpu_pct_per_stream"]
        at["relay_cpu_pct_per_stream"] = top["streams"]
        recorded = [r for r in forward if "recording" in r]
        if recorded:
            out["recording_cpu_pct_per_stream"] = recording_cost(recorded[-1])
            out["recording_loop_cpu_pct_per_stream"] = recorded[-1]["recording"][
                "recorder_loop_cpu_pct_per_stream"
            ]
            at["recording_cpu_pct_per_stream"] = recorded[-1]["streams"]
        timed = [r for r in forward if r["plain"]["latency"].get("added_p50_ms") is not None]
        if timed:
            latency = timed[0]["plain"]["latency"]
            out["relay_added_latency_ms_p50"] = latency["added_p50_ms"]
            out["relay_added_latency_ms_p99"] = latency["added_p99_ms"]
            at["relay_added_latency_ms_p50"] = timed[0]["streams"]
        out["relay_cpu_pct_per_stream_by_streams"] = {
            str(r["streams"]): r["plain"]["relay_cpu_pct_per_stream"] for r in forward
        }
        if len(forward) > 1:
            first, last = forward[0], forward[-1]
            slope = (
                last["plain"]["cpu_pct_of_one_core"]["relay"]
                - first["plain"]["cpu_pct_of_one_core"]["relay"]
            ) / (last["streams"] - first["streams"])
            out["relay_cpu_pct_marginal_per_stream"] = round(slope, 2)
    if transcode:
        out["transcode_cpu_pct_per_stream"] = transcode[0]["plain"]["relay_cpu_pct_per_stream"]
        at["transcode_cpu_pct_per_stream"] = transcode[0]["streams"]
        out["transcode_cpu_pct_per_stream_by_streams"] = {
            str(r["streams"]): r["plain"]["relay_cpu_pct_per_stream"] for r in transcode
        }
    return out


# ---- the table -------------------------------------------------------------------------------


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _fmt(value: Any, spec: str = "{}") -> str:
    return "—" if value is None else spec.format(value)


def table(report: dict[str, Any]) -> str:
    runs = report["runs"]
    cfg, machine, clip = report["config"], report["machine"], report["clip"]

    def row(window: str, *path: str, spec: str = "{}") -> list[str]:
        return [_fmt(_get(r, window, *path), spec) for r in runs]

    def pair(window: str, a: tuple[str, ...], b: tuple[str, ...], spec: str = "{}") -> list[str]:
        return [
            f"{_fmt(_get(r, window, *a), spec)} / {_fmt(_get(r, window, *b), spec)}" for r in runs
        ]

    def loss(window: str) -> list[str]:
        out = []
        for r in runs:
            s = _get(r, window, "subscribers", "relay") or {}
            out.append(
                "—"
                if not s
                else f"{s.get('lost', 0)} ({_fmt(s.get('loss_pct'), '{:.2f}')}%) / "
                f"{s.get('recovered', 0)}"
            )
        return out

    lat = ("latency",)
    rows: list[tuple[str, list[str]]] = [
        (
            "machine load average (1 min) before",
            [_fmt(_get(r, "load_average_before") and r["load_average_before"][0]) for r in runs],
        ),
        ("connect until media flows s", [_fmt(r.get("connect_s")) for r in runs]),
        ("relay CPU % of one core", row("plain", "cpu_pct_of_one_core", "relay")),
        ("relay CPU % per stream", row("plain", "relay_cpu_pct_per_stream")),
        (
            "  relay CPU % per 1 s: min / max",
            [
                "—"
                if not _get(r, "plain", "relay_cpu_pct_each_second")
                else f"{min(r['plain']['relay_cpu_pct_each_second'])} / "
                f"{max(r['plain']['relay_cpu_pct_each_second'])}"
                for r in runs
            ],
        ),
        (
            "publishers / subscribers CPU %",
            pair(
                "plain",
                ("cpu_pct_of_one_core", "publishers"),
                ("cpu_pct_of_one_core", "subscribers"),
            ),
        ),
        ("machine busy % of all cores", row("plain", "machine_busy_pct_of_all_cores")),
        ("relay RSS MiB", row("plain", "relay_rss_mib")),
        (
            "relay latency p50 / p99 ms",
            pair("plain", (*lat, "relay", "p50_ms"), (*lat, "relay", "p99_ms")),
        ),
        (
            "direct latency p50 / p99 ms",
            pair("plain", (*lat, "direct", "p50_ms"), (*lat, "direct", "p99_ms")),
        ),
        (
            "added by the relay, per frame p50 / p99 ms",
            pair("plain", (*lat, "added_p50_ms"), (*lat, "added_p99_ms")),
        ),
        (
            "  relay - direct percentiles p50 / p99 ms",
            pair(
                "plain",
                (*lat, "percentile_difference_p50_ms"),
                (*lat, "percentile_difference_p99_ms"),
            ),
        ),
        ("relay latency max ms", row("plain", *lat, "relay", "max_ms")),
        (
            "subscribers: Mbit/s per stream",
            row("plain", "subscribers", "relay", "mbit_per_s_per_leg"),
        ),
        (
            "subscribers: frames/s per stream",
            row("plain", "subscribers", "relay", "frames_per_s_per_leg"),
        ),
        ("subscribers: packets received", row("plain", "subscribers", "relay", "packets")),
        (
            "subscribers: MB received",
            [
                _fmt(
                    (_get(r, "plain", "subscribers", "relay", "bytes") or 0) / 1e6
                    if _get(r, "plain", "subscribers", "relay", "bytes") is not None
                    else None,
                    "{:.1f}",
                )
                for r in runs
            ],
        ),
        ("subscribers: lost (%) / recovered by RTX", loss("plain")),
        (
            "subscribers: keyframes received",
            row("plain", "subscribers", "relay", "keyframes_complete"),
        ),
        ("publishers: packets sent", row("plain", "publishers", "relay", "packets")),
        (
            "relay: packets in / out",
            pair("plain", ("relay_counters", "packets_in"), ("relay_counters", "packets_out")),
        ),
        (
            "relay: MB out",
            [
                _fmt(_get(r, "plain", "relay_counters", "bytes_out"), "{}")
                if _get(r, "plain", "relay_counters", "bytes_out") is None
                else f"{r['plain']['relay_counters']['bytes_out'] / 1e6:.1f}"
                for r in runs
            ],
        ),
        (
            "publishers: NACKed packets / keyframe requests",
            pair(
                "plain",
                ("publishers", "relay", "nacked"),
                ("publishers", "relay", "keyframe_requests"),
            ),
        ),
        ("with recorder: relay CPU %", row("recording", "cpu_pct_of_one_core", "relay")),
        ("after recorder: relay CPU %", row("after", "cpu_pct_of_one_core", "relay")),
        ("with recorder: relay CPU % per stream", row("recording", "relay_cpu_pct_per_stream")),
        ("recording cost % of one core per stream", [_fmt(recording_cost(r)) for r in runs]),
        (
            "  of which on the relay's event loop",
            row("recording", "recorder_loop_cpu_pct_per_stream"),
        ),
        (
            "with recorder: relay latency p50 / p99 ms",
            pair("recording", (*lat, "relay", "p50_ms"), (*lat, "relay", "p99_ms")),
        ),
        (
            "with recorder: added per frame p50 / p99 ms",
            pair("recording", (*lat, "added_p50_ms"), (*lat, "added_p99_ms")),
        ),
        ("with recorder: lost (%) / recovered", loss("recording")),
        ("recorded MB (files)", [_recorded(r) for r in runs]),
        (
            "problems (see JSON)",
            [str(len(r.get("problems", [])) + (1 if r.get("aborted") else 0)) for r in runs],
        ),
        ("wall time of the run s", [_fmt(r.get("wall_s")) for r in runs]),
    ]
    width = max(len(name) for name, _ in rows) + 2
    cols = [max(12, *(len(v[i]) for _, v in rows)) + 2 for i in range(len(runs))]
    header = "".ljust(width) + "".join(
        f"{_title(r)}".rjust(c) for r, c in zip(runs, cols, strict=True)
    )
    lines = [
        "teleconsult relay benchmark",
        f"machine: {machine['cpus']} x {machine['cpu_model']}, Python {machine['python']}, "
        f"aiortc {machine['aiortc']}, PyAV {machine['pyav']}; publishers, relay and "
        "subscribers share it",
        f"clip: {clip['width']}x{clip['height']}@{clip['fps']} VP8, "
        f"{clip['actual_bitrate_bps'] / 1e6:.2f} Mbit/s, keyframe every "
        f"{clip['keyframe_every_frames']} frames (and on request), pre-encoded",
        f"topology: {cfg['topology']}; window {cfg['window_s']} s after {cfg['warmup_s']} s "
        f"warm-up; CPU in % of one core",
        "",
        header,
    ]
    for name, values in rows:
        lines.append(
            name.ljust(width) + "".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
        )
    lines += [
        "",
        f"relay CPU per stream (forwarding, {_at(report, 'relay_cpu_pct_per_stream')}): "
        f"{_fmt(report.get('relay_cpu_pct_per_stream'))} % of one core"
        + (
            f"; marginal {report['relay_cpu_pct_marginal_per_stream']} %/stream"
            if report.get("relay_cpu_pct_marginal_per_stream") is not None
            else ""
        ),
        f"transcoding relay CPU per stream ({_at(report, 'transcode_cpu_pct_per_stream')}): "
        f"{_fmt(report.get('transcode_cpu_pct_per_stream'))} % of one core",
        f"latency added by the relay ({_at(report, 'relay_added_latency_ms_p50')}): "
        f"p50 {_fmt(report.get('relay_added_latency_ms_p50'))} ms, "
        f"p99 {_fmt(report.get('relay_added_latency_ms_p99'))} ms",
        f"recording cost per stream ({_at(report, 'recording_cpu_pct_per_stream')}): "
        f"{_fmt(report.get('recording_cpu_pct_per_stream'))} % of one core (difference of "
        f"windows); {_fmt(report.get('recording_loop_cpu_pct_per_stream'))} % measured inside "
        "the recorder on the event loop",
    ]
    comparison_lines = comparison_table(comparison(runs))  # recomputed: older reports too
    if comparison_lines:
        lines += ["", *comparison_lines]
    for v in report.get("relay_variants") or []:
        lines.append(
            f"variant {v['variant']} ({v['media']} x{v['streams']}): relay CPU % per stream "
            f"{_fmt(v['variant_cpu_pct_per_stream'])} against "
            f"{_fmt(v['default_cpu_pct_per_stream'])} by default; added p50 "
            f"{_fmt(v['variant_added_latency_ms_p50'])} against "
            f"{_fmt(v['default_added_latency_ms_p50'])} ms"
        )
    lines += profile_lines(runs)
    for r in runs:
        problems = ([r["aborted"]] if r.get("aborted") else []) + r.get("problems", [])
        for role, final in (r.get("final") or {}).items():
            for sample in _get(final, "log_problems", "samples") or []:
                problems.append(f"{role} log: {sample}")
        if problems:
            lines += ["", f"{_title(r)} — problems:", *(f"  {p[:300]}" for p in problems[:10])]
    for s in report.get("skipped", []):
        lines.append(
            f"skipped: {s['mode']} {s.get('media', 'video')} x{s['streams']} ({s['skipped']})"
        )
    lines += ["", f"total wall time: {report['wall_s']:.1f} s"]
    return "\n".join(lines)


def _title(run: dict[str, Any]) -> str:
    media = "" if run.get("media", "video") == "video" else "+opus"
    variant = f"[{run['variant']}]" if run.get("variant") else ""
    return f"{run['mode']}{variant}{media} x{run['streams']}"


def comparison_table(rows: list[dict[str, Any]]) -> list[str]:
    """The relay beside Janus, one line per (media, streams)."""
    if not rows:
        return []
    lines = [
        "relay beside Janus (same publishers and subscribers, same run), CPU % of one core "
        "per stream:",
        f"  {'media':<11}{'streams':>8}{'relay':>8}{'Janus':>8}{'ratio':>7}"
        f"{'us/packet relay / Janus':>26}{'ratio':>7}{'frames/s':>16}"
        f"{'added p50 ms':>15}{'loss %':>15}",
    ]
    for r in rows:
        latency = (
            f"{_fmt(r['relay_added_latency_ms_p50'])} / {_fmt(r['janus_added_latency_ms_p50'])}"
        )
        loss = f"{_fmt(r['relay_loss_pct'])} / {_fmt(r['janus_loss_pct'])}"
        per_packet = f"{_fmt(r['relay_cpu_us_per_packet'])} / {_fmt(r['janus_cpu_us_per_packet'])}"
        fps = (
            f"{_fmt(r['relay_frames_per_s_per_stream'])} / "
            f"{_fmt(r['janus_frames_per_s_per_stream'])}"
        )
        lines.append(
            f"  {r['media']:<11}{r['streams']:>8}{_fmt(r['relay_cpu_pct_per_stream']):>8}"
            f"{_fmt(r['janus_cpu_pct_per_stream']):>8}{_fmt(r['ratio']):>7}"
            f"{per_packet:>26}{_fmt(r['ratio_per_packet']):>7}{fps:>16}{latency:>15}{loss:>15}"
        )
    lines.append(
        "  (relay / Janus in each pair of columns; us/packet: CPU per packet the subscribers "
        "received; frames/s per stream at the subscribers)"
    )
    return lines


def profile_lines(runs: list[dict[str, Any]], top: int = 12) -> list[str]:
    lines: list[str] = []
    for r in runs:
        prof = r.get("profile")
        if not prof:
            continue
        lines += ["", f"{_title(r)} — relay profile (py-spy, {prof.get('samples', 0)} samples):"]
        if "error" in prof:
            lines.append(f"  {prof['error']}")
            continue
        lines.append(f"  {'self %':>7}  frame")
        lines += [f"  {pct:>7}  {name}" for name, pct in prof["self_pct"][:top]]
        lines.append(f"  {'incl. %':>7}  frame")
        lines += [f"  {pct:>7}  {name}" for name, pct in prof["inclusive_pct"][:top]]
    return lines


def _at(report: dict[str, Any], key: str) -> str:
    n = report.get("figures_at_streams", {}).get(key)
    return "no run" if n is None else f"at {n} stream{'s' if n != 1 else ''}"


def _recorded(run: dict[str, Any]) -> str:
    done = run.get("recording_finished")
    if not isinstance(done, dict) or "bytes" not in done:
        return "—"
    return f"{done['bytes'] / 1e6:.1f} ({done.get('files', '?')})"
