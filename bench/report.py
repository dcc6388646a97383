"""The benchmark's output: the ratios derived from a run, its table, the comparison with a saved
run, and where results are written."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.live import lines as live_lines
from db.settings import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"


def derive(result: dict[str, Any]) -> None:
    """The ratios the issue asks for: canvas p50 over the floor, and p50 per node."""
    derived: dict[str, Any] = {}
    for item in result.get("operations", []):
        if item["operation"] != "canvas" or item["p50_ms"] is None:
            continue
        size = str(item["size"])
        floor = result["floor"].get(size)
        derived[size] = {
            "canvas_p50_ms": item["p50_ms"],
            "floor_p50_ms": floor["p50_ms"] if floor else None,
            "ratio_to_floor": round(item["p50_ms"] / floor["p50_ms"], 2) if floor else None,
            "p50_us_per_node": round(item["p50_ms"] * 1000 / int(size), 2),
            "floor_us_per_node": round(floor["p50_ms"] * 1000 / int(size), 2) if floor else None,
        }
    result["canvas_vs_floor"] = derived
    single = {
        (item["operation"], item["size"]): item["throughput"]
        for item in result.get("operations", [])
    }
    scaling: dict[str, Any] = {}
    for key, items in result.get("scaling", {}).items():
        for item in items:
            base = single.get((item["operation"], item["size"]), {})
            for concurrency, value in item["throughput"].items():
                if base.get(concurrency):
                    name = f"{item['operation']}@{item['size'] or '-'} {concurrency}"
                    scaling.setdefault(key, {})[name] = round(value / base[concurrency], 2)
    result["scaling_ratio"] = scaling


def _cpu_lines(result: dict[str, Any]) -> list[str]:
    """One line per operation of the scaling comparison: where the machine's cores went."""
    scaling = result.get("scaling", {})
    runs = {"workers_1": result.get("operations", []), **scaling}
    names = {(item["operation"], item["size"]) for items in scaling.values() for item in items}
    lines = []
    for operation, size in sorted(names, key=str):
        parts = []
        for key, items in runs.items():
            for item in items:
                if (item["operation"], item["size"]) == (operation, size):
                    cores = ", ".join(
                        f"{phase} {value['server']}/{value['machine']}"
                        for phase, value in item.get("cpu_cores", {}).items()
                    )
                    parts.append(f"{key.replace('_', ' ')}: {cores}")
        lines.append(f"  {operation}@{size or '-'}: " + "; ".join(parts))
    return lines


def git(*arguments: str) -> str:
    try:
        return subprocess.run(
            ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    concurrencies = [f"c{c}" for c in result["settings"]["concurrency"]]
    header = ["operation", "nodes", "p50 ms", "p99 ms", *[f"{c} req/s" for c in concurrencies],
              "SQL", "bytes", "peak RSS MB", "stall ms", "errors"]  # fmt: skip
    rows = [header]
    for item in result["operations"]:
        if item.get("note"):
            rows.append([item["operation"], _cell(item["size"]), item["note"]])
            continue
        errors = item["errors"] + sum(item["throughput_errors"].values())
        rows.append(
            [
                item["operation"],
                _cell(item["size"]),
                _cell(item["p50_ms"]),
                _cell(item["p99_ms"]),
                *[_cell(item["throughput"].get(c)) for c in concurrencies],
                _cell(item["sql_statements"]),
                _cell(item["response_bytes"]),
                _cell(max(item["peak_rss_mb"].values(), default=None)),
                _cell(max((v for v in item.get("worst_stall_ms", {}).values() if v), default=None)),
                str(errors),
            ]
        )
    widths = [
        max(len(row[i]) for row in rows if len(row) == len(header)) for i in range(len(header))
    ]
    lines = []
    for row in rows:
        if len(row) == 3 and len(header) > 3:
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")
        else:
            lines.append(
                "  ".join(
                    cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                    for i, cell in enumerate(row)
                )
            )
    lines.append("")
    lines.append("canvas vs the SQL floor (one json_agg statement through asyncpg):")
    for size, item in result["canvas_vs_floor"].items():
        lines.append(
            f"  {size:>6} nodes: canvas p50 {_cell(item['canvas_p50_ms'])} ms, floor p50 "
            f"{_cell(item['floor_p50_ms'])} ms, ratio {_cell(item['ratio_to_floor'])}x; "
            f"{_cell(item['p50_us_per_node'])} us/node (floor {_cell(item['floor_us_per_node'])})"
        )
    for key, ratios in result.get("scaling_ratio", {}).items():
        shown = ", ".join(f"{name} {ratio}x" for name, ratio in ratios.items())
        lines.append(f"throughput with {key.replace('_', ' ')} vs 1: {shown}")
    busy = _cpu_lines(result)
    if busy:
        lines.append("CPU cores busy in the throughput phases (server processes / whole machine):")
        lines.extend(busy)
    checks = result.get("canvas_check", {})
    if checks:
        lines.append(
            "canvas responses checked against the database: "
            + ", ".join(f"{size}: {state}" for size, state in checks.items())
        )
    if "live" in result:
        lines.extend(live_lines(result["live"]))
    machine = result["machine"]
    lines.append(
        f"commit {result['commit']}{' (dirty)' if result['dirty'] else ''}, "
        f"{machine['cpus']} CPUs shared by client, server and PostgreSQL "
        f"{result.get('postgresql', '?')}, Python {machine['python']}; load average "
        f"{machine['load_average_at_start'][0]} at start, "
        f"{machine.get('load_average_at_end', ['?'])[0]} at end"
    )
    return "\n".join(lines)


def compare(result: dict[str, Any], saved: dict[str, Any]) -> str:
    """Change from a saved run, per operation and size: p50 and throughput (negative is better
    for latency, positive for throughput)."""

    def key(item: dict[str, Any]) -> tuple[str, Any]:
        return item["operation"], item["size"]

    before = {key(item): item for item in saved.get("operations", [])}
    lines = [f"compared with {saved.get('commit')} ({saved.get('started_at')}):"]
    for item in result["operations"]:
        old = before.get(key(item))
        if old is None or item["p50_ms"] is None or old.get("p50_ms") is None:
            continue
        change = (item["p50_ms"] - old["p50_ms"]) / old["p50_ms"] * 100
        parts = [f"p50 {old['p50_ms']:.2f} -> {item['p50_ms']:.2f} ms ({change:+.0f}%)"]
        for concurrency, value in item["throughput"].items():
            previous = old.get("throughput", {}).get(concurrency)
            if previous:
                parts.append(
                    f"{concurrency} {previous:.1f} -> {value:.1f} req/s "
                    f"({(value - previous) / previous * 100:+.0f}%)"
                )
        if old.get("sql_statements") != item["sql_statements"]:
            parts.append(f"SQL {old.get('sql_statements')} -> {item['sql_statements']}")
        size = item["size"] if item["size"] is not None else "-"
        lines.append(f"  {item['operation']:<9} {size:>6}: " + "; ".join(parts))
    for size, item in result["canvas_vs_floor"].items():
        old_ratio = saved.get("canvas_vs_floor", {}).get(size, {}).get("ratio_to_floor")
        if old_ratio is not None:
            lines.append(f"  canvas/floor {size:>6}: {old_ratio}x -> {item['ratio_to_floor']}x")
    return "\n".join(lines)
