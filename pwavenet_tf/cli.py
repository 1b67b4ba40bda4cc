"""The `pwavenet` command: thin argument parsing over the library's tasks.

Each subcommand lives in `pwavenet_tf.commands.<name>` as `add_parser(subparsers)` plus
`run(args)`; this module only wires them together.
"""

import argparse
import errno
import importlib
import logging
import os
import sys
import warnings

COMMANDS = [
    ("prepare-data", "prepare_data", "Decode a corpus once into TFRecord shards for streaming."),
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
        epilog="Errors end in one line `pwavenet COMMAND: error: ...` and exit code 2 "
        "(130 when interrupted); PWAVENET_DEBUG=1 shows the traceback instead.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines and warnings (also with "
                        "PWAVENET_DEBUG=1); before or after the command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod, help_text in _available():
        p = sub.add_parser(name, help=help_text, description=mod.__doc__ or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        try:  # also after the command; SUPPRESS keeps the top-level value when not given
            p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                           help="show TensorFlow's log lines and warnings")
        except argparse.ArgumentError:
            pass  # the command has a --verbose of its own
        p.set_defaults(_run=mod.run)
    return parser


# Python warnings of the libraries that only concern their own developers.
_NOISY_PACKAGES = r"(tensorflow|tf_keras|keras|absl|tensorflow_io|google\.protobuf|h5py)(\.|$)"


def _wants_verbose(argv):
    """`--verbose` anywhere before a `--` (read before argparse: logging is set up before
    any command module, and so TensorFlow, is imported), or PWAVENET_DEBUG."""
    for token in argv:
        if token == "--":
            break
        if token == "--verbose":
            return True
    return bool(os.environ.get("PWAVENET_DEBUG"))


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"pwavenet: warning: {str(message).strip().splitlines()[0]} ({category.__name__})\n"


def configure_logging(verbose):
    """Quiet by default: TensorFlow's C++ log (level 3: not even its `E` lines, such as the
    three "Unable to register cuDNN/cuFFT/cuBLAS factory" of a CPU-only machine), its
    Python logger and absl below ERROR, and the deprecation warnings of TensorFlow, Keras
    and absl are off; other Python warnings print in one line. An explicit
    TF_CPP_MIN_LOG_LEVEL is respected. `verbose` leaves everything as the libraries set it.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quiet
        pass
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_NOISY_PACKAGES)
    warnings.formatwarning = _one_line_warning


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write somewhere else",
    errno.EDQUOT: "the disk quota is exceeded: free some space or write somewhere else",
    errno.EACCES: "permission denied: choose a folder you can write to (or fix its "
                  "permissions)",
    errno.EPERM: "operation not permitted: choose a folder you can write to",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EISDIR: "it is a folder: give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def _flag_for(args, filename):
    """`--flag` whose value is `filename` or one of its parent folders, or None."""
    if not filename or args is None:
        return None
    target = os.path.abspath(os.fsdecode(filename))
    best, best_len = None, -1
    for dest, value in vars(args).items():
        if dest.startswith("_") or dest == "command":
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(v, str) or not v:
                continue
            path = os.path.abspath(v)
            if (target == path or target.startswith(path.rstrip(os.sep) + os.sep)) and \
                    len(path) > best_len:
                best, best_len = "--" + dest.replace("_", "-"), len(path)
    return best


def describe_os_error(e, args=None):
    """One line for an OSError: the file (and the flag that named it) and what to do."""
    filename = e.filename
    if e.errno is None or filename is None:
        return str(e)  # raised by pwavenet with its own message
    name = os.fsdecode(filename)
    if e.errno == errno.EEXIST and os.path.isfile(name):
        hint = "it is a file where a folder is needed: choose another path (or remove the file)"
    elif e.errno == errno.EEXIST:
        hint = "it already exists: choose another path (or remove it)"
    else:
        hint = _OS_HINTS.get(e.errno, e.strerror or type(e).__name__)
    flag = _flag_for(args, name)
    where = f"{name} (from {flag})" if flag else name
    if e.filename2 is not None:
        where += f" -> {os.fsdecode(e.filename2)}"
    return f"cannot use {where}: {hint} [{e.strerror or errno.errorcode.get(e.errno)}]"


def _short_tf_message(e):
    msg = (getattr(e, "message", None) or str(e)).strip()
    if "}}" in msg:  # TensorFlow's "{{function_node ...}}" prefix
        msg = msg.split("}}", 1)[1]
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    asserted = [ln for ln in lines if "assertion failed" in ln]
    msg = (asserted or lines or [type(e).__name__])[0]
    return msg.split(" [Op:")[0].strip()


def describe_tf_error(e):
    """One line for the TensorFlow errors that expected bad input or state cause; None for
    the others (real bugs keep their traceback)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    errors = tf.errors
    msg = _short_tf_message(e)
    if isinstance(e, errors.InvalidArgumentError):
        return (f"an input was refused: {msg}. Check the arguments that set it "
                "(--speaker-id, --mel, --input, --max-seconds, ...)")
    if isinstance(e, errors.ResourceExhaustedError):
        return (f"out of memory or disk: {msg}. Use a smaller --batch-size or shorter "
                "inputs, or free disk space")
    if isinstance(e, (errors.NotFoundError, errors.PermissionDeniedError,
                      errors.AlreadyExistsError)):
        return f"{msg}. Check the paths given"
    if isinstance(e, errors.DataLossError):
        return f"a file is corrupt or truncated: {msg}. Remove it or restore it from a backup"
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    configure_logging(_wants_verbose(argv))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (2, the message printed) or --help (0)
        return e.code if isinstance(e.code, int) else 2
    debug = bool(os.environ.get("PWAVENET_DEBUG"))
    prefix = f"pwavenet {args.command}"
    try:
        result = args._run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{prefix}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as e:
        # Known failure modes carry a message that names the problem; no traceback.
        if debug:
            raise
        message = describe_os_error(e, args) if isinstance(e, OSError) else str(e)
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return 2
    except Exception as e:
        message = None if debug else describe_tf_error(e)
        if message is None:
            raise  # a real bug: keep the traceback
        print(f"{prefix}: error: {message} (PWAVENET_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2
    return 0 if result is None else int(result)


if __name__ == "__main__":
    sys.exit(main())
