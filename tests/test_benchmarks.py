"""The benchmark scripts still run: ``benchmarks/run_all.py --quick`` on the CPU.

A smoke test, not a measurement: tiny sizes, one torch thread, about 30 s on a 2-core CPU.
Speed targets live in benchmarks/README.md and BENCHMARKS.md, never here. It checks that every
stage ran and produced positive numbers, that missing optional peers are reported rather than
fatal, and that the Markdown table and the scaling plot were written.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGES = ("render", "predict", "train", "scaling", "peers", "stream_memory", "export")
HEADER = "| stage | sigalex | baseline or peer | ratio | device | command |"


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_run_all_quick(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--quick", "--device", "cpu",
         "--out", str(out), "--markdown", str(tmp_path / "table.md")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())

    meta = result["meta"]
    for key in ("date", "torch", "sigalex", "device", "device_name", "cpu_model", "quick"):
        assert meta[key] not in (None, ""), key
    assert meta["device"] == "cpu" and meta["quick"] is True
    assert meta["sigalex_path"].startswith(str(REPO)), "measured an installed sigalex, not this one"

    assert result["errors"] == {}
    assert set(result["stages"]) == set(STAGES)
    for name, stage in result["stages"].items():
        assert stage["ok"], (name, stage["error"])
        assert stage["command"].startswith("python benchmarks/"), name

    rows = result["rows"]
    for name in STAGES:
        mine = [r for r in rows if r["command"] == result["stages"][name]["command"]]
        assert mine, f"no table row for {name}"
    for r in rows:
        assert _positive(r["sigalex"]), r
        if r.get("status", "ok") == "ok":
            assert _positive(r["baseline"]) and _positive(r["ratio"]), r
        else:  # an optional peer: absent or broken, reported in the table, never fatal
            assert r["stage"].startswith("transform"), r
            assert r["status"] == "not installed" or r["status"].startswith("error"), r
            assert r["baseline"] is None and r["ratio"] is None, r

    train = result["stages"]["train"]["result"]
    assert train["precision"] == "fp32" and train["channels_last"]  # as Trainer on a CPU
    peers = result["stages"]["peers"]["result"]["results"]
    assert {p["family"] for p in peers} == {"stft", "mel", "cwt"}
    scaling = result["stages"]["scaling"]["result"]
    assert {p["factor"] for p in scaling["points"]} == {"n_times", "n_channels", "batch_size"}
    plot = tmp_path / "results-scaling.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = proc.stdout[proc.stdout.index(HEADER) :]
    body = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(body) == 1 + len(rows)  # header + one line per row
    assert (tmp_path / "table.md").read_text().startswith(HEADER)
