"""The GPU check's scripts run end to end at CI size on the CPU (their CUDA runs happen in gpu_check.sh)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_train_reports_a_complete_row(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--width", "4", "--n-major", "20",
                    "--batch-size", "16", "--epochs", "2", "--json", str(out)], check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["images_per_epoch"] == 110 and result["epochs_run"] == 2
    assert result["seconds_per_epoch"] > 0 and result["tflops_per_epoch"] > 0
    assert 0 < result["fraction_of_peak"] < 1


def test_resume_check_finds_the_killed_run_equal_to_the_uninterrupted_one(tmp_path):
    out = tmp_path / "resume.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "resume_check.py"), "--device", "cpu", "--epochs", "2",
                    "--kill-after", "1", "--n-major", "40", "--width", "2", "--json", str(out)],
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["epochs"] == [2, 2] and result["bitwise_equal"] and result["max_weight_difference"] == 0.0


def test_bench_threads_prints_a_row_per_workload_and_condition(tmp_path):
    out = tmp_path / "threads.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_threads.py"), "--quick", "--only", "loss",
                             "--json", str(out)], check=True, capture_output=True, text=True, timeout=120)
    rows = json.loads(out.read_text())
    assert [r["condition"] for r in rows] == ["quiet", "beside one busy process"]
    for r in rows:
        assert r["default_over_best"] >= 1 and 1 <= r["default_threads"] <= r["cores"]
        assert r["default_s"] in (r["one_thread_s"], r["all_cores_s"]) or r["default_threads"] not in (1, r["cores"])
    assert result.stdout.count("| loss (PrototypeSupConLoss") == 2  # the Markdown table
