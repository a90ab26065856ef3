"""tools/benchmark.py runs a config end to end and reports throughput, FLOPs and MFU (no timing is
asserted: speed targets are read from its output, never from a test)."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_reports_flops_mfu_and_a_markdown_row(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "shapes.yaml").read_text())
    cfg["model"].update({k: v for k, v in TINY.items() if k not in ("resolution", "frames")})
    cfg["data"]["init_args"].update(resolution=64, frames=8, batch_size=2, num_workers=0, train_size=8)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, str(REPO / "tools" / "benchmark.py"), "--config", str(tmp_path / "tiny.yaml"),
                          "--steps", "1", "--warmup", "1", "--sample-batch", "2", "--peak-size", "256",
                          "--threads", "1", "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["clip"] == "8x64x64" and res["batch_size"] == 2
    assert res["train_gflop_per_clip"] > res["sample_gflop_per_clip"] > 0      # backward + D cost more than sampling
    assert res["device_peak_gflops"] > 0 and 0 < res["mfu_train"] < 1.5 and 0 < res["mfu_sample"] < 1.5
    assert res["clips_per_second_sample"] > 0 and res["machine_reference_gflops"] > 0
    table = (tmp_path / "b.md").read_text().splitlines()
    assert table[0].startswith("| config | clip |") and len(table) == 3 and "8x64x64" in table[2]
