"""A table of bad inputs past argument parsing: each ends in exit code 2 with one line
`pwavenet CMD: error: ...` naming the problem, and leaves no output file or folder.

(The argument-level table is in `cli_errors_test.py`; the exported signatures' bad
requests are in `export_test.py` and `pwavenet_tf/export/export_module_test.py`.)
"""

import json
import os

import numpy as np
import pytest

from pwavenet_tf.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("bad_inputs")
    f = {"root": root, "data": data_dir}
    (root / "empty").mkdir()
    (root / "a_file").write_text("not a folder")
    np.save(root / "strings.npy", np.array([["a", "b"]]))
    np.save(root / "rank1.npy", np.zeros((80,), "float32"))
    np.save(root / "wrong_bands.npy", np.zeros((4, 12), "float32"))
    nan = np.zeros((4, 80), "float32")
    nan[1, 2] = np.inf
    np.save(root / "inf.npy", nan)
    (root / "text.wav").write_text("this is not audio")
    (root / "broken.json").write_text('{"teacher": {"num_layers": ')
    cfg = json.load(open(os.path.join(os.path.dirname(__file__), "..", "configs", "tiny.json")))

    def config(name, section, **values):
        c = json.loads(json.dumps(cfg))
        c[section].update(values)
        path = root / f"{name}.json"
        path.write_text(json.dumps(c))
        return str(path)

    f["unknown_key"] = config("unknown_key", "teacher", layers=3)
    f["infinite_lr"] = str(root / "infinite_lr.json")
    (root / "infinite_lr.json").write_text(
        json.dumps(cfg).replace('"learning_rate": 0.005', '"learning_rate": Infinity'))
    f["zero_batch"] = config("zero_batch", "teacher_training", batch_size=0)
    f["odd_window"] = config("odd_window", "teacher_training", window_samples=1000)
    f["negative_weight"] = config("negative_weight", "distill", power_weight=-1.0)
    f["bad_mixtures"] = config("bad_mixtures", "teacher", num_mixtures=0)
    f["bad_hop"] = config("bad_hop", "student", upsample_factors=[4, 4])
    return f


def _cases():
    r = "{root}"
    out = f"{r}/out_dir"
    wav = f"{r}/out.wav"
    train = ["train-teacher", "--data", "{data}", "--out", out, "--steps", "1", "--config"]
    return [
        # train-teacher: corpus, config and output problems
        (["train-teacher", "--config", "tiny", "--data", f"{r}/missing", "--out", out],
         "missing", out),
        (["train-teacher", "--config", "tiny", "--data", f"{r}/empty", "--out", out],
         "empty", out),
        (train + [f"{r}/broken.json"], "broken.json is not valid JSON", out),
        (train + ["{unknown_key}"], "Unknown key(s) in section `teacher`: layers", out),
        (train + ["{infinite_lr}"], "learning_rate", out),
        (train + ["{zero_batch}"], "teacher_training.batch_size", out),
        (train + ["{odd_window}"], "window_samples", out),
        (train + ["{bad_mixtures}"], "num_mixtures", out),
        (train + ["{bad_hop}"], "student.upsample_factors", out),
        (train + ["{negative_weight}"], "power_weight", out),
        (train + [f"{r}/no_such_config.json"], "Config file not found", out),
        (["train-teacher", "--config", "tiny", "--data", "{data}", "--out", f"{r}/a_file",
          "--steps", "1"], "a_file", None),
        (["train-teacher", "--config", "tiny", "--data", "{data}", "--out", out, "--steps", "1",
          "--strategy", "multi_worker"], "TF_CONFIG", out),
        # distill
        (["distill", "--teacher", f"{r}/missing", "--config", "tiny", "--data", "{data}",
          "--out", out], "missing", out),
        (["distill", "--teacher", f"{r}/empty", "--config", "tiny", "--data", "{data}",
          "--out", out], "No trained teacher", out),
        # generate / vocode with the bundled preset
        (["generate", "--mel", f"{r}/missing.npy", "--output", wav], "missing.npy", wav),
        (["generate", "--mel", f"{r}/strings.npy", "--output", wav], "strings.npy", wav),
        (["generate", "--mel", f"{r}/rank1.npy", "--output", wav], "rank1.npy", wav),
        (["generate", "--mel", f"{r}/wrong_bands.npy", "--output", wav], "80", wav),
        (["generate", "--mel", f"{r}/inf.npy", "--output", wav], "NaN or Inf", wav),
        (["generate", "--input", f"{r}/missing.wav", "--output", wav], "missing.wav", wav),
        (["generate", "--input", f"{r}/text.wav", "--output", wav], "text.wav", wav),
        (["generate", "--model", f"{r}/missing", "--mel", f"{r}/inf.npy", "--output", wav],
         "not found", wav),
        (["generate", "--model", f"{r}/empty", "--mel", f"{r}/inf.npy", "--output", wav],
         "empty", wav),
        (["vocode", "--mel", f"{r}/strings.npy", "--output-dir", out], "strings.npy", out),
        (["vocode", "--input", f"{r}/text.wav", "--output-dir", out], "text.wav", out),
        (["vocode", "--model", f"{r}/empty", "--input", f"{r}/text.wav", "--output-dir", out],
         "neither a pwavenet training directory", out),
        # export / evaluate
        (["export", "--model", f"{r}/missing", "--out", out], "missing", out),
        (["export", "--model", f"{r}/empty", "--out", out], "empty", out),
        (["evaluate", "--model", f"{r}/missing", "--data", "{data}", "--report", out],
         "missing", out),
        (["evaluate", "--model", f"{r}/empty", "--data", "{data}", "--report", out], "empty",
         out),
    ]


CASES = _cases()


@pytest.mark.parametrize("argv, words, output", CASES,
                         ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(files, capsys, argv, words, output):
    fill = {k: str(v) for k, v in files.items()}
    argv = [a.format(**fill) for a in argv]
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"pwavenet {argv[0]}: error: "), err
    assert words.format(**fill) in err[0], err[0]
    if output is not None:
        assert not os.path.exists(output.format(**fill)), output
    leftovers = [n for n in os.listdir(files["root"]) if n.startswith((".", "out"))]
    assert not leftovers, leftovers


def test_the_table_has_at_least_30_distinct_inputs():
    assert len({tuple(c[0]) for c in CASES}) >= 30
