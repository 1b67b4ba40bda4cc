"""Thin entry point: `python trainers/distill.py --teacher DIR --config tiny --data DIR --out DIR`.

Same as `pwavenet distill`; all logic lives in `pwavenet_tf.training.distill_task`.
"""

import sys

from pwavenet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]]))
