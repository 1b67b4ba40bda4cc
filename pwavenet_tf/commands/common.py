"""Argument helpers shared by the `pwavenet` subcommands."""

import sys


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
