"""`pwavenet export` end to end: CLI exports of a student and a teacher, loaded in a fresh
process WITHOUT the project by tf.saved_model, tensorflow_hub (hub.load, hub.KerasLayer)
and keras.layers.TFSMLayer; `saved_model_cli`; TFLite; clear CLI errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.feature_stats import save_feature_stats
from pwavenet_tf.cli import main
from pwavenet_tf.config import load_config
from pwavenet_tf.export.export_module_test import (
    feature_stats,
    log_mel_like,
    tiny_student,
    tiny_teacher,
)
from pwavenet_tf.training.checkpointing import STATS_FILE, TrainingCheckpoint, prepare_model_dir

VENV_BIN = os.path.dirname(sys.executable)
_CACHE = {}


def make_model_dir(path, role, config, seed=0):
    """A training directory (config, stats, checkpoint) of a tiny random-weight model."""
    model = (tiny_student if role == "student" else tiny_teacher)(config, seed)
    prepare_model_dir(path, config, compare_sections=("audio", role), role=role)
    save_feature_stats(feature_stats(config.audio.conditioning_dim, seed),
                       os.path.join(path, STATS_FILE))
    TrainingCheckpoint(path, model=model).save(1)
    return path


def model_dir(tmp_path_factory, role):
    """Session-cached training directory of a tiny `role` model (shared with vocode_test)."""
    key = ("dir", role)
    if key not in _CACHE:
        _CACHE[key] = make_model_dir(str(tmp_path_factory.mktemp(f"{role}_dir")), role,
                                     load_config("tiny"))
    return _CACHE[key]


def cli_export(tmp_path_factory, role):
    """`pwavenet export` of the tiny `role` model (session-cached): `(base, version path)`."""
    key = ("export", role)
    if key not in _CACHE:
        base = str(tmp_path_factory.mktemp("exports"))
        assert main(["export", "--model", model_dir(tmp_path_factory, role),
                     "--out", base]) == 0
        _CACHE[key] = (base, os.path.join(base, f"pwavenet_{role}", "1"))
    return _CACHE[key]


@pytest.fixture(scope="module")
def student_export(tmp_path_factory):
    return cli_export(tmp_path_factory, "student")


@pytest.fixture(scope="module")
def teacher_export(tmp_path_factory):
    return cli_export(tmp_path_factory, "teacher")


def test_export_layout_and_version_is_never_overwritten(student_export, tmp_path_factory,
                                                        capsys):
    base, path = student_export
    assert sorted(os.listdir(base)) == ["pwavenet_student"]
    assert os.listdir(os.path.join(base, "pwavenet_student")) == ["1"]
    for name in ("saved_model.pb", "variables", "assets/config.json",
                 "assets/feature_stats.json"):
        assert os.path.exists(os.path.join(path, name)), name
    capsys.readouterr()
    code = main(["export", "--model", model_dir(tmp_path_factory, "student"), "--out", base,
                 "--version", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Version 1 of model 'pwavenet_student' already exists" in err, err
    assert "Omit --version to write version 2" in err


def test_saved_model_cli_lists_the_signatures(student_export):
    _, path = student_export
    proc = subprocess.run([os.path.join(VENV_BIN, "saved_model_cli"), "show", "--all",
                           "--dir", path], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in ("serving_default", "vocode_waveform", "mel", "stream_step"):
        assert f"signature_def['{name}']" in out, out
    for line in ("inputs['mel'] tensor_info", "inputs['seed'] tensor_info",
                 "inputs['audio'] tensor_info", "outputs['audio'] tensor_info",
                 "outputs['audio_pcm16'] tensor_info", "outputs['normalized_mel'] tensor_info",
                 "dtype: DT_INT16", "dtype: DT_INT64",
                 "Method name is: tensorflow/serving/predict"):
        assert line in out, line
    # `seed` is optional for servers: the SignatureDefs carry its default.
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    signatures = proto.meta_graphs[0].signature_def
    for name in ("serving_default", "vocode_waveform", "stream_step"):
        assert tf.make_ndarray(signatures[name].defaults["seed"]) == 0
    assert tf.make_ndarray(signatures["stream_step"].defaults["pushed"]) == 0
    assert not tf.make_ndarray(signatures["stream_step"].defaults["final"])


# The child script: must run without pwavenet_tf (an import hook makes any attempt fail).
LOADER_SCRIPT = r'''
import importlib.abc, json, os, sys


class _NoProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pwavenet_tf":
            raise ImportError(f"the loader check must not import {name}")
        return None


sys.meta_path.insert(0, _NoProject())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import keras


def check(path, frames, full):
    r = {}
    loaded = tf.saved_model.load(path)
    hop = int(loaded.hop_length.numpy())
    n_mels = int(loaded.n_mels.numpy())
    meta = json.loads(loaded.config_json.numpy().decode())
    with open(loaded.config_file.asset_path.numpy().decode()) as f:
        asset = json.load(f)
    r["meta"] = {"role": loaded.model_role.numpy().decode(),
                 "sample_rate": int(loaded.sample_rate.numpy()), "hop": hop, "n_mels": n_mels,
                 "max_samples": int(loaded.max_samples.numpy()),
                 "config_n_mels": meta["config"]["audio"]["n_mels"],
                 "asset_equals_variable": asset == meta,
                 "stats": int(loaded.feature_mean.shape[0]),
                 "signatures": sorted(loaded.signatures)}
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal((2, frames * hop + 17))).astype("float32")
    seed = tf.constant(11, tf.int64)

    m = loaded.signatures["mel"](audio=tf.constant(wave))
    mel = m["mel"].numpy()
    out = loaded.signatures["serving_default"](mel=tf.constant(mel), seed=seed)
    audio, pcm = out["audio"].numpy(), out["audio_pcm16"].numpy()
    voc = loaded.signatures["vocode_waveform"](audio=tf.constant(wave), seed=seed)
    nodefault = loaded.serving_default({"mel": mel})["audio"].numpy()
    seed0 = loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                 seed=tf.constant(0, tf.int64))["audio"].numpy()
    if "stream_step" in loaded.signatures:  # a client streaming row 0, two pushes + flush
        step = loaded.signatures["stream_step"]
        state = tf.zeros([1, int(loaded.stream_state_size.numpy())])
        pushed, pieces = tf.constant(0, tf.int64), []
        for part, final in ((mel[:1, :1], False), (mel[:1, 1:], True)):
            o = step(mel=tf.constant(part), state=state, pushed=pushed, seed=seed,
                     final=tf.constant(final))
            state, pushed = o["state"], o["pushed"]
            pieces.append(o["audio"].numpy())
        r["stream_vs_serving"] = float(np.abs(np.concatenate(pieces, 1) - audio[:1]).max())
    r["saved_model"] = {
        "mel": [list(mel.shape), str(mel.dtype)],
        "normalized_mel": list(m["normalized_mel"].shape),
        "audio": [list(audio.shape), str(audio.dtype)], "pcm": [list(pcm.shape), str(pcm.dtype)],
        "max_abs": float(np.abs(audio).max()),
        "pcm_vs_audio": float(np.abs((pcm.astype(np.float64) + 32768) * 2 / 65535 - 1
                                     - audio).max()),
        "vocode_vs_serving": float(np.abs(voc["audio"].numpy() - audio).max()),
        "no_seed_vs_seed_0": float(np.abs(nodefault - seed0).max()),
        "seed_11_vs_seed_0": float(np.abs(audio - seed0).max()),
    }
    try:
        loaded.signatures["serving_default"](mel=tf.constant(mel[..., :-1]), seed=seed)
        r["n_mels_error"] = None
    except tf.errors.InvalidArgumentError as e:
        r["n_mels_error"] = str(e)

    if full:  # hub.load is tf.saved_model.load under another name: once is enough
        h = hub.load(path)
        r["hub_load"] = float(np.abs(h.signatures["serving_default"](
            mel=tf.constant(mel), seed=seed)["audio"].numpy() - audio).max())
    layer = hub.KerasLayer(path, signature="serving_default", signature_outputs_as_dict=True)
    k = layer({"mel": tf.constant(mel), "seed": seed})
    r["hub_keras_layer"] = [sorted(k), float(np.abs(k["audio"].numpy() - audio).max())]
    t = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    y = t({"mel": tf.constant(mel), "seed": seed})
    r["tfsm_layer"] = [sorted(y), float(np.abs(y["audio"].numpy() - audio).max())]
    if full:
        tm = keras.layers.TFSMLayer(path, call_endpoint="mel")
        r["tfsm_layer"].append(
            float(np.abs(tm({"audio": tf.constant(wave)})["mel"].numpy() - mel).max()))
    np.save(os.path.join(os.getcwd(), r["meta"]["role"] + "_audio.npy"), audio)
    np.save(os.path.join(os.getcwd(), r["meta"]["role"] + "_mel.npy"), mel)
    return r


report = {role: check(path, frames, role == "student")
          for role, path, frames in json.loads(sys.argv[1])}
report["pwavenet_tf_imported"] = any(m.split(".")[0] == "pwavenet_tf" for m in sys.modules)
print(json.dumps(report))
'''


def test_fresh_process_loads_the_exports_without_the_project(student_export, teacher_export,
                                                             tmp_path):
    script = tmp_path / "load_check.py"
    script.write_text(LOADER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    jobs = [("student", student_export[1], 3), ("teacher", teacher_export[1], 2)]
    proc = subprocess.run([sys.executable, str(script), json.dumps(jobs)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["pwavenet_tf_imported"] is False
    for role, path, frames in jobs:
        r = report[role]
        assert r["meta"] == {"role": role, "sample_rate": 22050, "hop": 256, "n_mels": 80,
                             "max_samples": int(600 * 22050 // 256) * 256,
                             "config_n_mels": 80, "asset_equals_variable": True, "stats": 80,
                             "signatures": ["mel", "serving_default"]
                             + (["stream_step"] if role == "student" else [])
                             + ["vocode_waveform"]}
        if role == "student":
            assert r["stream_vs_serving"] < 1e-5
        s = r["saved_model"]
        assert s["mel"] == [[2, frames, 80], "float32"]
        assert s["normalized_mel"] == [2, frames, 80]
        assert s["audio"] == [[2, frames * 256], "float32"]
        assert s["pcm"] == [[2, frames * 256], "int16"]
        assert 0 < s["max_abs"] <= 1.0
        assert s["pcm_vs_audio"] <= 1 / 65535 + 1e-6
        assert s["vocode_vs_serving"] <= 1e-6
        # No seed == seed 0 (the dict endpoint calls the signature graph: rounding only).
        assert s["no_seed_vs_seed_0"] <= 1e-6 and s["seed_11_vs_seed_0"] > 1e-3
        assert "[batch, frames, 80]" in r["n_mels_error"] and "[2 %d 79]" % frames in \
            r["n_mels_error"]
        # Every loader gives the signature's audio (the teacher's loop rounds differently
        # from call to call in the last bits: 1e-6).
        assert r["hub_keras_layer"][0] == ["audio", "audio_pcm16"]
        assert r["hub_keras_layer"][1] <= 1e-6
        assert r["tfsm_layer"][0] == ["audio", "audio_pcm16"] and r["tfsm_layer"][1] <= 1e-6
        if role == "student":
            assert r["hub_load"] <= 1e-6
            assert r["tfsm_layer"][2] <= 1e-6  # TFSMLayer(call_endpoint="mel")
        # The same artifact gives the same audio in this process (which has the project).
        loaded = tf.saved_model.load(path)
        mel = np.load(tmp_path / f"{role}_mel.npy")
        again = loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                     seed=tf.constant(11, tf.int64))["audio"]
        np.testing.assert_allclose(np.asarray(again), np.load(tmp_path / f"{role}_audio.npy"),
                                   atol=1e-6)


def test_cli_export_equals_the_model_of_the_training_directory(student_export,
                                                               tmp_path_factory):
    """The exported student == `StudentGenerator` on the model `load_model` returns (1e-5)."""
    from pwavenet_tf.inference import load_model
    from pwavenet_tf.models.student_generator import StudentGenerator

    directory = model_dir(tmp_path_factory, "student")
    _, first, _ = load_model(directory)
    _, student, _ = load_model(directory)
    unrestored = [a.path for a, b in zip(first.weights, student.weights)
                  if not np.array_equal(np.asarray(a), np.asarray(b))]
    assert not unrestored, f"two loads of one checkpoint differ in {unrestored[:3]}"
    loaded = tf.saved_model.load(student_export[1])
    mel = log_mel_like(2, 5)
    for seed in (0, 7):
        got = loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                   seed=tf.constant(seed, tf.int64))["audio"]
        want = StudentGenerator(student).generate(mel, seed=(seed, 0))
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_tflite_export(tmp_path_factory, tmp_path, capsys):
    from pwavenet_tf.export.tflite import TFLiteRunner, tflite_noise

    base = str(tmp_path / "models")
    assert main(["export", "--model", model_dir(tmp_path_factory, "student"), "--out", base,
                 "--format", "tflite"]) == 0
    path = os.path.join(base, "pwavenet_student_tflite", "1")
    assert sorted(os.listdir(path)) == ["config.json", "model.tflite"]
    with open(os.path.join(path, "config.json")) as f:
        assert json.load(f)["tflite_inputs"]["mel"] == "float32 [1, frames, 80]"
    runner = TFLiteRunner(model_path=os.path.join(path, "model.tflite"))
    audio = runner(log_mel_like(1, 6), tflite_noise(6, 256, 1))
    assert audio.shape == (1, 6 * 256) and np.abs(audio).max() <= 1.0
    # The streaming step: what a client needs travels in config.json.
    from pwavenet_tf.export.tflite import TFLiteStreamingVocoder
    from pwavenet_tf.models.streaming_vocoder import StreamingVocoder
    from pwavenet_tf.training.distill_task import load_student

    assert main(["export", "--model", model_dir(tmp_path_factory, "student"), "--out", base,
                 "--format", "tflite", "--tflite-stream-frames", "5"]) == 0
    path = os.path.join(base, "pwavenet_student_tflite", "2")
    with open(os.path.join(path, "config.json")) as f:
        meta = json.load(f)
    assert meta["stream"]["chunk_frames"] == 5
    assert meta["tflite_inputs"]["window"] == "float32 [1, 7, 80] raw log-mel"
    mel = log_mel_like(1, 12, seed=2)[0]
    lite = TFLiteStreamingVocoder(meta["stream"], model_path=os.path.join(path, "model.tflite"),
                                  seed=4)
    got = np.concatenate([lite.push(mel[:8]), lite.push(mel[8:]), lite.flush()])
    student, _ = load_student(model_dir(tmp_path_factory, "student"))
    vocoder = StreamingVocoder(student, seed=4)
    np.testing.assert_allclose(got, np.concatenate([vocoder.push(mel), vocoder.flush()]),
                               atol=1e-4)
    capsys.readouterr()
    assert main(["export", "--model", model_dir(tmp_path_factory, "teacher"), "--out", base,
                 "--format", "tflite"]) == 2
    assert "converts the student only" in capsys.readouterr().err


def test_cli_export_errors(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "missing"), "--out",
                 str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a pwavenet training directory" in capsys.readouterr().err
