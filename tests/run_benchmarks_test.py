"""`benchmarks/run_benchmarks.py` regenerates BENCHMARKS.md's generated part and keeps the
sections written after it (other scripts' figures) as they are."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_render_only_keeps_the_hand_written_sections(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    shutil.copy(os.path.join(ROOT, "BENCHMARKS.md"), out)
    before = out.read_text()
    generated_end = before.index("\n_Generated ")
    tail = before[before.index("\n", generated_end + 1) + 1:]
    assert "## Distillation step memory" in tail  # a hand-written section

    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run_benchmarks.py"),
                    "--render-only", "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    after = out.read_text()
    assert after.endswith(tail)
    # The generated part is rebuilt from results/*.json: the same, but for its date line.
    strip = lambda text: [ln for ln in text[:len(text) - len(tail)].splitlines()
                          if not ln.startswith("_Generated ")]
    assert strip(after) == strip(before)
