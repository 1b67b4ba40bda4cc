"""Thin entry point: `python export/export_saved_model.py --model DIR --out BASE [--name NAME]
[--version V] [--max-seconds S] [--format saved_model|tflite]`.

Same as `pwavenet export`; all logic lives in `pwavenet_tf.export` (ExportModule, versioning,
tflite). Writes TF Serving's layout BASE/NAME/VERSION/.
"""

import sys

from pwavenet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
