import json

import pytest

from pwavenet_tf.benchmarks import training
from pwavenet_tf.benchmarks.flops import student_macs_per_sample, teacher_macs_per_sample
from pwavenet_tf.config import load_config


@pytest.fixture(scope="module")
def config():
    return load_config("tiny")


def test_teacher_and_distillation_steps_are_measured(config):
    results = []
    for stage in ("teacher", "distill"):
        r = training.benchmark_training(config, stage, batch=2, window=1000, steps=2, warmup=1,
                                        matmul_sizes=(128,), log=lambda *a: None)
        assert r["window"] == 768 and r["batch"] == 2  # whole frames of 256 samples
        t = r["step_seconds"]
        assert t["runs"] == 2 and t["min_s"] <= t["median_s"] <= t["max_s"]
        assert r["training_samples_per_s"] == pytest.approx(2 * 768 / t["median_s"])
        assert r["step_gflop"] == pytest.approx(6 * r["forward_macs_per_sample"] * 2 * 768 / 1e9)
        assert r["achieved_gflops"] == pytest.approx(r["step_gflop"] / t["median_s"])
        assert 0 < r["fraction_of_matmul_peak"] < 5
        assert r["memory"]["peak_rss_mb"] > 100
        json.dumps(r)
        results.append(r)
    # The FLOP count: the teacher's forward pass; distillation adds the student's pass
    # and a second teacher pass for the contrastive term.
    teacher, macs = training.build_stage(config, "teacher")
    assert macs == teacher_macs_per_sample(teacher)["total"]
    distiller, distill_macs = training.build_stage(config, "distill")
    passes = 2 if config.distill.contrastive_weight > 0 else 1
    assert distill_macs == (student_macs_per_sample(distiller.student)["total"]
                            + passes * macs)
    table = training.format_training(results)
    assert table.count("\n") == 3 and "| teacher | off | graph | 2 x 768 |" in table


def test_bad_arguments_are_refused(config):
    with pytest.raises(ValueError, match="`stage` must be one of teacher, distill"):
        training.benchmark_training(config, "student")
    with pytest.raises(ValueError, match="`steps` and `warmup` must be >= 1"):
        training.benchmark_training(config, "teacher", steps=0)
    with pytest.raises(ValueError, match="a window of at least one frame"):
        training.benchmark_training(config, "teacher", window=100, matmul_sizes=())


def test_bench_command_train_phase(tmp_path, capsys):
    from pwavenet_tf.cli import main

    out = tmp_path / "train.json"
    assert main(["bench", "--config", "tiny", "--phase", "train", "--stage", "teacher",
                 "--steps", "1", "--batch", "1", "--window", "512", "--matmul-sizes", "",
                 "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| teacher | off | graph | 1 x 512 |" in printed
    (r,) = json.loads(out.read_text())
    assert r["stage"] == "teacher" and r["matmul_peak_gflops"] is None


def test_bfloat16_with_xla_on_a_cpu_is_refused_in_one_line(config, tmp_path, capsys):
    """XLA's CPU backend has no bfloat16 dot: refused before any work, for both commands."""
    from pwavenet_tf.cli import main

    with pytest.raises(ValueError, match="needs a GPU or TPU: XLA on the CPU has no bfloat16"):
        training.benchmark_training(config, "teacher", precision="bfloat16", jit_compile=True,
                                    matmul_sizes=())
    assert main(["train-teacher", "--config", "tiny", "--data", str(tmp_path), "--out",
                 str(tmp_path / "t"), "--steps", "1", "--jit-compile", "--mixed-precision",
                 "bfloat16", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a GPU or TPU" in err[0], err
    assert not (tmp_path / "t").exists()
