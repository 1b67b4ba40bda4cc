"""The step-memory estimate's arithmetic against hand-computed numbers, and the refusal."""

import dataclasses

import pytest

from pwavenet_tf.config import load_config
from pwavenet_tf.training import memory_estimate as me

T = 2048  # tiny: window_samples of both trainings


def test_teacher_estimate_of_the_tiny_config_by_hand():
    cfg = load_config("tiny")  # R 16, G 32, S 16, K 4, C 16, 10 layers
    # outside the blocks: 2C + 2 + R + 3S = 32 + 2 + 16 + 48 = 98 values per sample
    # one block: 4.5 G + 4 R + 2 S = 144 + 64 + 32 = 240, ten blocks 2400
    network = (98 + 2400) * T
    # float32: the 3K = 12 MoL parameters and their loss terms 12K = 48
    float32 = (12 + 48) * T
    assert me.teacher_step_bytes(cfg) == pytest.approx(me.STEP_FACTOR * 4 * (network + float32))
    assert me.teacher_step_bytes(cfg) == pytest.approx(me.STEP_FACTOR * 20_955_136)
    # half-precision activations, float32 distribution terms
    assert me.teacher_step_bytes(cfg, "bfloat16") == pytest.approx(me.STEP_FACTOR * (
        2 * network + 4 * float32))


def test_distill_estimate_of_the_tiny_config_by_hand():
    cfg = load_config("tiny")
    # what the backward pass keeps, values per sample:
    # student (channels 16, conditioning 16, flows [2, 2, 2, 4]): ten trained layers
    # R + 1.5 G = 16 + 48 = 64, the conditioning 16; per flow 1 + 16 + 6 = 23 (float32)
    student = 10 * 64 + 16
    # one frozen teacher pass (R 16, G 32, S 16, 10 layers): R + G = 48 per layer, the
    # head's 2 S = 32, the input's 2; float32 its 3 K = 12 parameters
    teacher = 10 * 48 + 32 + 2
    # float32: the flows 4 x 23, the parameters 12, the KL's 16 draws x (7.25 K + 4) = 528,
    # the power loss's two FFT sizes 2 x 8 = 16
    float32 = 4 * 23 + 12 + 16 * (7.25 * 4 + 4) + 16
    expected = 4 * T * (student + teacher + float32)
    assert me.distill_step_bytes(cfg) == pytest.approx(expected)
    assert expected == pytest.approx(14_893_056)
    # bfloat16: the network activations in 2 bytes, the parameters and the KL in 4
    assert me.distill_step_bytes(cfg, "bfloat16") == pytest.approx(
        T * (2 * (student + teacher) + 4 * float32))
    # the contrastive term adds a second teacher pass and a second set of draws
    contrastive = dataclasses.replace(
        cfg, distill=dataclasses.replace(cfg.distill, contrastive_weight=0.3))
    assert me.distill_step_bytes(contrastive) - expected == pytest.approx(
        4 * T * (teacher + 12 + 528))


# Measured bytes per example-sample of one distillation step (`python
# benchmarks/distill_memory.py --config C --sizes ... --variants base [m1]`: the slope of
# the step's peak RSS between two sizes, CPU float32, TF 2.17; BENCHMARKS.md
# "Distillation step memory"). The estimate must stay within 15% of each: a change of the
# arithmetic (or of the models, once re-measured) that moves it further fails here.
MEASURED_DISTILL_BYTES_PER_SAMPLE = [
    ("paper", {}, 331.1e3),                      # 1x1200, 2x2400
    ("paper", {"num_kl_samples": 1}, 279.5e3),   # 1x1200, 2x2400
    ("ljspeech", {}, 160.1e3),                   # 1x1024, 2x4096
    ("tiny", {}, 7.9e3),                         # 4x2048, 16x2048
]


@pytest.mark.parametrize("name,overrides,measured", MEASURED_DISTILL_BYTES_PER_SAMPLE)
def test_distill_estimate_is_within_15_percent_of_the_measured_step(name, overrides, measured):
    cfg = load_config(name)
    if overrides:
        cfg = cfg.override(distill=overrides)
    per_sample = me.distill_step_bytes(cfg) / cfg.distill.window_samples
    assert 0.85 <= measured / per_sample <= 1.15, (name, overrides, per_sample, measured)


@pytest.mark.slow
def test_distill_estimate_against_a_live_measurement_of_the_tiny_step():
    """Measures the tiny config's distillation step now (two fresh subprocesses of
    `benchmarks/distill_memory.py`, about a minute on 2 cores) and checks the estimate's
    slope against it: catches a model change that the hard-coded figures above miss."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(me.__file__), "..", "..", "benchmarks",
                        "distill_memory.py")
    spec = importlib.util.spec_from_file_location("distill_memory", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [bench.run_child("tiny", b, 2048, {}, 1, 600) for b in (4, 16)]
    _, slope = bench.fit_line([(r["batch"] * r["window"], r["step_bytes"]) for r in rows])
    per_sample = me.distill_step_bytes(load_config("tiny")) / 2048
    assert 0.8 <= slope / per_sample <= 1.25, (slope, per_sample)


def _with_batch(cfg, section, batch):
    return dataclasses.replace(
        cfg, **{section: dataclasses.replace(getattr(cfg, section), batch_size=batch)})


def test_refuses_a_batch_that_cannot_fit_with_both_figures():
    cfg = _with_batch(load_config("tiny"), "distill", 20000)
    with pytest.raises(ValueError) as e:
        me.check_step_memory(cfg, "distill", available=16 * 10**9)
    msg = str(e.value)
    assert "\n" not in msg
    gb = 20000 * me.distill_step_bytes(cfg) / 1e9
    assert msg.startswith(f"distill.batch_size 20000 x 2048 samples needs about {gb:,.0f} GB "
                          "for one step, more than the 16 GB available; lower ")


def test_a_batch_that_fits_is_allowed_and_the_total_returned():
    cfg = load_config("tiny")
    total = me.check_step_memory(cfg, "teacher_training", available=16 * 10**9)
    assert total == 8 * me.teacher_step_bytes(cfg)


def test_an_accelerator_holds_one_replicas_share():
    cfg = _with_batch(load_config("tiny"), "teacher_training", 64)
    per_example = me.teacher_step_bytes(cfg)
    device = 40 * per_example
    me.check_step_memory(cfg, "teacher_training", num_replicas=2, device_memory=device)
    with pytest.raises(ValueError, match="per accelerator"):
        me.check_step_memory(cfg, "teacher_training", num_replicas=1, device_memory=device)


def test_available_memory_is_read():
    available = me.available_host_memory()
    assert available is not None and available > 0
    num_gpus, size = me.gpu_memory()
    assert num_gpus >= 0 and (size is None or size > 0)


def _cli(*args, timeout=240):
    import os
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_train_teacher_refuses_a_huge_batch_before_allocating(tmp_path):
    from pwavenet_tf.testing.data import ljspeech_mini_dir

    out = tmp_path / "teacher"
    r = _cli("train-teacher", "--config", "tiny", "--batch-size", "20000000",
             "--data", ljspeech_mini_dir(), "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pwavenet train-teacher: error: teacher_training.batch_size "
                               "20000000 x 2048 samples needs about "), lines[0]
    assert "GB available; lower --batch-size" in lines[0]
    assert not out.exists()


def test_distill_refuses_a_huge_batch_before_allocating(tmp_path):
    import json
    import os

    from pwavenet_tf.config import config_dir
    from pwavenet_tf.testing.data import ljspeech_mini_dir

    teacher = os.path.join(os.path.dirname(me.__file__), "..", "presets", "ljspeech_mini",
                           "training", "teacher")
    with open(os.path.join(config_dir(), "ljspeech_mini.json")) as f:
        cfg = json.load(f)
    cfg["distill"]["batch_size"] = 20000000
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "student"
    r = _cli("distill", "--config", str(path), "--teacher", teacher,
             "--data", ljspeech_mini_dir(), "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pwavenet distill: error: distill.batch_size 20000000 x 4096 "
                               "samples needs about "), lines[0]
    assert "GB available; lower distill.batch_size" in lines[0]
    assert not out.exists()
