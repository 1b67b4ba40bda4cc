import json
import math

import numpy as np
import pytest

from pwavenet_tf.benchmarks import speed


def test_time_runs_counts_warmup_and_repeats():
    calls = []
    timing, result = speed.time_runs(lambda: calls.append(1) or len(calls), warmup=2, repeats=3)
    assert len(calls) == 5 and result == 5
    assert len(timing.times) == 3
    assert timing.min <= timing.median <= timing.max
    rate = timing.rate(100)
    assert rate["min"] <= rate["median"] <= rate["max"]
    with pytest.raises(ValueError, match="repeats"):
        speed.time_runs(lambda: None, repeats=0)


def test_timing_statistics():
    t = speed.Timing([3.0, 1.0, 2.0])
    assert (t.median, t.min, t.max) == (2.0, 1.0, 3.0)
    assert t.rate(6.0) == {"median": 3.0, "min": 2.0, "max": 6.0}
    assert t.to_dict()["runs"] == 3


def test_peak_memory_sees_a_phase_allocation():
    with speed.PeakMemory() as before:
        pass
    with speed.PeakMemory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block.sum()
        del block
    assert mem.peak_rss_mb is not None and mem.method
    if mem.phase_increase_mb is not None:  # Linux: /proc available
        assert mem.phase_increase_mb > 40
        assert before.phase_increase_mb < 40
    json.dumps(mem.to_dict())


def test_matmul_peak_small():
    result = speed.matmul_peak(sizes=(64, 128), repeats=2)
    assert result["peak_gflops"] > 0
    assert set(result["sizes"]) == {"64", "128"}


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory):
    """`pwavenet bench` on the tiny config with the smallest settings (no XLA)."""
    from pwavenet_tf.cli import main

    out = tmp_path_factory.mktemp("bench") / "tiny.json"
    code = main(["bench", "--config", "tiny", "--seconds", "0.05", "--batch", "2",
                 "--teacher-seconds", "0.012", "--naive-seconds", "0.01", "--repeats", "2",
                 "--no-xla", "--matmul-sizes", "128", "--json", str(out), "--quiet"])
    assert code == 0
    return json.loads(out.read_text())


def test_bench_cli_writes_every_figure(bench_json, capsys):
    r = bench_json
    assert r["config"] == "tiny" and r["machine"]["cores"] >= 1
    assert r["matmul"]["peak_gflops"] > 0
    t, s = r["teacher"]["phases"], r["student"]["phases"]
    assert set(t) == {"naive_b1", "naive_b2", "cached_graph_b1", "cached_graph_b2"}
    assert set(s) == {"graph_b1", "graph_b2"}
    for p in list(t.values()) + list(s.values()):
        assert p["timing"]["runs"] == 2
        rate = p["samples_per_s"]
        assert 0 < rate["min"] <= rate["median"] <= rate["max"]
        assert p["samples_per_run"] == p["batch"] * p["frames"] * r["hop_length"]
        assert math.isfinite(p["gflops"]) and 0 < p["fraction_of_peak"]
        assert p["real_time_factor"] == pytest.approx(r["sample_rate"] / rate["median"])
        assert p["memory"]["peak_rss_mb"] > 0
    naive = t["naive_b1"]
    assert naive["mean_window"] == pytest.approx((256 + 1) / 2)
    assert naive["steady_state_samples_per_s_estimate"] < rate["median"]
    b1 = r["summary"]["batch_1"]
    assert b1["speedup_vs_cached"] > 0 and b1["speedup_vs_naive"] > 0
    assert b1["student_times_real_time"] == pytest.approx(
        b1["student_samples_per_s"] / r["sample_rate"])
    text = speed.format_text(r)
    assert "cached_graph" in text and "naive (window 128)" in text and "Batch 2:" in text
    md = speed.format_markdown(r)
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 6 and len({row.count("|") for row in rows}) == 1


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    from pwavenet_tf.cli import main

    assert main(["bench", "--config", "tiny", "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert main(["bench", "--config", "tiny", "--matmul-sizes", "a,b"]) == 2
