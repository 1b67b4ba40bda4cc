"""Training-step speed and memory behind `pwavenet bench --phase train`.

`benchmark_training(config, stage, ...)` builds the config's teacher (stage `teacher`) or
its student, frozen teacher and `Distiller` (stage `distill`) with fresh weights, compiled
exactly as `pwavenet train-teacher` / `pwavenet distill` compile them (`compile_teacher`,
`build_distiller`: the same train steps, graph mode or XLA, float32 or mixed precision),
and runs `warmup + steps` training steps under `model.fit` on one fixed random batch of the
stage's shape (batch x window samples of audio with its frame features). Reported: the
median / min / max step time of the timed steps, training samples/s (batch x window per
step), the step's FLOPs counted from the layer shapes (`flops`: forward multiply-adds per
sample x 2, x 3 for the forward and backward passes; for distillation the student's pass
plus one teacher pass on its sample, two with the contrastive term), achieved GFLOP/s
and its fraction of the float32 matmul peak, and the peak RSS of the steps
(`measure.PeakMemory`, the warm-up included: its first step allocates the activations)
with what they added over the built models (the traced graph included).
"""

import time

import numpy as np

from pwavenet_tf.benchmarks.flops import student_macs_per_sample, teacher_macs_per_sample
from pwavenet_tf.benchmarks.measure import PeakMemory, Timing, machine_info, matmul_peak

STAGES = ("teacher", "distill")


def _batch(config, batch, window, seed=0):
    """One training batch as the data pipeline gives it: `({"audio", "features"[,
    "speaker_id"]}, audio)` (speech-like amplitudes; speed does not depend on the values)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    hop = config.audio.hop_length
    audio = (0.1 * rng.standard_normal((batch, window))).clip(-1, 1).astype("float32")
    features = rng.standard_normal((batch, window // hop, config.audio.conditioning_dim))
    inputs = {"audio": audio, "features": features.astype("float32")}
    if config.audio.num_speakers > 1:
        inputs["speaker_id"] = np.zeros((batch,), "int32")
    return tf.data.Dataset.from_tensors((inputs, audio)).repeat()


class _StepTimes:
    """A Keras callback recording each batch's wall-clock seconds."""

    def __new__(cls):
        import keras

        class StepTimes(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_train_batch_begin(self, batch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return StepTimes()


def _check(stage, steps, warmup):
    if stage not in STAGES:
        raise ValueError(f"`stage` must be one of {', '.join(STAGES)}. Received: stage={stage!r}")
    if steps < 1 or warmup < 1:
        raise ValueError(f"`steps` and `warmup` must be >= 1. Received: steps={steps}, "
                         f"warmup={warmup}")


def build_stage(config, stage, precision="off", jit_compile=False, seed=0):
    """`(model to fit, forward MACs per training sample)` of a stage, with fresh weights."""
    import keras

    from pwavenet_tf.training.distill_task import build_distiller, build_student
    from pwavenet_tf.training.teacher_task import build_teacher, compile_teacher

    keras.utils.set_random_seed(seed)
    teacher = build_teacher(config, None, precision)
    dim = config.audio.conditioning_dim
    hop = config.audio.hop_length
    probe = {"audio": np.zeros((1, 4 * hop), "float32"),
             "features": np.zeros((1, 4, dim), "float32")}
    if config.audio.num_speakers > 1:
        probe["speaker_id"] = np.zeros((1,), "int32")
    teacher(probe)  # built, for the FLOP count
    teacher_macs = teacher_macs_per_sample(teacher)["total"]
    if stage == "teacher":
        compile_teacher(teacher, config.teacher_training, jit_compile=jit_compile)
        return teacher, teacher_macs
    teacher.trainable = False
    student = build_student(config, None, precision)
    distiller = build_distiller(config, student, teacher, seed=seed, precision=precision,
                                jit_compile=jit_compile)
    dc = config.distill
    student_macs = student_macs_per_sample(student)["total"]
    teacher_passes = 2 if dc.contrastive_weight > 0 else 1
    return distiller, student_macs + teacher_passes * teacher_macs


def benchmark_training(config, stage="teacher", batch=None, window=None, steps=5, warmup=2,
                       precision="off", jit_compile=False, matmul_sizes=(512, 1024, 2048),
                       log=print):
    """Measures `steps` training steps of `stage` at the config's shape (or `batch` x
    `window`); returns a JSON-able dict (see the module docstring)."""
    from pwavenet_tf.training.precision import check_xla_precision, precision_name

    _check(stage, steps, warmup)
    precision = precision_name(precision)
    check_xla_precision(precision, jit_compile)
    section = config.teacher_training if stage == "teacher" else config.distill
    batch = int(batch or section.batch_size)
    hop = config.audio.hop_length
    window = int(window or section.window_samples) // hop * hop
    if window < hop or batch < 1:
        raise ValueError(f"Need batch >= 1 and a window of at least one frame ({hop} "
                         f"samples). Received: batch={batch}, window={window}")
    peak = matmul_peak(sizes=matmul_sizes) if matmul_sizes else None
    log(f"{stage}: building {config.name} ({precision}, "
        f"{'XLA' if jit_compile else 'graph'}), batch {batch} x {window} samples")
    model, macs = build_stage(config, stage, precision, jit_compile)
    data = _batch(config, batch, window)
    timer = _StepTimes()
    # The memory of the steps includes the first (traced) one, where the activations
    # are first allocated: from the built models to the end of the timed steps.
    with PeakMemory() as memory:
        model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0, callbacks=[timer])
        log(f"{stage}: warm-up (tracing{' and XLA compilation' if jit_compile else ''}) "
            f"{sum(timer.seconds):.1f} s; timing {steps} steps")
        timer.seconds.clear()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    timing = Timing(list(timer.seconds))
    samples = batch * window
    flops = 3 * 2 * macs * samples
    gflops = flops / timing.median / 1e9
    result = {
        "stage": stage, "config": config.name, "precision": precision,
        "jit_compile": bool(jit_compile), "batch": batch, "window": window,
        "step_seconds": timing.to_dict(),
        "training_samples_per_s": samples / timing.median,
        "forward_macs_per_sample": macs, "step_gflop": flops / 1e9,
        "achieved_gflops": gflops,
        "matmul_peak_gflops": None if peak is None else peak["peak_gflops"],
        "fraction_of_matmul_peak": None if peak is None else gflops / peak["peak_gflops"],
        "memory": memory.to_dict(),
        "machine": machine_info(),
    }
    return result


def format_training(results):
    """A markdown table of `benchmark_training` results."""
    rows = ["| stage | precision | mode | batch x window | step (median, min-max) | "
            "training samples/s | GFLOP/s (of matmul peak) | peak RSS (added by the steps) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        t = r["step_seconds"]
        frac = r["fraction_of_matmul_peak"]
        mem = r["memory"]
        added = mem.get("phase_increase_mb")
        rows.append(
            f"| {r['stage']} | {r['precision']} | {'XLA' if r['jit_compile'] else 'graph'} | "
            f"{r['batch']} x {r['window']:,} | {t['median_s']:.3f} s ({t['min_s']:.3f}-"
            f"{t['max_s']:.3f}) | {r['training_samples_per_s']:,.0f} | "
            f"{r['achieved_gflops']:.1f}" + (f" ({100 * frac:.0f}%)" if frac else "") + " | "
            f"{mem['peak_rss_mb']:,.0f} MB" + (f" (+{added:,.0f})" if added is not None else "")
            + " |")
    return "\n".join(rows)
