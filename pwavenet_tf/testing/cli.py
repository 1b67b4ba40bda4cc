"""Run the `pwavenet` command in a fresh process, as a user's shell would."""

import os
import subprocess
import sys


def run_pwavenet(*argv, cwd=None, timeout=300):
    """`python -m pwavenet_tf.cli ARGV...` with the test session's TensorFlow log level and
    PWAVENET_DEBUG removed from the environment, so the command's own quiet defaults are
    what is tested (conftest sets TF_CPP_MIN_LOG_LEVEL=2, under which TensorFlow's
    cuFFT/cuDNN/cuBLAS `E` lines print)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "PWAVENET_DEBUG")}
    return subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)
