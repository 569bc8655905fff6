"""Call start-up benchmark: from opening a call link to the first frame of the other person's
video, in real Chromium, step by step.

It starts one `teleconsult serve` (`tests/support/server.py`: demo data, a free loopback port, a
temporary DATA_DIR), launches headless Chromium with the e2e suite's flags (fake camera and
microphone, loopback host candidates, nothing off the machine: `tests/e2e/browser.py`) and, per
run, books and accepts a fresh consult over REST and opens both of its links at the same moment,
as the demo prints them: the exam room's (`/exam-room.html#consult=…&token=…`, 1280 x 800) and the
specialist's (`/specialist.html#…`, a 390 x 844 phone), each in a fresh browser context. Each page
marks its steps with performance.now() (`web_client/js/timings.js`, `window.teleconsultTimings`):

    link_start         the call link's early start running (camera, socket, join under way)
    script             the page's modules loaded and running
    token              GET /api/me answered
    socket_connected   the socket.io connection up
    media              camera and microphone open
    join_acked         the server acknowledged `join`
    ice_connected      the first peer connection connected
    first_remote_frame the other side's first video frame presented (requestVideoFrameCallback)

All times are milliseconds since the page was opened (the navigation's time origin). The
headline, page-open → first remote frame, is the benchmark's own requestVideoFrameCallback on
the remote <video> (injected before the page's scripts), so that it measures a version of the
client without these marks (`--server-tree`) the same way; the page's own `first_remote_frame`
agrees with it within a frame. A warm-up
run (not counted) goes first; then `--runs` runs (default 7), and the table shows, per page, the
median of each mark and of page-open → first remote frame, with the min and max of the latter,
the median of two steps (join acked → ICE connected, ICE connected → first remote frame; each
run's difference) and the size of the first remote frame (call/first-frames.js: the camera's
first frames go out at a size the start bitrate carries; 320x180 when the encoder dropped the
first 1280x720 frames and shrank the camera).
The 5-minute load average before and after is reported: clients, browser and server share the
machine.

    .venv/bin/python bench/startup.py                      # table
    .venv/bin/python bench/startup.py --json               # one JSON object on stdout
    .venv/bin/python bench/startup.py --table-from r.json  # table of a saved report

`--server-tree PATH` runs the server (and so the web client it serves) from another checkout,
e.g. `git archive` of an older commit unpacked in /tmp, to compare before and after; its call
pages' bundles are built there first (`python -m teleconsult.web_bundle --if-stale`), as `make`
would, when it has a bundler. Progress
goes to stderr. Nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[1]


def _use_repo_packages() -> None:
    """Put the repository root first on sys.path (this folder's `signaling.py` would shadow
    the `signaling` package otherwise); project modules are imported inside functions."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or os.curdir).resolve()) != here]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_use_repo_packages()

MARKS = (
    "link_start",
    "script",
    "token",
    "socket_connected",
    "media",
    "join_acked",
    "ice_connected",
    "first_remote_frame",
)
# Steps between two marks, median over the runs of each run's difference.
STEPS = (
    ("join_acked", "ice_connected"),
    ("ice_connected", "first_remote_frame"),
)
PAGES = {
    # page → (demo user, browser context kind)
    "exam_room": ("doctor.a", "desktop"),
    "specialist": ("obstetrician", "phone"),
}
PATHS = {"exam_room": "/exam-room.html", "specialist": "/specialist.html"}
# The benchmark's own watch for the first remote frame, injected before any page script: the
# same measure for a version of the client without web_client/js/timings.js (--server-tree).
WATCH_FIRST_FRAME = """(() => {
  const seen = new WeakSet();
  new MutationObserver(() => {
    if (window.__benchFirstFrame) return;
    for (const video of document.querySelectorAll('video[data-testid="remote-video"]')) {
      if (seen.has(video)) continue;
      seen.add(video);
      video.requestVideoFrameCallback((now, meta) => {
        if (window.__benchFirstFrame) return;
        window.__benchFirstFrame = performance.now();
        window.__benchFirstFrameSize = `${meta.width}x${meta.height}`;
      });
    }
  }).observe(document, { childList: true, subtree: true });
})()"""
# Resolves with the page's marks once it has shown the other side's first frame; `seen` is the
# benchmark's own measure of that moment (the page's `first_remote_frame`, when it has one).
MARKS_WHEN_SEEN = """() => new Promise((resolve) => {
  const poll = () => {
    if (window.__benchFirstFrame) {
      const marks = { ...(window.teleconsultTimings?.marks ?? {}) };
      resolve({ ...marks, seen: Math.round(window.__benchFirstFrame * 10) / 10,
        size: window.__benchFirstFrameSize });
    } else setTimeout(poll, 20);
  };
  poll();
})"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def one_run(browser: Browser, server: RunningServer, timeout_s: float) -> dict[str, Any]:
    """Open both links of a fresh consult at once; each page's marks."""
    from tests.e2e.browser import CONTEXT_OPTIONS

    consult = await asyncio.to_thread(server.book)
    contexts = []
    pages = {}
    for name, (_, kind) in PAGES.items():
        context = await browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", **CONTEXT_OPTIONS[kind]
        )
        await context.grant_permissions(["camera", "microphone"])
        await context.add_init_script(WATCH_FIRST_FRAME)
        contexts.append(context)
        pages[name] = await context.new_page()
    try:
        links = {
            name: f"{server.url}{PATHS[name]}#consult={consult['id']}&token={server.token(user)}"
            for name, (user, _) in PAGES.items()
        }
        await asyncio.gather(*(pages[n].goto(links[n], wait_until="commit") for n in PAGES))
        marks = await asyncio.wait_for(
            asyncio.gather(*(pages[n].evaluate(MARKS_WHEN_SEEN) for n in PAGES)), timeout_s
        )
        return dict(zip(PAGES, marks, strict=True))
    finally:
        for context in contexts:
            await context.close()
        await asyncio.to_thread(
            server.request,
            "POST",
            f"/api/consults/{consult['id']}/end",
            {},
            server.token("doctor.a"),  # the exam room: no conclusion asked, old servers too
        )


async def measure(server: RunningServer, args: argparse.Namespace) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

    runs: list[dict[str, Any]] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for index in range(args.warmup + args.runs):
            counted = index >= args.warmup
            marks = await one_run(browser, server, args.timeout)
            seen = {n: marks[n]["seen"] for n in PAGES}
            log(
                f"{'run' if counted else 'warm-up'} {index - args.warmup + 1 if counted else ''}: "
                + ", ".join(f"{n} {ms:.0f} ms" for n, ms in seen.items())
            )
            if counted:
                runs.append(marks)
        await browser.close()
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    pages: dict[str, Any] = {}
    for name in PAGES:
        per_mark = {}
        for mark in MARKS:
            values = [r[name][mark] for r in runs if mark in r[name]]
            per_mark[mark] = round(statistics.median(values), 1) if values else None
        totals = [r[name]["seen"] for r in runs]
        per_step = {}
        for start, end in STEPS:
            gaps = [r[name][end] - r[name][start] for r in runs if {start, end} <= r[name].keys()]
            per_step[f"{start}→{end}"] = round(statistics.median(gaps), 1) if gaps else None
        sizes = [r[name].get("size") for r in runs]
        pages[name] = {
            "median_ms": per_mark,
            "median_step_ms": per_step,
            # The other side's first frame as presented, e.g. "480x270": how many runs each.
            "first_frame_size": {size: sizes.count(size) for size in sorted(set(map(str, sizes)))},
            "first_remote_frame_ms": {
                "median": round(statistics.median(totals), 1),
                "min": round(min(totals), 1),
                "max": round(max(totals), 1),
            },
        }
    return pages


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def table(report: dict[str, Any]) -> str:
    pages = report["pages"]
    names = list(pages)
    width = 38
    lines = [
        f"call start-up in Chromium, {report['config']['runs']} runs (+{report['config']['warmup']}"
        f" warm-up), server {report['config']['server']}",
        f"load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in report['load_before'])}"
        f", after: {' / '.join(f'{x:.2f}' for x in report['load_after'])}",
        "",
        f"{'median ms since the page was opened':<{width}}" + "".join(f"  {n:>16}" for n in names),
    ]
    for mark in MARKS:
        cells = []
        for n in names:
            at = pages[n]["median_ms"][mark]
            cells.append(f"  {_ms(at):>16}")
        lines.append(f"{mark:<{width}}" + "".join(cells))
    for step in pages[names[0]].get("median_step_ms", {}):
        cells = [f"  {_ms(pages[n]['median_step_ms'].get(step)):>16}" for n in names]
        lines.append(f"{'  step ' + step:<{width}}" + "".join(cells))
    sizes = [pages[n].get("first_frame_size") for n in names]
    if all(sizes):
        lines.append(
            f"{'first remote frame size (runs)':<{width}}"
            + "".join(
                f"  {', '.join(f'{k} in {v}' for k, v in size.items()):>16}" for size in sizes
            )
        )
    lines.append("")
    for label, key in (("page open → first remote frame, median", "median"), ("  min", "min")):
        lines.append(
            f"{label:<{width}}"
            + "".join(f"  {_ms(pages[n]['first_remote_frame_ms'][key]):>16}" for n in names)
        )
    lines.append(
        f"{'  max':<{width}}"
        + "".join(f"  {_ms(pages[n]['first_remote_frame_ms']['max']):>16}" for n in names)
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs (7; at least 5)")
    parser.add_argument("--warmup", type=int, default=1, help="runs not counted first (1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per run, s (60)")
    parser.add_argument(
        "--server-tree",
        type=Path,
        help="run the server and its web client from this checkout, to compare versions",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--table-from", type=Path, help="print the table of a saved report")
    args = parser.parse_args(argv)
    if args.table_from is None and args.runs < 5:
        parser.error("--runs must be at least 5 (a median of fewer says little)")
    return args


def bundle_server_tree(tree: Path) -> None:
    """Build the other checkout's call-page bundles if it has a bundler and they are stale: a
    `git archive` has no `web_client/dist/`, and without it that server falls back to ~45 module
    files, which would compare the bundle's absence instead of the code."""
    if not (tree / "teleconsult" / "web_bundle.py").exists():
        log(f"{tree}: no teleconsult/web_bundle.py, served as it is")
        return
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "teleconsult.web_bundle", "--if-stale"]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"could not bundle {tree}: {done.stderr.strip()}")
    log(done.stdout.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_from is not None:
        print(table(json.loads(args.table_from.read_text())))
        return 0
    from tests.support.server import REPO as THIS_TREE
    from tests.support.server import RunningServer

    env = {"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    tree = THIS_TREE
    if args.server_tree is not None:
        # `python -m teleconsult` puts its working directory first on sys.path: RunningServer
        # runs it in `tree` (assigning tests.support.server.REPO, as this did before, no longer
        # reaches RunningServer.tree, whose default is bound at import: the "before" side then
        # ran this checkout's server and web client).
        tree = args.server_tree.resolve()
        env["PYTHONPATH"] = str(tree)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        bundle_server_tree(tree)
    else:
        from teleconsult import web_bundle

        web_bundle.ensure_fresh()  # the call pages' bundles, as `make bundle` makes them
    load_before = os.getloadavg()
    started = time.monotonic()
    log(f"starting the server from {tree}")
    with RunningServer(env_overrides=env, tree=tree) as server:
        runs = asyncio.run(measure(server, args))
    report = {
        "benchmark": "startup",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            "runs": args.runs,
            "warmup": args.warmup,
            "server": str(args.server_tree) if args.server_tree else "this checkout",
        },
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.monotonic() - started, 1),
        "pages": summary(runs),
        "runs": runs,
    }
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
