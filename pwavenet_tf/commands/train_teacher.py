"""Train the autoregressive WaveNet teacher with `model.fit` (teacher forcing).

Writes to --out: config.json (resolved), feature_stats.json, checkpoints/ (model and
optimizer; a killed run resumes from the newest, the step counter continuing),
tensorboard/ (scalars, audio, mel images) and metrics.json ({"step",
"train_bits_per_sample", "val_bits_per_sample", ...}).
SIGTERM or Ctrl-C: the step in progress finishes and is checkpointed, then the run exits
(re-run the same command to resume; not under multi_worker).

Example:
  pwavenet train-teacher --config tiny --data ../shared/data/ljspeech-mini --out runs/teacher
"""

from pwavenet_tf.commands import common


def add_arguments(p):
    common.add_config_argument(p)
    p.add_argument("--data", required=True, help="corpus folder (LJ Speech layout or audio files)")
    p.add_argument("--out", required=True, help="output/training directory (resumes if present)")
    p.add_argument("--steps", type=common.positive_int,
                   help="total training steps (default: from the config)")
    p.add_argument("--batch-size", type=common.positive_int,
                   help="GLOBAL batch size, split over the replicas (default: the config's)")
    common.add_training_arguments(p)
    common.add_verbosity_argument(p)


def run(args):
    from pwavenet_tf.training.teacher_task import TeacherTask

    config = common.load_config_arg(args)
    task = TeacherTask(config, args.data, args.out, seed=args.seed,
                       deterministic=args.deterministic, strategy=args.strategy,
                       mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
                       verbose=common.keras_verbosity(args))
    metrics = task.run(steps=args.steps, batch_size=args.batch_size)
    common.print_metrics(metrics, ("step", "train_bits_per_sample", "val_bits_per_sample"))
