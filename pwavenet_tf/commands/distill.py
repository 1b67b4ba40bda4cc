"""Distill a trained WaveNet teacher into a parallel IAF student (probability density
distillation: KL(student || teacher) plus power, perceptual and contrastive losses).

Writes to --out: config.json (with the teacher's audio settings), feature_stats.json,
checkpoints/ (student + optimizer; resumes), tensorboard/, metrics.json ({"step",
"initial_kl_per_sample", "kl_per_sample", "cross_entropy_per_sample",
"entropy_per_sample", "power", ...}, nats per sample, on a fixed evaluation batch).
SIGTERM or Ctrl-C: the step in progress finishes and is checkpointed, then the run exits
(re-run the same command to resume; not under multi_worker).

Example:
  pwavenet distill --teacher runs/teacher --config tiny --data ../shared/data/ljspeech-mini \\
      --out runs/student
  # a deeper student (config: student.flow_layers) grown from a trained one:
  pwavenet distill --teacher runs/teacher --config deeper.json --data DATA \\
      --out runs/student_deep --init-from runs/student
"""

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--teacher", required=True, help="trained teacher directory")
    common.add_config_argument(p)
    p.add_argument("--data", required=True, help="corpus folder (LJ Speech layout or audio files)")
    p.add_argument("--out", required=True, help="student directory (resumes if present)")
    p.add_argument("--steps", type=common.positive_int,
                   help="total distillation steps (default: config)")
    p.add_argument("--init-from", metavar="STUDENT_DIR",
                   help="a new --out starts from this trained student's weights; the "
                        "config's student.flow_layers may be deeper (the appended layers "
                        "start as the identity, so the output is the trained student's) "
                        "and its optimizer continues from that run's Adam moments; pair it "
                        "with distill.warmup_steps (e.g. 500); ignored when --out resumes")
    common.add_training_arguments(p)
    common.add_verbosity_argument(p)


def run(args):
    from pwavenet_tf.training.distill_task import DistillTask

    config = common.load_config_arg(args)
    task = DistillTask(config, args.teacher, args.data, args.out, seed=args.seed,
                       deterministic=args.deterministic, strategy=args.strategy,
                       mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
                       verbose=common.keras_verbosity(args), init_from=args.init_from)
    metrics = task.run(steps=args.steps)
    common.print_metrics(metrics, ("step", "initial_kl_per_sample", "kl_per_sample", "power"))
