"""Thin entry point: `python trainers/train_teacher.py --config tiny --data DIR --out DIR`.

Same as `pwavenet train-teacher`; all logic lives in `pwavenet_tf.training.teacher_task`.
"""

import sys

from pwavenet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-teacher", *sys.argv[1:]]))
