"""Batch scaling of the cached (fast-WaveNet) teacher: the old generator against the new.

Aggregate samples/s (all utterances of the batch counted) of `TeacherGenerator(...,
method="cached")` with random weights, at the `ljspeech_mini` teacher shape for batch 1, 4
and 16 and at the `paper` teacher shape for batch 1, in graph mode and under XLA. "old" is
the generator as it was before the ring buffers (copied below, verbatim in substance: a
time-ordered queue per block shifted with `concatenate([state[:, 1:], x])` every sample,
the conditioning projected per block per step, separate residual and skip matmuls);
"new" is `pwavenet_tf.models.teacher_generator.TeacherGenerator`.

Both run in this one process, interleaved (old, new, old, new, ...) after a warm-up call
each (tracing, XLA compilation), so background load hits them alike; the figures are the
medians over the timed runs, with min-max. Also printed: the largest difference between
old and new audio for the same seed (should be ~0: the same noise, the same model).

Usage (from the repository root):
  python benchmarks/teacher_batch_scaling.py                    # everything (~10-20 min)
  python benchmarks/teacher_batch_scaling.py --modes xla --no-paper
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from pwavenet_tf.config import load_config  # noqa: E402
from pwavenet_tf.models.teacher_generator import TeacherGenerator  # noqa: E402
from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher  # noqa: E402


# --- The old cached generator (before the ring buffers), for comparison ---------------

def _old_conv_step(conv, x_t, state):
    in_channels = conv.kernel.shape[1]
    if conv.queue_length:
        taps = ops.take(state, list(range(0, conv.queue_length, conv.dilation_rate)), axis=1)
        taps = ops.concatenate([taps, x_t[:, None, :]], axis=1)  # [B, k, in]
        new_state = ops.concatenate([state[:, 1:], x_t[:, None, :]], axis=1)
    else:
        taps, new_state = x_t[:, None, :], state
    flat = ops.reshape(taps, (-1, conv.kernel_size * in_channels))
    y = ops.matmul(flat, ops.reshape(conv.kernel, (conv.kernel_size * in_channels, -1)))
    if conv.use_bias:
        y = y + conv.bias
    return y, new_state


def _old_teacher_step(teacher, x_prev, conditioning_t, global_conditioning, state):
    h, _ = _old_conv_step(teacher.input_proj, teacher._input_transform(x_prev), None)
    skips = None
    new_state = []
    for block, queue in zip(teacher.blocks, state):
        g, queue = _old_conv_step(block.conv, h, queue)
        z = block._gate(g, conditioning_t, global_conditioning)
        h, skip = block._outputs(h, z)
        new_state.append(queue)
        skips = skip if skips is None else skips + skip
    return teacher._head(skips), new_state


class OldTeacherGenerator(TeacherGenerator):
    """`TeacherGenerator` with the old cached loop (same noise, setup and sampling)."""

    def _generate_cached(self, features, speaker_id, uniforms):
        teacher = self.teacher
        conditioning, global_cond, batch, length = self._setup(features, speaker_id)
        cond_t_major = tf.transpose(conditioning, [1, 0, 2])
        state = teacher.initial_state(batch, conditioning.dtype)
        out = tf.TensorArray(tf.float32, size=length)

        def body(t, x_prev, state, out):
            params, state = _old_teacher_step(teacher, x_prev, cond_t_major[t], global_cond,
                                              state)
            x = ops.cast(self._sample(params, uniforms[t]), tf.float32)
            return t + 1, x, state, out.write(t, x)

        _, _, _, out = tf.while_loop(
            lambda t, *_: t < length, body, (0, tf.zeros([batch], tf.float32), state, out)
        )
        return tf.transpose(out.stack(), [1, 0])


# --- Measurement ----------------------------------------------------------------------

def _teacher(config_name):
    config = load_config(config_name)
    teacher = WaveNetTeacher.from_pwavenet_config(config)
    return teacher, config


def measure(teacher, config, batch, frames, mode, repeats, old=True):
    """Interleaved timings of old and new: `({name: [wall-clock samples/s per run]},
    {name: [samples per CPU-second of this process per run]}, max |old - new|)`."""
    jit = mode == "xla"
    gens = {"new": TeacherGenerator(teacher, jit_compile=jit)}
    if old:
        gens["old"] = OldTeacherGenerator(teacher, jit_compile=jit)
    rng = np.random.default_rng(0)
    feats = tf.constant(rng.normal(size=(batch, frames, config.audio.conditioning_dim))
                        .astype("float32"))
    speaker = (np.zeros([batch], "int32") if config.audio.num_speakers > 1 else None)
    samples = batch * frames * teacher.hop_length
    audio, rates = {}, {name: [] for name in gens}
    for name, gen in gens.items():  # warm-up: tracing and compilation
        audio[name] = gen.generate(feats, speaker, seed=(0, 0), method="cached").numpy()
    cpu_rates = {name: [] for name in gens}
    for _ in range(repeats):
        for name, gen in gens.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            gen.generate(feats, speaker, seed=(0, 0), method="cached").numpy()
            rates[name].append(samples / (time.perf_counter() - start))
            cpu_rates[name].append(samples / max(time.process_time() - cpu_start, 1e-9))
    diff = float(np.abs(audio["old"] - audio["new"]).max()) if old else None
    return rates, cpu_rates, diff


def _fmt(values):
    return (f"{statistics.median(values):>9,.0f} [{min(values):,.0f}-{max(values):,.0f}]")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", nargs="+", default=["graph", "xla"], choices=["graph", "xla"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--mini-frames", type=int, default=2,
                   help="frames per utterance at the mini shape (hop 256)")
    p.add_argument("--paper-frames", type=int, default=1,
                   help="frames per utterance at the paper shape (hop 300)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--paper-repeats", type=int, default=3)
    p.add_argument("--no-paper", action="store_true")
    p.add_argument("--no-mini", action="store_true")
    p.add_argument("--no-old", action="store_true", help="measure the new generator only")
    p.add_argument("--intra-op-threads", type=int, default=0,
                   help="TensorFlow intra-op threads (0: TensorFlow's default)")
    args = p.parse_args(argv)

    print(f"{os.cpu_count()} cores, load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; TensorFlow {tf.__version__}")
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    rows = []
    teacher, config = _teacher("ljspeech_mini")
    for mode in args.modes if not args.no_mini else ():
        for b in args.batches:
            rates, cpu, diff = measure(teacher, config, b, args.mini_frames, mode,
                                       args.repeats, old=not args.no_old)
            rows.append(("ljspeech_mini", mode, b, rates, cpu, diff))
            print(_row(rows[-1]), flush=True)
    if not args.no_paper:
        teacher, config = _teacher("paper")
        for mode in args.modes:
            rates, cpu, diff = measure(teacher, config, 1, args.paper_frames, mode,
                                       args.paper_repeats, old=not args.no_old)
            rows.append(("paper", mode, 1, rates, cpu, diff))
            print(_row(rows[-1]), flush=True)

    for title, key in (("wall-clock samples/s", 3), ("samples per CPU-second", 4)):
        print(f"\nSummary, {title} (all utterances of the batch counted; median "
              "[min-max] of the timed runs):")
        print(f"{'shape':14s} {'mode':5s} {'batch':>5s} {'old':>26s} {'new':>26s} "
              f"{'new/old':>8s} {'new vs b1':>9s} {'max |old-new|':>13s}")
        for row in rows:
            print(_row(row, rows, key))
    print(f"load average at end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _row(row, rows=None, key=3):
    shape, mode, b, diff = row[0], row[1], row[2], row[5]
    rates = row[key]
    new = statistics.median(rates["new"])
    old = statistics.median(rates["old"]) if "old" in rates else None
    scaling = ""
    if rows is not None:
        base = [r for r in rows if r[0] == shape and r[1] == mode and r[2] == 1]
        if base and b != 1:
            scaling = f"{new / statistics.median(base[0][key]['new']):.1f}x"
    return (f"{shape:14s} {mode:5s} {b:5d} {_fmt(rates['old']) if old else '-':>26s} "
            f"{_fmt(rates['new']):>26s} {f'{new / old:.2f}x' if old else '-':>8s} "
            f"{scaling:>9s} {'-' if diff is None else f'{diff:.1e}':>13s}")


if __name__ == "__main__":
    main()
