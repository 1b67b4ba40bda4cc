"""TFLite conversion of the student: its parallel pass, and a streaming step.

Both are the student's one generation path (`models/student_synthesis.py`, what
`StudentGenerator`, `StreamingVocoder` and the SavedModel run), converted with TFLite
builtin ops only.

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

The streaming step (`convert_student_stream_to_tflite`) is `synthesize_window` for a
fixed chunk of `chunk_frames` frames, with the state as an input and an output:
- `window` float32 `[1, chunk_frames + 2 * half, n_mels]`: raw log-mel of the chunk with
  the `half` frames before and after it (`half` = the upsampler's look-ahead, 1 in the
  bundled configs); beyond the utterance's ends the frames are `feature_mean` (what
  normalises to the zero padding of the one-pass upsampler);
- `noise` float32 `[1, chunk_frames * hop]`: the chunk's noise (`LogisticNoise(seed)` at
  the chunk's samples);
- `state` float32 `[1, stream_state_size]`: the packed state of `pack_state` (zeros at
  the start), the same layout as the SavedModel's `stream_step`.
Outputs `audio` `[1, chunk_frames * hop]` and the new `state`. `TFLiteStreamingVocoder`
does the buffering (push frames of any count, flush) and equals `StreamingVocoder`.
"""

import warnings

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (  # noqa: E501
    convert_variables_to_constants_v2,
)

from pwavenet_tf.models.student_synthesis import (
    initial_stream_state,
    pack_state,
    state_sizes,
    synthesize,
    synthesize_window,
    unpack_state,
)

__all__ = ["TFLiteRunner", "TFLiteStreamingVocoder", "convert_student_stream_to_tflite",
           "convert_student_to_tflite", "stream_metadata", "tflite_noise"]


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
    _check_student(student)
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
        global_conditioning = student.global_conditioning(speaker_id) if multi else None
        return {"audio": synthesize(student, mel, noise, global_conditioning)}

    return _convert(tf.function(forward, input_signature=specs), optimize)


def _check_student(student):
    from pwavenet_tf.export.export_module import model_role

    if model_role(student) != "student":
        raise ValueError(
            "Only the IAF student converts to TFLite (the teacher generates sample by "
            "sample in a tf.while_loop); export the teacher as a SavedModel instead."
        )


def _convert(function, optimize):
    concrete = function.get_concrete_function()
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

def stream_metadata(student, chunk_frames):
    """What a client of the streaming TFLite model needs (written beside it as JSON)."""
    return {
        "chunk_frames": int(chunk_frames),
        "look_ahead_frames": int(student.upsampler.look_ahead_frames),
        "hop_length": int(student.hop_length),
        "n_mels": int(student.conditioning_dim),
        "stream_state_size": int(sum(state_sizes(student))),
        "feature_mean": [float(v) for v in np.asarray(student.feature_normalizer.mean)],
        "multi_speaker": bool(student.multi_speaker),
    }


def convert_student_stream_to_tflite(student, chunk_frames, optimize=False):
    """The streaming step of an `IAFStudent` as a TFLite flatbuffer (bytes): inputs
    `window`, `noise`, `state` (+ `speaker_id`), outputs `audio`, `state` (see the module
    docstring). `chunk_frames` fixes the chunk."""
    _check_student(student)
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise ValueError(
            f"`chunk_frames` must be a positive integer. Received: chunk_frames={chunk_frames!r}")
    half = student.upsampler.look_ahead_frames
    hop = student.hop_length
    size = sum(state_sizes(student))
    specs = [tf.TensorSpec([1, chunk_frames + 2 * half, student.conditioning_dim], tf.float32,
                           name="window"),
             tf.TensorSpec([1, chunk_frames * hop], tf.float32, name="noise"),
             tf.TensorSpec([1, size], tf.float32, name="state")]
    multi = student.multi_speaker
    if multi:
        specs.append(tf.TensorSpec([1], tf.int32, name="speaker_id"))

    def step(window, noise, state, speaker_id=None):
        global_conditioning = student.global_conditioning(speaker_id) if multi else None
        normalized = student.feature_normalizer(window)
        _, flows = unpack_state(student, state)
        audio, flows = synthesize_window(student, normalized, noise, global_conditioning,
                                         flows)
        return {"audio": audio, "state": pack_state(normalized[:, -2 * half:], flows)}

    return _convert(tf.function(step, input_signature=specs), optimize)


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
        for key in ("speaker_id", "noise", "mel", "window", "state"):
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


class TFLiteStreamingVocoder:
    """Streams with the TFLite streaming step: `push(frames)` -> audio, `flush()`.

    Frames of any count are buffered into chunks of the model's `chunk_frames` (with
    their look-ahead), so the first audio comes once `chunk_frames + half` frames have
    arrived; the audio, concatenated, equals `StreamingVocoder(student, seed)`'s (and the
    SavedModel's `stream_step` / `serving_default` at batch 1) up to TFLite's rounding.

    Args:
        model_content / model_path: the flatbuffer of `convert_student_stream_to_tflite`.
        metadata: its `stream_metadata(student, chunk_frames)` dict.
        seed: the noise seed (an int, as `pwavenet vocode --seed`).
        speaker_id: an int, for a multi-speaker student.
    """

    def __init__(self, metadata, model_content=None, model_path=None, seed=0, speaker_id=None,
                 num_threads=None):
        from pwavenet_tf.models.streaming_vocoder import LogisticNoise

        self.metadata = dict(metadata)
        self._chunk = int(metadata["chunk_frames"])
        self._half = int(metadata["look_ahead_frames"])
        self._hop = int(metadata["hop_length"])
        self._pad = np.asarray(metadata["feature_mean"], "float32")[None]
        if metadata["multi_speaker"] and speaker_id is None:
            raise ValueError("This student is multi-speaker: pass `speaker_id`.")
        self._speaker = (None if not metadata["multi_speaker"]
                         else np.asarray([speaker_id], "int32"))
        self._noise = LogisticNoise(seed)
        self.interpreter = tf.lite.Interpreter(model_content=model_content,
                                               model_path=model_path, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self._inputs = {TFLiteRunner._name(d): d["index"]
                        for d in self.interpreter.get_input_details()}
        # Output names do not survive conversion from a concrete function: tell them by
        # size (the state's differs from the chunk's samples; if not, by order).
        outputs = self.interpreter.get_output_details()
        size = int(metadata["stream_state_size"])
        states = [d for d in outputs if int(d["shape"][-1]) == size]
        state = states[-1] if states else outputs[-1]
        audio = next(d for d in outputs if d is not state)
        self._outputs = {"audio": audio["index"], "state": state["index"]}
        self.reset()

    def reset(self):
        """Starts a new utterance."""
        self._frames = np.repeat(self._pad, self._half, axis=0)  # the left padding
        self._state = np.zeros((1, int(self.metadata["stream_state_size"])), "float32")
        self._position = 0

    def _step(self, window):
        samples = self._chunk * self._hop
        feeds = {"window": window[None], "state": self._state,
                 "noise": self._noise(1, self._position, self._position + samples).numpy()}
        if self._speaker is not None:
            feeds["speaker_id"] = self._speaker
        for key, value in feeds.items():
            self.interpreter.set_tensor(self._inputs[key], value)
        self.interpreter.invoke()
        self._state = self.interpreter.get_tensor(self._outputs["state"])
        self._position += samples
        return self.interpreter.get_tensor(self._outputs["audio"])[0]

    def _drain(self):
        pieces = []
        need = self._chunk + 2 * self._half
        while len(self._frames) >= need:
            pieces.append(self._step(self._frames[:need]))
            self._frames = self._frames[self._chunk:]
        return np.concatenate(pieces) if pieces else np.zeros((0,), "float32")

    def push(self, frames):
        """Raw log-mel `[n, n_mels]`; returns the audio of the chunks that are complete."""
        frames = np.asarray(frames, "float32")
        if frames.ndim != 2 or frames.shape[1] != self._pad.shape[1]:
            raise ValueError(f"`frames` must be [frames, {self._pad.shape[1]}]. "
                             f"Received: frames.shape={frames.shape}")
        self._frames = np.concatenate([self._frames, frames])
        return self._drain()

    def flush(self):
        """The audio of the remaining frames (padded to a whole chunk, trimmed); resets."""
        pending = len(self._frames) - self._half  # frames still without audio
        if pending <= 0:
            self.reset()
            return np.zeros((0,), "float32")
        chunks = -(-pending // self._chunk)
        fill = chunks * self._chunk + 2 * self._half - len(self._frames)
        self._frames = np.concatenate([self._frames, np.repeat(self._pad, fill, axis=0)])
        audio = self._drain()[:pending * self._hop]
        self.reset()
        return audio
