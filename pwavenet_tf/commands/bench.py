"""Measure generation speed of the teacher and the student of a config, in one run on this
machine (the weights are freshly initialised: speed does not depend on training).

Phases, each at batch 1 and at --batch:
- teacher, naive: recomputes the receptive field at every step (the reference);
- teacher, cached queues in graph mode, and compiled with XLA;
- student, one parallel pass in graph mode, and compiled with XLA.
Every figure is the median of --repeats timed runs after --warmup untimed runs, with the
min and max. Reported per phase: samples/s (all utterances of the batch counted), the
multiple of real time at the config's sample rate, multiply-adds per output sample
(counted from the layer shapes; see `pwavenet_tf.benchmarks.flops`), achieved GFLOP/s
and its fraction of this machine's float32 matmul peak (measured first, in the same run),
and the peak resident memory of the phase (see `pwavenet_tf.benchmarks.speed`).
The summary gives the student's real-time factor and its speed-up over the teacher.

The teacher is 100-1000x slower than the student: measure it on fewer samples
(--teacher-seconds, --naive-seconds; at least one frame). The naive generator's window
grows until the receptive field is full; the table gives the mean window of the measured
run and the summary a steady-state estimate (same FLOP/s, full window).

`--phase train` measures training steps instead (`pwavenet_tf.benchmarks.training`): the
teacher's and the distillation step (`--stage`), compiled as `train-teacher` and
`distill` compile them (`--jit-compile`, `--mixed-precision`), at the config's batch and
window (or --batch / --window): step time (median of --steps after --warmup), training
samples/s, achieved GFLOP/s and its share of the matmul peak, and peak memory.

Examples:
  pwavenet bench --config tiny
  pwavenet bench --config ljspeech_mini --phase train --stage teacher distill --jit-compile
  pwavenet bench --config paper --seconds 1 --batch 4 --teacher-seconds 0.025 \\
      --naive-seconds 0.0125 --naive-repeats 1 --naive-max-batch 1 --json paper.json
"""

import json
import os

from pwavenet_tf.commands import common


def add_arguments(p):
    common.add_config_argument(p)
    p.add_argument("--phase", choices=["generate", "train"], default="generate",
                   help="generate (default): generation speed; train: training steps")
    p.add_argument("--stage", nargs="+", choices=["teacher", "distill"],
                   default=["teacher", "distill"],
                   help="train: which training steps (default both)")
    p.add_argument("--window", type=common.positive_int, default=None,
                   help="train: samples per example (default: the config's)")
    p.add_argument("--steps", type=common.positive_int, default=5,
                   help="train: timed steps (default 5)")
    p.add_argument("--jit-compile", action="store_true", help="train: XLA-compiled steps")
    p.add_argument("--mixed-precision", choices=["off", "bfloat16", "float16"], default="off",
                   help="train: mixed precision of the steps (default off)")
    p.add_argument("--seconds", type=common.positive_float, default=1.0,
                   help="audio per student run, in seconds (default 1.0)")
    p.add_argument("--batch", type=common.positive_int, default=None,
                   help="generate: the larger batch size, batch 1 is always measured "
                   "(default 4); train: examples per step (default: the config's)")
    p.add_argument("--teacher-seconds", type=common.positive_float, default=0.1,
                   help="audio per cached-teacher run (default 0.1)")
    p.add_argument("--naive-seconds", type=common.positive_float, default=0.01,
                   help="audio per naive-teacher run (default 0.01, at least one frame)")
    p.add_argument("--repeats", type=common.positive_int, default=3,
                   help="timed runs per phase (default 3)")
    p.add_argument("--warmup", type=common.nonnegative_int, default=None,
                   help="untimed warm-up runs per phase (default 1; train: 2 steps)")
    p.add_argument("--naive-repeats", type=common.positive_int, default=None,
                   help="timed runs of the naive teacher (default: --repeats)")
    p.add_argument("--naive-max-batch", type=common.positive_int, default=None,
                   help="measure the naive teacher only up to this batch size")
    p.add_argument("--no-xla", action="store_true", help="skip the XLA phases")
    p.add_argument("--no-naive", action="store_true", help="skip the naive teacher")
    p.add_argument("--no-teacher", action="store_true", help="skip the teacher")
    p.add_argument("--no-student", action="store_true", help="skip the student")
    common.add_precision_argument(p)
    p.add_argument("--matmul-sizes", default="512,1024,2048",
                   help="matrix sizes of the matmul peak measurement, comma-separated "
                        "('' skips it; default 512,1024,2048)")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _train(args, config, sizes):
    from pwavenet_tf.benchmarks import training

    results = [training.benchmark_training(
        config, stage, batch=args.batch, window=args.window, steps=args.steps,
        warmup=max(1, args.warmup if args.warmup is not None else 2),
        precision=args.mixed_precision, jit_compile=args.jit_compile, matmul_sizes=sizes,
        log=(lambda *a: None) if args.quiet else print) for stage in args.stage]
    print()
    print(training.format_training(results))
    return results


def run(args):
    from pwavenet_tf.benchmarks import speed

    config = common.load_config_arg(args)
    try:
        sizes = tuple(int(s) for s in args.matmul_sizes.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--matmul-sizes must be integers separated by commas. "
                         f"Received: {args.matmul_sizes!r}") from None
    if args.phase == "train":
        result = _train(args, config, sizes)
        _write_json(args.json, result)
        return None
    result = speed.benchmark_config(
        config, seconds=args.seconds, batch=args.batch or 4,
        teacher_seconds=args.teacher_seconds, naive_seconds=args.naive_seconds,
        repeats=args.repeats, warmup=1 if args.warmup is None else args.warmup,
        xla=not args.no_xla, naive=not args.no_naive, teacher=not args.no_teacher,
        student=not args.no_student, naive_repeats=args.naive_repeats,
        naive_max_batch=args.naive_max_batch, matmul_sizes=sizes,
        log=(lambda *a: None) if args.quiet else print, precision=args.precision,
    )
    print()
    print(speed.format_text(result))
    _write_json(args.json, result)


def _write_json(path, result):
    if path:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"wrote {path}")
