"""What the package refuses to run: pickles, planted Keras code, foreign SavedModels."""

import ast
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.cli import main

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "pwavenet_tf"


def _sources():
    return [p for p in PACKAGE.rglob("*.py") if not p.name.endswith("_test.py")]


def test_no_pickle_eval_exec_or_yaml_in_the_package():
    banned_modules = {"pickle", "cPickle", "dill", "yaml", "marshal", "shelve"}
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not banned_modules & {n.split(".")[0] for n in names}, (path, names)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), (path, node.lineno)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "np"):
                flags = {k.arg: k.value for k in node.keywords}
                assert "allow_pickle" in flags and isinstance(flags["allow_pickle"], ast.Constant) \
                    and flags["allow_pickle"].value is False, (path, node.lineno)


def test_a_lambda_layer_planted_as_the_phone_classifier_is_refused(trained_teacher_dir,
                                                                     data_dir, tiny_config,
                                                                     tmp_path):
    from pwavenet_tf.training.distill_task import CLASSIFIER_FILE, DistillTask

    out = tmp_path / "student"
    out.mkdir()
    inputs = keras.Input((None,))
    # Any Python code could sit in the lambda; Keras' safe mode refuses to deserialize it.
    planted = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    planted.save(out / CLASSIFIER_FILE)
    cfg = tiny_config.override(distill={"perceptual_weight": 1.0})
    with pytest.raises(ValueError, match="Lambda.*safe_mode|safe_mode.*Lambda"):
        DistillTask(cfg, trained_teacher_dir, data_dir, str(out), verbose=0,
                    log=lambda *_: None).run(steps=1)


def test_vocode_refuses_a_savedmodel_without_pwavenet_metadata(tmp_path, capsys):
    foreign = tmp_path / "foreign" / "1"

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 80], tf.float32)])
        def serve(self, mel):
            tf.io.write_file(str(tmp_path / "written"), "x")  # what a crafted export can do
            return {"audio": tf.zeros([1, 256])}

    module = Module()
    tf.saved_model.save(module, str(foreign), signatures={"serving_default": module.serve})
    mel = tmp_path / "mel.npy"
    np.save(mel, np.zeros((2, 80), "float32"))
    code = main(["vocode", "--model", str(foreign.parent), "--mel", str(mel),
                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "not a pwavenet_tf export (assets/config.json is missing)" in err
    assert "Only load exports you trust" in err
    assert not (tmp_path / "written").exists() and not (tmp_path / "out").exists()
