"""The benchmark at a tiny size, so that it cannot rot; its figures are not checked, only that
it measures every operation without errors and writes a result `--compare` can read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from bench.report import compare
from db.settings import PROJECT_ROOT
from tests.conftest import plain_url


def _bench(server_url: URL, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quiet", *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": plain_url(server_url)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bench_smoke(server_url: URL, tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    tiny = ["--sizes", "5,12", "--small", "3", "--requests", "3", "--duration", "0.1"]
    tiny += ["--concurrency", "2", "--workers", "1,2", "--output", str(output)]
    tiny += ["--subscribers", "3", "--live-changes", "2"]
    first = _bench(server_url, *tiny)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(output.read_text())
    measured = {(item["operation"], item["size"]): item for item in result["operations"]}
    assert set(measured) == {
        *((name, size) for name in ("canvas", "traversal", "refetch", "move") for size in (5, 12)),
        ("list", None),
    }
    for item in measured.values():
        assert item["errors"] == 0 and item["throughput_errors"] == {"c2": 0}, item
        assert item["p50_ms"] > 0 and item["throughput"]["c2"] > 0
        assert item["response_bytes"] > 0 and item["peak_rss_mb"]["c2"] > 0
    for name in ("canvas", "traversal", "refetch", "move"):
        assert measured[(name, 5)]["sql_statements"] == measured[(name, 12)]["sql_statements"]
    assert result["canvas_check"] == {"5": "complete", "12": "complete"}
    assert result["floor"]["12"]["nodes"] == 12
    assert set(result["canvas_vs_floor"]) == {"5", "12"}
    assert result["canvas_vs_floor"]["12"]["ratio_to_floor"] > 0
    assert {item["operation"] for item in result["scaling"]["workers_2"]} == {
        "canvas", "refetch", "list"
    }  # fmt: skip
    assert "canvas vs the SQL floor" in first.stdout
    live = result["live"]  # the subscription phase (bench/live.py)
    assert (live["delivered"], live["expected"], live["errors"]) == (6, 6, 0), live
    assert live["registered"] == 3 and live["resolution_shared_by"] == 3, live
    assert "subscriptions: 3 subscribers" in first.stdout

    # --compare: a saved result against itself, then a file that is not there
    compared = compare(result, result)
    assert compared.startswith(f"compared with {result['commit']}")
    assert "  canvas        12: p50" in compared and "(+0%)" in compared
    missing = _bench(server_url, "--compare", str(tmp_path / "missing.json"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: cannot read")
