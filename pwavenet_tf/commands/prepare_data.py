"""Decode, resample and compute the features of a corpus once, into TFRecord shards.

Writes to --out: train-NNNNN.tfrecord and valid-NNNNN.tfrecord shards (audio, conditioning
frames, speaker id and utterance id per clip; each shard at most --shard-mb unless one clip
is larger), .parts/ (what each finished shard holds) and, last, manifest.json (clip counts,
durations, the shard list, the training clips' feature mean/std and the hash of the
config's feature settings). Give the folder to `train-teacher --data` or `distill --data`:
it is streamed with tf.data, never loaded into memory. Re-running with the same arguments
resumes: complete shards are kept, missing or unfinished ones are written again.

Example:
  pwavenet prepare-data --config ljspeech --data LJSpeech-1.1 --out shards/ljspeech
"""

from pwavenet_tf.commands import common


def add_arguments(p):
    common.add_config_argument(p)
    p.add_argument("--data", required=True, help="corpus folder (LJ Speech layout or audio files)")
    p.add_argument("--out", required=True, help="shard folder to write (resumes if present)")
    p.add_argument("--num-validation", type=common.nonnegative_int, default=None,
                   help="clips held out for validation, in shards of their own (default: the "
                   "config's teacher_training.num_validation)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the train/validation split (default 0, as train-teacher's)")
    p.add_argument("--shard-mb", type=common.positive_float, default=128.0,
                   help="largest shard size in MiB (default 128)")
    common.add_verbosity_argument(p)


def run(args):
    from pwavenet_tf.data.shard_writer import prepare_shards, print_progress

    config = common.load_config_arg(args)
    num_validation = (config.teacher_training.num_validation if args.num_validation is None
                      else args.num_validation)
    manifest = prepare_shards(args.data, config.audio, args.out, num_validation,
                              seed=args.seed, shard_bytes=max(1, int(args.shard_mb * 2**20)),
                              progress=None if args.quiet else print_progress())
    split = manifest["split"]
    print(f"clips={manifest['num_clips']} train={split['train']['num_clips']} "
          f"valid={split['valid']['num_clips']} hours={manifest['duration_seconds'] / 3600:.4f} "
          f"shards={len(manifest['shards'])} settings_hash={manifest['settings_hash']}")
