"""Student inference speed in float32 vs bfloat16 (issue 13, item 4). Prints; asserts nothing.

For the bundled `ljspeech_mini` preset's student and a randomly initialised student of the
paper config (configs/paper.json: 4 flows of 10/10/10/30 layers x 64 channels, 24 kHz), at
batch 1: one-pass generation (`StudentGenerator.generate`, graph mode; `--xla` adds the
XLA-compiled pass) of `--seconds` of random log-mel frames, float32 and the bfloat16 student
of `student_with_precision` (mixed_bfloat16: bfloat16 products, float32 variables and
running sample). After `--warmup` untimed runs of each, the timed runs alternate float32 and
bfloat16 (so a change of background load hits both alike); printed: the median samples/s
with the min and max over `--repeats` runs, and the bfloat16 / float32 speed-up.

Run: python benchmarks/student_precision.py [--seconds 1] [--repeats 7] [--warmup 2] [--xla]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _students():
    from pwavenet_tf.config import load_config
    from pwavenet_tf.models.iaf_student import IAFStudent
    from pwavenet_tf.presets import from_preset

    preset = from_preset("ljspeech_mini")
    yield "ljspeech_mini preset", preset.student(), preset.config
    config = load_config("paper")
    yield "paper config (random init)", IAFStudent.from_pwavenet_config(config), config


def measure(student, config, seconds, repeats, warmup, jit_compile):
    """`{precision: [samples/s of each timed run]}` at batch 1, float32 and bfloat16."""
    import numpy as np

    from pwavenet_tf.models.student_generator import StudentGenerator
    from pwavenet_tf.models.student_precision import PRECISIONS, student_with_precision

    audio = config.audio
    frames = max(1, round(seconds * audio.sample_rate / audio.hop_length))
    feats = np.random.default_rng(0).normal(size=(1, frames, audio.conditioning_dim))
    feats = feats.astype("float32")
    samples = frames * audio.hop_length
    generators = {p: StudentGenerator(student_with_precision(student, p)) for p in PRECISIONS}

    def run(precision):
        start = time.perf_counter()
        out = generators[precision].generate(feats, seed=(0, 0), jit_compile=jit_compile)
        np.asarray(out)
        return time.perf_counter() - start

    for precision in PRECISIONS:
        for _ in range(warmup):
            run(precision)
    rates = {p: [] for p in PRECISIONS}
    for _ in range(repeats):
        for precision in PRECISIONS:
            rates[precision].append(samples / run(precision))
    return rates, samples


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1.0, help="audio per run (default 1)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs of each (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs of each (default 2)")
    p.add_argument("--xla", action="store_true", help="also the XLA-compiled pass")
    args = p.parse_args()

    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    modes = [("graph", False)] + ([("xla", True)] if args.xla else [])
    for name, student, config in _students():
        for mode, jit in modes:
            rates, samples = measure(student, config, args.seconds, args.repeats, args.warmup,
                                     jit)
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"{name}, {mode}, batch 1, {samples} samples ({args.seconds:g} s at "
                  f"{config.audio.sample_rate} Hz) per run, median of {args.repeats} after "
                  f"{args.warmup} warm-up:")
            for precision, values in rates.items():
                print(f"  {precision:9s} {med[precision]:>10,.0f} samples/s "
                      f"(min {min(values):,.0f}, max {max(values):,.0f})")
            print(f"  bfloat16 / float32: {med['bfloat16'] / med['float32']:.2f}x")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
