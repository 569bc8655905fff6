"""A consult on a hostile network: what the voice and the picture go through, and how fast the
call comes back. The server and two real Chromium pages (exam room, specialist) run inside a
network namespace of their own (tests/support/netns.py), impaired as the e2e tests do
(tests/support/impairments.py): a bandwidth cap on its loopback (tc tbf), random loss and
outages (nftables). Needs root. Prints a table, or one JSON object with `--json`.

For each impairment and run: a fresh consult on the direct path (p2p), video playing both ways;
then the impairment for its time, then the clean network again. Measured on the pages:

- **to audio-only**: seconds from the impairment's start until the exam room's page sends
  audio only (its adaptation, docs/network.md); "-" if it never did during the impairment.
- **concealed**: the share of the audio the specialist's page received during the impairment
  that was concealment (`concealedSamples / totalSamplesReceived` of `inbound-rtp`): the
  share of 20 ms frames the listener did not really hear, lost or late.
- **fps**: frames per second the specialist's page showed of the exam room's camera (or, for
  `ultrasound-500`, of its second source) during the impairment's second half.
- **recovery**: seconds from the impairment's end until both pages send video again and their
  remote videos play.

    .venv/bin/python bench/network.py                    # every impairment, 3 runs each
    .venv/bin/python bench/network.py --runs 1 --only cap-150 loss-20
    .venv/bin/python bench/network.py --json > report.json
    .venv/bin/python bench/network.py --table-from report.json

Each figure is the median over the runs. A cap on `lo` shapes everything in the namespace:
both pages' media in both directions share it (docs/network.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _use_repo_packages() -> None:
    """Put the repository root first on sys.path (this folder's `signaling.py` would shadow
    the `signaling` package otherwise)."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or os.curdir).resolve()) != here]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_use_repo_packages()

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.network import (  # noqa: E402
    VIDEOS_PLAY_SECOND,
    Call,
    browser_inside,
    link,
    media_mode,
    new_person,
    share_screen,
    start_call,
    wait_for_mode,
    wait_until_video_plays,
)
from tests.support.impairments import Impairments  # noqa: E402
from tests.support.netns import NetworkNamespace  # noqa: E402
from tests.support.netns_server import NamespacedServer  # noqa: E402

FRAMES = """(source) => [...document.querySelectorAll(
    `[data-testid="remote-video"][data-source="${source}"]`)]
  .reduce((n, v) => n + (v.getVideoPlaybackQuality?.().totalVideoFrames ?? 0), 0)"""


@dataclass(frozen=True)
class Impairment:
    name: str
    what: str
    start: Callable[[Impairments], None]
    seconds: float
    second_source: bool = False


IMPAIRMENTS = [
    Impairment("cap-150", "150 kbit/s cap", lambda i: i.cap(150), 20),
    Impairment("ultrasound-500", "500 kbit/s cap, second source", lambda i: i.cap(500), 20, True),
    Impairment("loss-5", "5 % random loss", lambda i: i.loss(5), 15),
    Impairment("loss-20", "20 % random loss", lambda i: i.loss(20), 15),
    Impairment("loss-40", "40 % random loss", lambda i: i.loss(40), 15),
    Impairment("outage-5", "5 s outage", lambda i: i.outage(), 5),
    Impairment("outage-15", "15 s outage", lambda i: i.outage(), 15),
    Impairment("outage-30", "30 s outage", lambda i: i.outage(), 30),
]
RECOVERY_LIMIT_S = 45


def run_once(impair: Impairments, call: Call, imp: Impairment) -> dict[str, Any]:
    """One impairment on a live call; the figures of this run."""
    source = "second" if imp.second_source else "camera"
    if imp.second_source:
        share_screen(call.room)
        call.phone.wait_for_function(VIDEOS_PLAY_SECOND, polling=250, timeout=20_000)
    audio_before = link(call.phone)["audioIn"]
    imp.start(impair)
    started = time.monotonic()
    to_audio_only: float | None = None
    frames_half: int | None = None
    half_at = 0.0
    while (elapsed := time.monotonic() - started) < imp.seconds:
        if to_audio_only is None and media_mode(call.room) == "audio-only":
            to_audio_only = elapsed
        if frames_half is None and elapsed >= imp.seconds / 2:
            frames_half = call.phone.evaluate(FRAMES, source)
            half_at = time.monotonic()
        time.sleep(0.1)  # sampling the page's state while the impairment lasts
    frames_end = call.phone.evaluate(FRAMES, source)
    fps = (frames_end - (frames_half or 0)) / max(0.001, time.monotonic() - half_at)
    audio_after = link(call.phone)["audioIn"]
    impair.clear()
    ended = time.monotonic()
    recovery: float | None
    try:
        for page in (call.room, call.phone):
            wait_for_mode(page, "video", max(0.1, RECOVERY_LIMIT_S - (time.monotonic() - ended)))
        wait_until_video_plays(
            [call.room, call.phone], max(1.0, RECOVERY_LIMIT_S - (time.monotonic() - ended))
        )
        recovery = time.monotonic() - ended
    except Exception:
        recovery = None
    samples = audio_after["samples"] - audio_before["samples"]
    concealed = audio_after["concealed"] - audio_before["concealed"]
    return {
        "to_audio_only_s": to_audio_only,
        "concealed_pct": 100.0 * concealed / samples if samples else 100.0,
        "audio_played_pct": 100.0 * samples / (48_000 * imp.seconds),
        "fps": fps,
        "recovery_s": recovery,
    }


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def measure(names: list[str], runs: int) -> dict[str, Any]:
    chosen = [imp for imp in IMPAIRMENTS if imp.name in names]
    results: dict[str, Any] = {}
    with NetworkNamespace.create("bench-net") as ns:
        impair = Impairments(ns)
        server = NamespacedServer(
            env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"},
            ns=ns,
        )
        with server, sync_playwright() as playwright, browser_inside(playwright, ns) as browser:
            for imp in chosen:
                per_run = []
                for run in range(runs):
                    print(f"{imp.name}: run {run + 1}/{runs}", file=sys.stderr)
                    room, phone = new_person(browser, "desktop"), new_person(browser, "phone")
                    try:
                        call = start_call(server, room, phone)
                        per_run.append(run_once(impair, call, imp))
                    finally:
                        impair.clear()
                        room.close()
                        phone.close()
                    print(f"  {per_run[-1]}", file=sys.stderr)
                results[imp.name] = {
                    "what": imp.what,
                    "seconds": imp.seconds,
                    "runs": per_run,
                    "median": {key: median([r[key] for r in per_run]) for key in per_run[0]},
                }
    return {
        "benchmark": "network",
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "impairments": results,
    }


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def table(report: dict[str, Any]) -> str:
    lines = [
        f"network benchmark: median of {report['runs']} run(s) per impairment",
        "",
        f"{'impairment':<32} {'to audio-only':>13} {'concealed':>10} {'fps':>6} {'recovery':>9}",
    ]
    for result in report["impairments"].values():
        m = result["median"]
        lines.append(
            f"{result['what']:<32} {fmt(m['to_audio_only_s'], ' s'):>13} "
            f"{fmt(m['concealed_pct'], ' %'):>10} {fmt(m['fps']):>6} "
            f"{fmt(m['recovery_s'], ' s'):>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per impairment (median)")
    parser.add_argument(
        "--only", nargs="+", default=[i.name for i in IMPAIRMENTS],
        choices=[i.name for i in IMPAIRMENTS], help="these impairments only",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--table-from", type=Path, help="print the table of a saved --json report")
    args = parser.parse_args()
    if args.table_from:
        print(table(json.loads(args.table_from.read_text())))
        return
    report = measure(args.only, max(1, args.runs))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
