"""Host memory of one distillation training step, measured, fitted and extrapolated.

For a config (default `paper`) every measurement runs in a FRESH SUBPROCESS, which builds
the teacher and the student with random weights (`build_teacher`, `build_student`), the
`Distiller` with the config's distill terms, the config's Adam (`make_adam`), compiles it
and builds the optimizer as `DistillTask` does, then runs ONE compiled training step
(graph mode, `Distiller.fit`, the step `pwavenet distill` runs) on random log-mel-like
features and audio of batch B and window W. It reports

    step bytes = peak RSS (ru_maxrss) after the step - RSS (VmRSS) just before it,

so the models, their optimizer slots and TensorFlow itself cancel; what remains is the
step's activations and gradients plus the graph's tracing (a constant, the fit's
intercept). A least-squares line `a + b * B * W` over the sizes gives `b`, the bytes per
example-sample, which is extrapolated to the configs' batch and window and to the batch x
window that fits an accelerator of `--device-gb` with a 20% margin.

Variants (each its own set of subprocesses): the config as is; `contrastive_weight` 0
(one teacher pass instead of two); `num_kl_samples` 1; and (`--variants recompute`) the
teacher's passes under `distill.recompute_teacher` (tf.recompute_grad).

CPU RSS is a proxy for an accelerator's peak allocation (same float32 tensors, but a
CPU's malloc may keep freed blocks and TensorFlow's CPU kernels keep a few scratch
buffers); other processes on the machine do not change a process's own RSS, only its
speed. It prints figures and asserts nothing.

Usage (from the repository root):
  python benchmarks/distill_memory.py                            # paper, ~20-30 min on 2 cores
  python benchmarks/distill_memory.py --config ljspeech --variants base
  python benchmarks/distill_memory.py --sizes 1x1200 2x1200 1x2400 --variants base m1
  python benchmarks/distill_memory.py --config paper --sizes 1x1200 2x2400 \
      --variant-sizes 1x1200 2x2400 --variants base recompute m1     # BENCHMARKS.md
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

GB = 1e9
MARGIN = 0.8  # use at most 80% of the device

VARIANTS = {
    "base": ("config as is", {}),
    "no_contrastive": ("contrastive_weight 0", {"contrastive_weight": 0.0}),
    "m1": ("num_kl_samples 1", {"num_kl_samples": 1}),
    "recompute": ("recompute_teacher", {"recompute_teacher": True}),
}


def _vm_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _max_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# --- Child: one step in this process -------------------------------------------------

def build_distiller(config, seed=0):
    """`(distiller, teacher, student)` of `config` with random weights, assembled and
    compiled by `distill_task.build_distiller` as `pwavenet distill` does (float32, no
    strategy); with the perceptual term on, an untrained phone classifier of the shape
    DistillTask trains."""
    import keras

    from pwavenet_tf.training import distill_task
    from pwavenet_tf.training.teacher_task import build_teacher

    dc = config.distill
    keras.utils.set_random_seed(seed)
    teacher = build_teacher(config)
    student = distill_task.build_student(config)
    perceptual = None
    if dc.perceptual_weight > 0:
        from pwavenet_tf.losses.perceptual_loss import PerceptualLoss
        from pwavenet_tf.models.phone_classifier import PhoneClassifier

        classifier = PhoneClassifier(dc.perceptual_classes, config.audio.hop_length, seed=seed)
        classifier(keras.ops.zeros((1, 4 * config.audio.hop_length)))
        perceptual = PerceptualLoss(classifier, style_weight=dc.perceptual_style_weight,
                                    feature_weight=dc.perceptual_feature_weight)
    distiller = distill_task.build_distiller(config, student, teacher, seed=seed,
                                             perceptual_loss=perceptual)
    return distiller, teacher, student


def child(args):
    import numpy as np
    import tensorflow as tf

    from pwavenet_tf.config import load_config

    config = load_config(args.config)
    overrides = dict(json.loads(args.overrides))
    overrides.update(batch_size=args.batch, window_samples=args.window)
    config = config.override(distill=overrides)
    hop = config.audio.hop_length
    if args.window % hop:
        raise SystemExit(f"window {args.window} is not a multiple of the hop {hop}")
    start = time.perf_counter()
    distiller, teacher, student = build_distiller(config)
    rng = np.random.default_rng(0)
    frames = args.window // hop
    t = np.arange(args.window) / config.audio.sample_rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (150 + 40 * b) * t)
                      + 0.01 * rng.normal(size=t.shape) for b in range(args.batch)])
    x = {"audio": tf.constant(audio.astype("float32")),
         "features": tf.constant(rng.normal(-4.0, 1.5, (args.batch, frames,
                                                        config.audio.conditioning_dim))
                                 .astype("float32"))}
    if config.audio.num_speakers > 1:
        x["speaker_id"] = tf.zeros([args.batch], tf.int32)
    ds = tf.data.Dataset.from_tensors((x, x["audio"])).repeat()
    build_s = time.perf_counter() - start
    before, peak_before = _vm_rss(), _max_rss()
    start = time.perf_counter()
    history = distiller.fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
    step_s = time.perf_counter() - start
    peak = _max_rss()
    weights = sum(int(np.prod(v.shape)) for v in teacher.weights) * 4
    student_vars = sum(int(np.prod(v.shape)) for v in student.weights) * 4
    print("RESULT " + json.dumps({
        "batch": args.batch, "window": args.window, "rss_before": before,
        "peak_before": peak_before, "peak": peak, "step_bytes": peak - before,
        "loss": float(history.history["loss"][-1]), "build_s": build_s, "step_s": step_s,
        "teacher_bytes": weights, "student_bytes": student_vars,
        "optimizer_bytes": sum(int(np.prod(v.shape)) for v in distiller.optimizer.variables)
        * 4,
    }), flush=True)


# --- Parent: subprocesses, fit, extrapolation ----------------------------------------

def run_child(config, batch, window, overrides, steps, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--config", config,
           "--batch", str(batch), "--window", str(window), "--steps", str(steps),
           "--overrides", json.dumps(overrides)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")


def fit_line(points):
    """Least squares `bytes = a + b * n` over `[(n, bytes)]`: `(a, b)`."""
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0, my / mx
    b = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return my - b * mx, b


def estimate(config, batch, window, overrides):
    """`memory_estimate.distill_step_bytes` for the same sizes (whole batch)."""
    from pwavenet_tf.training.memory_estimate import distill_step_bytes

    c = config.override(distill={**overrides, "batch_size": batch, "window_samples": window})
    return distill_step_bytes(c) * batch


def per_layer_arithmetic(config):
    """Bytes per example-sample one residual layer keeps for the backward pass, float32
    (`memory_estimate`): a frozen teacher layer its conv input and the gate's tanh and
    sigmoid, R + G values; a trained student layer also the gate's product, R + 1.5 G
    (its flows are blocks with R = channels, G = 2 channels). `(teacher layer, student
    layer)`."""
    from pwavenet_tf.training.memory_estimate import frozen_layer_kept, trained_layer_kept

    t, s = config.teacher, config.student
    teacher_layer = 4 * frozen_layer_kept(t.residual_channels, t.gate_channels)
    student_layer = 4 * trained_layer_kept(s.channels, 2 * s.channels)
    return teacher_layer, student_layer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--sizes", nargs="+", default=None,
                   help="BxW sizes (default: 1xW1 2xW1 1xW2 2xW2 with W1, W2 = 4 and 8 "
                        "hops rounded up to >= 1024 and >= 2048 samples)")
    p.add_argument("--variant-sizes", nargs="+", default=None,
                   help="sizes for the variants other than base (default: the first three)")
    p.add_argument("--variants", nargs="+", default=["base", "no_contrastive", "m1"],
                   choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=1, help="training steps per subprocess")
    p.add_argument("--device-gb", type=float, default=80.0)
    p.add_argument("--timeout", type=int, default=1800)
    # child
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, default=1200, help=argparse.SUPPRESS)
    p.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)

    from pwavenet_tf.config import load_config

    config = load_config(args.config)
    hop = config.audio.hop_length
    w1 = -(-1024 // hop) * hop
    w2 = -(-2048 // hop) * hop
    sizes = ([tuple(int(v) for v in s.lower().split("x")) for s in args.sizes] if args.sizes
             else [(1, w1), (2, w1), (1, w2), (2, w2)])
    variant_sizes = ([tuple(int(v) for v in s.lower().split("x")) for s in args.variant_sizes]
                     if args.variant_sizes else sizes[:3])
    dc = config.distill
    print(f"config {args.config}: distill batch {dc.batch_size} x window {dc.window_samples}, "
          f"num_kl_samples {dc.num_kl_samples}, contrastive_weight {dc.contrastive_weight}; "
          f"{os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = {}
    for variant in args.variants:
        label, overrides = VARIANTS[variant]
        rows = []
        for batch, window in (sizes if variant == "base" else variant_sizes):
            r = run_child(args.config, batch, window, overrides, args.steps, args.timeout)
            r["estimate"] = estimate(config, batch, window, overrides)
            rows.append(r)
            print(f"  {variant:15s} B {batch} W {window:5d}: step {r['step_bytes'] / GB:6.3f} GB "
                  f"(RSS before {r['rss_before'] / GB:.2f} GB, peak {r['peak'] / GB:.2f} GB; "
                  f"peak while building {r['peak_before'] / GB:.2f} GB), estimate "
                  f"{r['estimate'] / GB:.3f} GB; build {r['build_s']:.0f} s, step "
                  f"{r['step_s']:.0f} s, loss {r['loss']:.3g}", flush=True)
        a, b = fit_line([(r["batch"] * r["window"], r["step_bytes"]) for r in rows])
        results[variant] = (label, overrides, rows, a, b)

    print(f"\nSummary ({args.config}; step bytes = peak RSS - RSS before the step; "
          "estimate = memory_estimate.distill_step_bytes x B)")
    print(f"{'variant':24s} {'B':>3s} {'W':>6s} {'B*W':>7s} {'step GB':>8s} {'fit GB':>7s} "
          f"{'GB/(B*W) x1e6':>13s} {'estimate GB':>11s} {'meas/est':>8s}")
    for variant, (label, _, rows, a, b) in results.items():
        for r in rows:
            n = r["batch"] * r["window"]
            print(f"{label:24s} {r['batch']:3d} {r['window']:6d} {n:7d} "
                  f"{r['step_bytes'] / GB:8.3f} {(a + b * n) / GB:7.3f} "
                  f"{r['step_bytes'] / n / 1e3:13.1f} {r['estimate'] / GB:11.3f} "
                  f"{r['step_bytes'] / r['estimate']:8.2f}")
    print("\nFits bytes = a + b * B * W:")
    base_b = results.get("base", (None, None, None, None, None))[4]
    for variant, (label, overrides, rows, a, b) in results.items():
        est_b = estimate(config, 1, rows[-1]["window"], overrides) / rows[-1]["window"]
        rel = f", {b / base_b:.2f} of the base" if base_b and variant != "base" else ""
        print(f"  {label:24s} b = {b / 1e3:7.1f} kB per example-sample (estimate "
              f"{est_b / 1e3:.1f} kB, measured/estimate {b / est_b:.2f}), a = {a / GB:.3f} GB"
              f"{rel}")
    if "base" not in results:
        return
    _, _, rows, a, b = results["base"]
    t_layer, s_layer = per_layer_arithmetic(config)
    t, s = config.teacher, config.student
    passes = 2 if dc.contrastive_weight > 0 else 1
    kl = 4 * dc.num_kl_samples * t.num_mixtures
    kept = passes * t.num_layers * t_layer + sum(s.flow_layers) * s_layer
    per_sample = estimate(config, 1, dc.window_samples, {}) / dc.window_samples
    print(f"\nArithmetic (float32, bytes per example-sample kept for backprop): teacher "
          f"{t.num_layers} frozen layers x 4 B x ({t.residual_channels} + {t.gate_channels}) "
          f"(conv input, tanh, sigmoid) = {t.num_layers * t_layer / 1e3:.1f} kB per pass, x "
          f"{passes} pass(es); student {sum(s.flow_layers)} trained layers x 4 B x "
          f"({s.channels} + 3 x {s.channels}) (conv input, tanh, sigmoid, product) = "
          f"{sum(s.flow_layers) * s_layer / 1e3:.1f} kB; layers {kept / 1e3:.1f} kB, plus "
          f"7.25 [M, T, K] tensors of the KL per pass (M {dc.num_kl_samples} x K "
          f"{t.num_mixtures} x 4 B = {kl / 1e3:.1f} kB each); all terms "
          f"(memory_estimate) {per_sample / 1e3:.1f} kB; measured {b / 1e3:.1f} kB")
    weights = rows[-1]["teacher_bytes"] + rows[-1]["student_bytes"] + rows[-1]["optimizer_bytes"]
    budget = MARGIN * args.device_gb * GB - weights - max(a, 0)
    print(f"\nWeights on the device: teacher {rows[-1]['teacher_bytes'] / GB:.2f} GB, student "
          f"{rows[-1]['student_bytes'] / GB:.3f} GB, optimizer {rows[-1]['optimizer_bytes'] / GB:.3f}"
          f" GB (+ as much again in gradients, not counted)")
    print(f"{MARGIN:.0%} of {args.device_gb:g} GB less the weights and the intercept: "
          f"{budget / GB:.1f} GB for activations -> B x W <= {budget / b:,.0f} example-samples "
          f"per replica")
    for name in sorted({args.config, "paper", "ljspeech"}):
        c = load_config(name)
        n = c.distill.batch_size * c.distill.window_samples
        print(f"  {name}: distill {c.distill.batch_size} x {c.distill.window_samples} = {n:,}"
              f" example-samples -> {(a + b * n) / GB:.1f} GB at this config's b"
              + (" (the other config's b differs: measure it with --config)"
                 if name != args.config else "")
              + f"; per replica at window {c.distill.window_samples}: batch <= "
                f"{int(budget / b // c.distill.window_samples)}")


if __name__ == "__main__":
    main()
