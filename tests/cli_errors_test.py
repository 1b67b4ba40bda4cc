"""The CLI's failure modes: usage errors name the flag, expected failures end in one line
`pwavenet CMD: error: ...` with exit code 2 (130 when interrupted), real bugs keep their
traceback, and commands print no TensorFlow C++ log lines unless asked to.

Everything here fails before any training or generation (argument checks, small fakes,
monkeypatched commands); only the subprocess tests load TensorFlow.
"""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from pwavenet_tf import cli
from pwavenet_tf.commands import bench, common
from pwavenet_tf.config import ConfigError, load_config
from pwavenet_tf.testing.cli import run_pwavenet


def _usage_error(capsys, argv):
    assert cli.main(argv) == 2, argv
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, flag, problem", [
    (["generate", "--mel", "x.npy", "--output", "o.wav", "--max-seconds", "-1"],
     "--max-seconds", "must be a positive number, got -1"),
    (["generate", "--mel", "x.npy", "--output", "o.wav", "--max-seconds", "0"],
     "--max-seconds", "must be a positive number, got 0"),
    (["generate", "--mel", "x.npy", "--output", "o.wav", "--chunk-seconds", "0"],
     "--chunk-seconds", "must be a positive number, got 0"),
    (["generate", "--mel", "x.npy", "--output", "o.wav", "--chunk-seconds", "-2.5"],
     "--chunk-seconds", "must be a positive number, got -2.5"),
    (["generate", "--mel", "x.npy", "--output", "o.wav", "--speaker-id", "-1"],
     "--speaker-id", "must be an integer >= 0, got -1"),
    (["vocode", "--mel", "x.npy", "--output-dir", "o", "--max-seconds", "nan"],
     "--max-seconds", "expected a positive number, got 'nan'"),
    (["vocode", "--mel", "x.npy", "--output-dir", "o", "--chunk-seconds", "0"],
     "--chunk-seconds", "must be a positive number, got 0"),
    (["vocode", "--mel", "x.npy", "--output-dir", "o", "--speaker-id", "-1"],
     "--speaker-id", "must be an integer >= 0, got -1"),
    (["demo", "--teacher-seconds", "-1"], "--teacher-seconds", "must be a number >= 0, got -1"),
    (["train-teacher", "--config", "tiny", "--data", "d", "--out", "o", "--steps", "0"],
     "--steps", "must be a positive integer, got 0"),
    (["train-teacher", "--config", "tiny", "--data", "d", "--out", "o", "--batch-size", "0"],
     "--batch-size", "must be a positive integer, got 0"),
    (["distill", "--teacher", "t", "--config", "tiny", "--data", "d", "--out", "o",
      "--steps", "-5"], "--steps", "must be a positive integer, got -5"),
    (["distill", "--teacher", "t", "--config", "tiny", "--data", "d", "--out", "o",
      "--steps", "1.5"], "--steps", "expected a positive integer, got '1.5'"),
    (["export", "--model", "m", "--out", "o", "--max-seconds", "0"],
     "--max-seconds", "must be a positive number, got 0"),
    (["export", "--model", "m", "--out", "o", "--version", "0"],
     "--version", "must be a positive integer, got 0"),
    (["bench", "--config", "tiny", "--batch", "0"], "--batch", "must be a positive integer"),
    (["bench", "--config", "tiny", "--warmup", "-1"], "--warmup", "must be an integer >= 0"),
    (["bench", "--config", "tiny", "--teacher-seconds", "0"],
     "--teacher-seconds", "must be a positive number"),
])
def test_bad_numbers_are_usage_errors_naming_the_flag(capsys, argv, flag, problem):
    err = _usage_error(capsys, argv)
    assert f"pwavenet {argv[0]}: error: argument {flag}: {problem}" in err, err


def test_demo_data_without_train_is_refused(capsys):
    assert cli.main(["demo", "--data", "corpus"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "pwavenet demo: error: --data is the corpus of the --train pipeline: add --train to "
        "train on it, or drop --data to vocode the bundled clips."]


def test_speaker_ids_are_checked_against_the_model():
    assert common.speaker_id_for(None, 0, "m") is None  # single speaker, none asked
    assert common.speaker_id_for(None, 4, "m") == 0  # multi-speaker default
    assert common.speaker_id_for(3, 4, "m") == 3
    with pytest.raises(ValueError, match=r"--speaker-id 0 was given, but the student in "
                       r"runs/s is a single-speaker model: drop --speaker-id"):
        common.speaker_id_for(0, 1, "the student in runs/s")
    with pytest.raises(ValueError, match=r"--speaker-id 4 is out of range: m has 4 speakers "
                       r"\(ids 0 to 3\)"):
        common.speaker_id_for(4, 4, "m")


def test_a_folder_named_like_a_bundled_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()  # e.g. `--out tiny` of an earlier run
    assert load_config("tiny").name == "tiny"  # the bundled config, not the folder
    with pytest.raises(ConfigError, match=r"Config ./tiny is a folder, not a JSON file"):
        load_config("./tiny")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"a training folder: run/config.json is its config"):
        load_config("run")
    (tmp_path / "cut.json").write_text('{"audio": {')
    with pytest.raises(ConfigError, match=r"Config file cut.json is not valid JSON"):
        load_config("cut.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match=r"Config file list.json must hold a JSON object"):
        load_config("list.json")


def _failing_bench(monkeypatch, exc):
    def run(args):
        raise exc

    monkeypatch.setattr(bench, "run", run)  # build_parser reads `mod.run` on each call


def _one_line_error(capsys, argv, code=2):
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_os_errors_are_one_line_naming_the_file_and_flag(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "bench.json")
    argv = ["bench", "--config", "tiny", "--json", out]
    _failing_bench(monkeypatch, OSError(errno.ENOSPC, "No space left on device", out))
    assert _one_line_error(capsys, argv) == (
        f"pwavenet bench: error: cannot use {out} (from --json): the disk is full: free some "
        "space or write somewhere else [No space left on device]")
    _failing_bench(monkeypatch, PermissionError(errno.EACCES, "Permission denied",
                                                os.path.join(str(tmp_path), "x")))
    line = _one_line_error(capsys, ["bench", "--config", "tiny", "--json", str(tmp_path)])
    assert line.startswith(f"pwavenet bench: error: cannot use {tmp_path}/x (from --json): "
                           "permission denied: choose a folder you can write to"), line
    (tmp_path / "file").write_text("")
    _failing_bench(monkeypatch, FileExistsError(errno.EEXIST, "File exists",
                                                str(tmp_path / "file")))
    line = _one_line_error(capsys, argv)
    assert "it is a file where a folder is needed" in line and "(from --json)" not in line
    _failing_bench(monkeypatch, OSError(errno.EROFS, "Read-only file system", out))
    assert "the file system is read-only: write somewhere else" in _one_line_error(capsys, argv)
    # pwavenet's own FileNotFoundError keeps its message.
    _failing_bench(monkeypatch, FileNotFoundError("Model not found: m"))
    assert _one_line_error(capsys, argv) == "pwavenet bench: error: Model not found: m"


def test_tensorflow_input_errors_are_one_line(monkeypatch, capsys):
    import tensorflow as tf

    _failing_bench(monkeypatch, tf.errors.InvalidArgumentError(
        None, None, "{{function_node __inference_f}} indices[0] = 7 is not in [0, 4) "
        "[Op:ResourceGather]\nmore detail"))
    assert _one_line_error(capsys, ["bench", "--config", "tiny"]) == (
        "pwavenet bench: error: an input was refused: indices[0] = 7 is not in [0, 4). Check "
        "the arguments that set it (--speaker-id, --mel, --input, --max-seconds, ...) "
        "(PWAVENET_DEBUG=1 shows the traceback)")
    _failing_bench(monkeypatch, tf.errors.ResourceExhaustedError(None, None, "OOM"))
    assert "out of memory or disk: OOM. Use a smaller --batch-size" in _one_line_error(
        capsys, ["bench", "--config", "tiny"])


def test_interrupt_exits_130(monkeypatch, capsys):
    _failing_bench(monkeypatch, KeyboardInterrupt())
    assert _one_line_error(capsys, ["bench", "--config", "tiny"], code=130) == \
        "pwavenet bench: interrupted"


def test_real_bugs_and_debug_keep_the_traceback(monkeypatch, capsys):
    _failing_bench(monkeypatch, IndexError("list index out of range"))
    with pytest.raises(IndexError):
        cli.main(["bench", "--config", "tiny"])
    monkeypatch.setenv("PWAVENET_DEBUG", "1")
    _failing_bench(monkeypatch, ValueError("expected"))
    with pytest.raises(ValueError, match="expected"):
        cli.main(["bench", "--config", "tiny"])
    _failing_bench(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        cli.main(["bench", "--config", "tiny"])


def test_verbose_is_a_global_flag(capsys, monkeypatch):
    monkeypatch.delenv("PWAVENET_DEBUG", raising=False)
    assert cli._wants_verbose(["--verbose", "generate", "--mel", "x"])
    assert cli._wants_verbose(["generate", "--mel", "x", "--verbose"])
    assert not cli._wants_verbose(["bench", "--config", "tiny"])
    assert not cli._wants_verbose(["bench", "--", "--verbose"])
    monkeypatch.setenv("PWAVENET_DEBUG", "1")
    assert cli._wants_verbose(["bench"])
    assert cli.main(["--verbose", "bench", "--help"]) == 0
    assert "usage: pwavenet bench" in capsys.readouterr().out
    assert cli.build_parser().parse_args(["bench", "--config", "t", "--verbose"]).verbose
    assert cli.build_parser().parse_args(["--verbose", "bench", "--config", "t"]).verbose
    assert not cli.build_parser().parse_args(["bench", "--config", "t"]).verbose


# ---------------------------------------------------------------- subprocess: quiet output
def _pwavenet(*argv, cwd):
    return run_pwavenet(*argv, cwd=cwd)


def _no_tensorflow_log_lines(stderr):
    noise = [ln for ln in stderr.splitlines() if "external/local_xla" in ln or "cuda_" in ln]
    assert not noise, stderr


def test_help_is_quiet(tmp_path):
    for argv in (["train-teacher", "--help"], ["bench", "--help"], ["--help"]):
        proc = _pwavenet(*argv, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: pwavenet"), proc.stdout
        assert proc.stderr == "", proc.stderr


def test_a_failing_command_is_one_quiet_line(tmp_path):
    """A mel .npy of strings (a TypeError in numpy before): one line naming the file, and
    none of TensorFlow's C++ log lines although the model was loaded."""
    np.save(tmp_path / "words.npy", np.array([["a"] * 80] * 5))
    proc = _pwavenet("generate", "--mel", "words.npy", "--output", "out.wav", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    _no_tensorflow_log_lines(proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        "pwavenet generate: error: Feature file words.npy must hold numbers (a float "
        "[frames, 80] log-mel array). Received: dtype=<U1"], proc.stderr
    assert os.listdir(tmp_path) == ["words.npy"]  # no output, no temporary file
