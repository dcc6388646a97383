"""Process accounting for the benchmark, from Linux's /proc: a process tree, its CPU time, the
whole machine's busy time, and peak resident memory."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """The pid and its descendants (uvicorn's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of the processes (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, over all cores (Linux /proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


class CpuMeter:
    """How many cores a process tree (the server) and the whole machine kept busy during one
    phase."""

    def __init__(self, pid: int) -> None:
        self.pids = process_tree(pid)
        self.started = time.perf_counter()
        self.server = cpu_seconds(self.pids)
        self.machine = machine_busy_seconds()

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        return {
            "server": round((cpu_seconds(self.pids) - self.server) / elapsed, 2),
            "machine": round((machine_busy_seconds() - self.machine) / elapsed, 2),
        }


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
