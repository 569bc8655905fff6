"""Summarize a `GC_PROBE_LOG` file (bench/gc_probe/sitecustomize.py): per process and
generation, the number of collections, their total and longest duration (wall time), their CPU
time in all and at most, and the longest ones.

    .venv/bin/python bench/gc_probe/summary.py /tmp/gc.jsonl [--json]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def summarize(path: Path) -> dict[str, Any]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by[(line["pid"], line["gen"])].append(line)
    out: dict[str, Any] = {}
    for (pid, gen), items in sorted(by.items()):
        durations = sorted(i["ms"] for i in items)
        cpu = [i["cpu_ms"] for i in items if "cpu_ms" in i]
        out[f"pid {pid} gen {gen}"] = {
            "count": len(items),
            "total_ms": round(sum(durations), 1),
            "cpu_total_ms": round(sum(cpu), 1) if cpu else None,
            "cpu_max_ms": max(cpu) if cpu else None,
            "max_ms": durations[-1],
            "over_10_ms": sum(1 for d in durations if d > 10),
            "longest_ms": durations[-5:][::-1],
        }
    return out


def main() -> int:
    report = summarize(Path(sys.argv[1]))
    if "--json" in sys.argv:
        print(json.dumps(report))
    else:
        for key, figures in report.items():
            print(key, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
