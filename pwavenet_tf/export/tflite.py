"""TFLite conversion of the student's parallel forward pass.

The TFLite model is the student's own `upsample_conditioning` + `global_conditioning` +
`forward_from_conditioning` (the code that training, `StudentGenerator` and the SavedModel
use), converted with TFLite builtin ops only.

Inputs (by name; one utterance per call):
- `mel` float32 `[1, frames, n_mels]`: raw log-mel (normalised inside);
- `noise` float32 `[1, frames * hop]`: logistic(0, 1) noise. TFLite has no builtin
  stateless philox RNG, so the noise is an input; `tflite_noise(frames, hop, seed)` draws
  exactly the noise the SavedModel's `serving_default` draws for the same `seed`, so the
  two give the same audio (up to float rounding of the TFLite kernels);
- `speaker_id` int32 `[1]` (multi-speaker students only).
Output `audio` float32 `[1, frames * hop]` in [-1, 1].

`frames=None` converts with a dynamic length (`interpreter.resize_tensor_input` before
`allocate_tensors`); an int fixes it. Only the student converts: the teacher's sample-by-
sample `tf.while_loop` with convolution queues is not a useful TFLite model.
"""

import warnings

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (  # noqa: E501
    convert_variables_to_constants_v2,
)

__all__ = ["TFLiteRunner", "convert_student_to_tflite", "tflite_noise"]


def tflite_noise(frames, hop, seed=0, batch=1):
    """The logistic noise `[batch, frames * hop]` that `serving_default` draws for `seed`."""
    from pwavenet_tf.models.student_generator import StudentGenerator

    return StudentGenerator.logistic_noise(batch, frames * hop, (int(seed), 0)).numpy()


def convert_student_to_tflite(student, frames=None, optimize=False):
    """Converts an `IAFStudent`'s forward pass to a TFLite flatbuffer (bytes).

    Args:
        student: a built `IAFStudent`.
        frames: fixed number of frames, or None for a dynamic length.
        optimize: apply `tf.lite.Optimize.DEFAULT` (dynamic-range int8 weights; smaller,
            not bit-exact).
    """
    from pwavenet_tf.export.export_module import model_role

    if model_role(student) != "student":
        raise ValueError(
            "Only the IAF student converts to TFLite (the teacher generates sample by "
            "sample in a tf.while_loop); export the teacher as a SavedModel instead."
        )
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int)
                               or frames < 1):
        raise ValueError(f"`frames` must be None or a positive integer. Received: {frames!r}")
    hop = student.hop_length
    length = None if frames is None else frames * hop
    specs = [tf.TensorSpec([1, frames, student.conditioning_dim], tf.float32, name="mel"),
             tf.TensorSpec([1, length], tf.float32, name="noise")]
    multi = student.multi_speaker
    if multi:
        specs.append(tf.TensorSpec([1], tf.int32, name="speaker_id"))

    def forward(mel, noise, speaker_id=None):
        conditioning = student.upsample_conditioning(mel)
        global_conditioning = student.global_conditioning(speaker_id) if multi else None
        audio = student.forward_from_conditioning(noise, conditioning,
                                                  global_conditioning)["audio"]
        return {"audio": tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)}

    concrete = tf.function(forward, input_signature=specs).get_concrete_function()
    # Variables are folded into constants first: letting the converter freeze the Keras 3
    # variables itself fails ("missing attribute 'value'" on their ReadVariableOps).
    frozen = convert_variables_to_constants_v2(concrete)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()

class TFLiteRunner:
    """Runs a converted student: `runner(mel [1, F, D], noise [1, F*hop][, speaker_id])`."""

    def __init__(self, model_content=None, model_path=None, num_threads=None):
        self.interpreter = tf.lite.Interpreter(model_content=model_content,
                                               model_path=model_path, num_threads=num_threads)
        self._inputs = {self._name(d): d for d in self.interpreter.get_input_details()}
        self._output = self.interpreter.get_output_details()[0]
        self._shapes = None

    @staticmethod
    def _name(detail):
        # Converted input names look like "serving_default_mel:0" or "mel".
        name = detail["name"].split(":")[0]
        for key in ("speaker_id", "noise", "mel"):
            if name.endswith(key):
                return key
        return name

    def __call__(self, mel, noise, speaker_id=None):
        feeds = {"mel": mel, "noise": noise}
        if "speaker_id" in self._inputs:
            if speaker_id is None:
                raise ValueError("This student is multi-speaker: pass `speaker_id`.")
            feeds["speaker_id"] = speaker_id
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        if shapes != self._shapes:
            for key, value in feeds.items():
                self.interpreter.resize_tensor_input(self._inputs[key]["index"], value.shape)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for key, value in feeds.items():
            self.interpreter.set_tensor(self._inputs[key]["index"], value)
        self.interpreter.invoke()
        # The output index is looked up again: resizing may reallocate tensors.
        return self.interpreter.get_tensor(self.interpreter.get_output_details()[0]["index"])
