"""A garbage-collection probe for a server under the benchmark (not part of the server).

Put this folder first on the server's `PYTHONPATH` (`bench/signaling.py --server-env
PYTHONPATH=bench/gc_probe --server-env GC_PROBE_LOG=/tmp/gc.jsonl`): Python imports
`sitecustomize` at start-up in every process with that path, and this one

- with `GC_PROBE_LOG=FILE`, appends one JSON line per collection to FILE: the process, the
  generation, when it started (`time.monotonic()`), how long it took in wall time (`ms`: what
  the event loop waited, including any time the process was not scheduled) and in the
  thread's CPU time (`cpu_ms`: the collection's own work), and what it collected and found
  uncollectable (`gc.callbacks`);
- with `GC_PROBE_FREEZE_AFTER_S=N`, N seconds after start-up runs one full collection and
  `gc.freeze()`: what the server built at start-up moves to the permanent generation, which
  later collections never walk;
- with `GC_PROBE_THRESHOLD=a,b,c`, sets `gc.set_threshold(a, b, c)`.

Nothing here changes what the server does, only when Python collects; the figures of a run
with it are compared with a run without it in the same benchmark (bench/README.md).
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from typing import Any

_log_path = os.environ.get("GC_PROBE_LOG")
_started: dict[int, tuple[float, float]] = {}


def _record(phase: str, info: dict[str, Any]) -> None:
    generation = int(info.get("generation", -1))
    now, cpu = time.monotonic(), time.thread_time()
    if phase == "start":
        _started[generation] = (now, cpu)
        return
    began, cpu_began = _started.pop(generation, (now, cpu))
    line = {
        "pid": os.getpid(),
        "gen": generation,
        "at": round(began, 4),
        "ms": round((now - began) * 1000, 3),
        "cpu_ms": round((cpu - cpu_began) * 1000, 3),
        "collected": info.get("collected"),
        "uncollectable": info.get("uncollectable"),
    }
    assert _log_path is not None
    with open(_log_path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _freeze_later(seconds: float) -> None:
    def freeze() -> None:
        gc.collect()
        gc.freeze()

    timer = threading.Timer(seconds, freeze)
    timer.daemon = True
    timer.start()


if _log_path:
    gc.callbacks.append(_record)
if os.environ.get("GC_PROBE_THRESHOLD"):
    a, b, c = (int(x) for x in os.environ["GC_PROBE_THRESHOLD"].split(","))
    gc.set_threshold(a, b, c)
if os.environ.get("GC_PROBE_FREEZE_AFTER_S"):
    _freeze_later(float(os.environ["GC_PROBE_FREEZE_AFTER_S"]))
