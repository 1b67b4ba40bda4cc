"""Thin entry point: package a trained teacher and student as a preset folder.

    python trainers/build_preset.py --teacher runs/teacher --student runs/student \\
        --data ../shared/data/ljspeech-mini --out pwavenet_tf/presets/ljspeech_mini \\
        --name ljspeech_mini --description "..." [--figures eval/report.json] \\
        [--training-state]

All logic lives in `pwavenet_tf.presets` (`preset_from_runs`, `save_training_state`).
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--data", required=True, help="the corpus both were trained on")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--description", required=True)
    p.add_argument("--seed", type=int, default=0, help="the seed of the train/valid split")
    p.add_argument("--figures", help="a report.json of `pwavenet evaluate` to record")
    p.add_argument("--training-state", action="store_true",
                   help="also copy both runs' newest checkpoint, config and metrics into "
                        "OUT/training/ so later runs resume (the student's teacher becomes "
                        "../teacher)")
    args = p.parse_args()

    from pwavenet_tf.presets import preset_from_runs, preset_metadata, save_training_state

    metadata = preset_metadata(args.name, args.description, args.student, args.data, args.seed)
    if args.figures:
        with open(args.figures) as f:
            metadata["evaluation"] = json.load(f).get("average")
    preset_from_runs(args.teacher, args.student, args.out, metadata)
    if args.training_state:
        save_training_state(args.teacher, args.student, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
