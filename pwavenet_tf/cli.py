"""The `pwavenet` command: thin argument parsing over the library's tasks.

Each subcommand lives in `pwavenet_tf.commands.<name>` as `add_parser(subparsers)` plus
`run(args)`; this module only wires them together.
"""

import argparse
import importlib
import os
import sys

COMMANDS = [
    ("train-teacher", "train_teacher", "Train the autoregressive WaveNet teacher."),
    ("distill", "distill", "Distill a trained teacher into a parallel IAF student."),
    ("generate", "generate", "Generate audio from features with a teacher or student."),
    ("export", "export", "Export a trained model as a TF Serving SavedModel."),
    ("vocode", "vocode", "Resynthesize audio files or feature arrays."),
    ("bench", "bench", "Measure generation speed of the teacher and the student."),
    ("evaluate", "evaluate", "Evaluate resynthesis quality against real audio."),
    ("demo", "demo", "Vocode the bundled clips with the bundled model."),
]


def _available():
    out = []
    for name, module, help_text in COMMANDS:
        try:
            mod = importlib.import_module(f"pwavenet_tf.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"pwavenet_tf.commands.{module}":
                continue
            raise
        out.append((name, mod, help_text))
    return out


def build_parser():
    parser = argparse.ArgumentParser(
        prog="pwavenet",
        description="Parallel WaveNet: train a WaveNet teacher, distill a fast IAF student, "
        "export and serve it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod, help_text in _available():
        p = sub.add_parser(name, help=help_text, description=mod.__doc__ or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args._run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        # Known failure modes carry a message that names the problem; no traceback.
        if os.environ.get("PWAVENET_DEBUG"):
            raise
        print(f"pwavenet {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0 if result is None else int(result)


if __name__ == "__main__":
    sys.exit(main())
