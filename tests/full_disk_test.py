"""A full disk during training, generation and export: one line naming the path and "no
space", exit code 2, and no partial file left behind.

Each test mounts a small tmpfs, so it needs root (`mount -t tmpfs`); otherwise, or when the
mount is refused (a container without CAP_SYS_ADMIN), it is skipped with the reason.
"""

import os
import subprocess
import sys

import pytest

from pwavenet_tf.testing.data import ljspeech_mini_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET_STUDENT = os.path.join(REPO, "pwavenet_tf", "presets", "ljspeech_mini", "training",
                              "student")


@pytest.fixture
def tmpfs(tmp_path):
    """`mount(size)` -> the path of a fresh tmpfs of that size; unmounted at the end."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = []

    def mount(size):
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip() or r.returncode}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(disk):
    """Fills `disk` with one file until it is full; returns that file's name."""
    name = "filler.bin"
    chunk = b"\0" * 65536
    with open(disk / name, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    return name


def _cli(*args, timeout=420):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PWAVENET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_no_space(r, command, path):
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"pwavenet {command}: error: "), lines[0]
    assert "no space" in lines[0].lower(), lines[0]
    assert str(path) in lines[0], lines[0]


def _all_files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, files in os.walk(root) for n in dirs + files)


def test_training_on_a_full_disk_leaves_no_partial_checkpoint(tmpfs):
    # The tiny teacher's first checkpoint (weights, Adam moments, EMA: ~0.6 MB) does not
    # fit in 200 KB; config.json and the feature statistics do.
    disk = tmpfs("200k")
    out = disk / "teacher"
    r = _cli("train-teacher", "--config", "tiny", "--data", ljspeech_mini_dir(),
             "--out", str(out), "--steps", "100", "--batch-size", "2")
    _one_line_no_space(r, "train-teacher", out)
    # No checkpoint could be written: nothing that looks trained (or half-written) stays.
    assert not out.exists() or not os.listdir(out), _all_files(out)
    assert _all_files(disk) == []


def test_generate_on_a_full_disk_leaves_no_partial_wav(tmpfs):
    disk = tmpfs("1m")
    filler = _fill(disk)
    wav = disk / "out.wav"
    r = _cli("generate", "--input",
             os.path.join(ljspeech_mini_dir(), "wavs", "LJ001-0001.wav"),
             "--output", str(wav), "--max-seconds", "0.5")
    _one_line_no_space(r, "generate", wav)
    assert _all_files(disk) == [filler]  # no out.wav, no temporary file


def test_export_on_a_full_disk_leaves_no_version_folder(tmpfs):
    disk = tmpfs("1m")
    filler = _fill(disk)
    base = disk / "exports"
    r = _cli("export", "--model", PRESET_STUDENT, "--out", str(base), "--name", "student")
    _one_line_no_space(r, "export", disk)
    leftovers = [p for p in _all_files(disk) if p not in (filler, "exports", "exports/student")]
    assert leftovers == [], leftovers  # no version folder, no .tmp-* folder
