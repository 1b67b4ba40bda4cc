"""Argument helpers shared by the `pwavenet` subcommands."""

import argparse
import math
import sys


def _number(text, kind, cast, ok):
    try:
        value = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {kind}, got {text}")
    return value


def positive_int(text):
    """argparse `type=`: an integer >= 1 (a usage error naming the flag otherwise)."""
    return _number(text, "a positive integer", int, lambda v: v >= 1)


def nonnegative_int(text):
    """argparse `type=`: an integer >= 0."""
    return _number(text, "an integer >= 0", int, lambda v: v >= 0)


def positive_float(text):
    """argparse `type=`: a finite number > 0."""
    return _number(text, "a positive number", float, lambda v: v > 0)


def nonnegative_float(text):
    """argparse `type=`: a finite number >= 0."""
    return _number(text, "a number >= 0", float, lambda v: v >= 0)


def add_speaker_argument(p):
    p.add_argument("--speaker-id", type=nonnegative_int, default=None,
                   help="speaker of a multi-speaker model, 0 to num_speakers-1 (default 0); "
                   "refused for a single-speaker model")


def speaker_id_for(speaker_id, num_speakers, description):
    """The speaker id to pass a model of `num_speakers` (None: single speaker).

    `speaker_id` is the `--speaker-id` value (None when not given). Raises ValueError for an
    id given to a single-speaker model or an id out of range.
    """
    num_speakers = int(num_speakers or 0)
    if num_speakers <= 1:
        if speaker_id is not None:
            raise ValueError(f"--speaker-id {speaker_id} was given, but {description} is a "
                             "single-speaker model: drop --speaker-id.")
        return None
    speaker_id = 0 if speaker_id is None else int(speaker_id)
    if not 0 <= speaker_id < num_speakers:
        raise ValueError(f"--speaker-id {speaker_id} is out of range: {description} has "
                         f"{num_speakers} speakers (ids 0 to {num_speakers - 1}).")
    return speaker_id


def add_precision_argument(p):
    """`--precision {float32,bfloat16}` of the inference commands (vocode, generate, export,
    bench): the student's compute dtype (see `pwavenet_tf.models.student_precision`)."""
    from pwavenet_tf.models.student_precision import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="student compute precision: float32 (default) or bfloat16 (products "
                   "in bfloat16, variables and the flows' running sample in float32; for "
                   "CPUs with AVX512-BF16/AMX, TPUs, Ampere+ GPUs). Applies to the student "
                   "only: a teacher runs in float32 and refuses bfloat16")


def add_training_arguments(p):
    """The options `train-teacher` and `distill` share: seed, resume determinism, the
    `tf.distribute` strategy, mixed precision and XLA."""
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--deterministic", action="store_true",
                   help="TensorFlow op determinism: a run stopped and resumed any number of "
                   "times ends with the same weights as an uninterrupted run (slower on GPU)")
    p.add_argument("--strategy", choices=("auto", "default", "mirrored", "multi_worker"),
                   default="auto",
                   help="tf.distribute strategy: auto (default: MirroredStrategy when several "
                   "GPUs are visible, else one device), default, mirrored (all GPUs), "
                   "multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG). The config's "
                   "batch_size is the GLOBAL batch, split evenly over the replicas.")
    p.add_argument("--mixed-precision", nargs="?", const="float16", default="off",
                   choices=("off", "bfloat16", "float16"),
                   help="off (default), bfloat16 (CPUs with AVX512-BF16/AMX, TPUs, Ampere+ "
                   "GPUs) or float16 (with loss scaling; Volta/Turing GPUs). The bare flag "
                   "means float16, as before.")
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile the training step (see BENCHMARKS.md for when it is "
                   "faster)")


def add_config_argument(p, required=True):
    p.add_argument("--config", required=required,
                   help="JSON config path, or a bundled name: tiny, ljspeech, paper")


def add_verbosity_argument(p):
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def keras_verbosity(args):
    """Keras `verbose`: a progress bar on a terminal, one line per epoch otherwise."""
    if getattr(args, "quiet", False):
        return 0
    return 1 if sys.stdout.isatty() else 2


def load_config_arg(args):
    from pwavenet_tf.config import load_config

    return load_config(args.config)


def print_metrics(metrics, keys):
    shown = {k: metrics[k] for k in keys if k in metrics}
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in shown.items()))


def progress(iterable, total=None, desc=""):
    """A minimal text progress bar over an iterable (stderr)."""
    total = total if total is not None else len(iterable)
    for i, item in enumerate(iterable):
        yield item
        done = i + 1
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{desc} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
    sys.stderr.write("\n")
