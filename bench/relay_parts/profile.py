"""`--profile`: where the relay process spends its CPU, from py-spy's samples.

py-spy (`pip install py-spy`) samples the relay process from outside for one window, without
pausing it (`--nonblocking`), 250 times a second, and writes collapsed stacks; this module
turns them into the top frames by self time (the function the sample was in) and by inclusive
time (the function was anywhere on the stack), in % of the samples. Idle samples (the loop
waiting in epoll with nothing to do) are left out by py-spy, so the percentages are shares of
the time the relay was busy.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found is None:
        here = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "py-spy"
        found = str(here) if here.exists() else None
    return found


def _frame(raw: str) -> str:
    """`function (path/to/file.py:123)` -> `function (file.py)`: one entry per function."""
    name = _LINE.sub(")", raw.strip())
    if "(" in name:
        function, _, where = name.partition(" (")
        return f"{function} ({Path(where.rstrip(')')).name})"
    return name


_OUTER_FILES = ("(spawn.py)", "(process.py)", "(runners.py)", "(<string>)")
_OUTER_FUNCTIONS = {"run_forever", "run_until_complete", "child_main", "<module>", "_run_once"}


def _outer(frame: str) -> bool:
    """The process's entry and the loop's own run functions: on every stack, nothing to learn."""
    function = frame.split(" (", 1)[0].rsplit(".", 1)[-1]
    return frame.endswith(_OUTER_FILES) or function in _OUTER_FUNCTIONS


def top_frames(collapsed: str, top: int = 15) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        # py-spy's first frame is the thread ("process 123:\"python\"" / thread name).
        frames = [f for f in frames if not f.startswith(("process ", "thread ")) and not _outer(f)]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "self_pct": share(self_time), "inclusive_pct": share(inclusive)}


async def profile(pid: int, seconds: float, rate: int = 250) -> dict[str, Any]:
    """Sample process `pid` for `seconds`; its top frames (or why there are none)."""
    tool = py_spy()
    if tool is None:
        return {"error": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    with tempfile.TemporaryDirectory(prefix="teleconsult-bench-profile-") as tmp:
        out = Path(tmp) / "stacks.txt"
        process = await asyncio.create_subprocess_exec(
            tool,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0 or not out.exists():
            text = output.decode(errors="replace").strip().splitlines()[-3:]
            return {"error": f"py-spy failed ({process.returncode}): {' / '.join(text)}"}
        return top_frames(out.read_text())
