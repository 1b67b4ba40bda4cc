"""Hear what pwavenet does, with no arguments and no network.

Without options: vocodes the bundled LJ Speech clips (held out from training) with the
bundled `ljspeech_mini` student, and a short excerpt with the bundled teacher to show the
speed difference; writes the WAVs, a spectrogram comparison PNG per clip and report.md
to --out, and prints the real-time factors.

With --train: runs every stage at tiny size from scratch on the bundled clips (or --data):
train a teacher, distill a student, export a SavedModel, load it and vocode a clip.
"""

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--out", default="pwavenet_demo", help="output folder (default pwavenet_demo)")
    p.add_argument("--preset", default="ljspeech_mini", help="bundled preset name or folder")
    p.add_argument("--teacher-seconds", type=common.nonnegative_float, default=0.25,
                   help="length of the teacher's excerpt (default 0.25 s; 0 skips the teacher)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", action="store_true",
                   help="run the whole pipeline at tiny size from scratch instead")
    p.add_argument("--data", help="with --train: corpus folder (default: the bundled clips)")
    common.add_verbosity_argument(p)


def run(args):
    from pwavenet_tf import demo

    if args.data is not None and not args.train:
        raise ValueError("--data is the corpus of the --train pipeline: add --train to train "
                         "on it, or drop --data to vocode the bundled clips.")
    if args.train:
        demo.run_training_demo(args.out, data_dir=args.data, seed=args.seed,
                               verbose=common.keras_verbosity(args))
    else:
        demo.run_demo(args.out, preset=args.preset, teacher_seconds=args.teacher_seconds,
                      seed=args.seed)
