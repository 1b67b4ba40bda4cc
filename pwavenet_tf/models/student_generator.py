"""Parallel generation from the IAF student, whole or streamed in memory-bounded chunks."""

import numpy as np
import tensorflow as tf

from pwavenet_tf.models.feature_checks import validate_features
from pwavenet_tf.models.student_synthesis import EPS, draw_logistic_noise, synthesize

__all__ = ["EPS", "StudentGenerator", "draw_logistic_noise"]


class StudentGenerator:
    """Samples audio from an `IAFStudent`: noise drawn up front, then one parallel pass.

    The logistic noise `[batch, frames * hop]` comes from a stateless philox seed in a
    plain `tf.function`, never inside an XLA-compiled one (XLA's stateless RNG gives other
    numbers for the same seed), so graph mode and `jit_compile=True` produce the same audio
    for the same seed.

    With `chunk_frames`, the features are streamed `chunk_frames` frames at a time through
    a `StreamingVocoder` (each flow carries its convolution queues from chunk to chunk, the
    noise is drawn by position from the same seed), so the output equals the one-pass
    output and peak memory is bounded by the chunk, for minutes of audio.

    Args:
        student: a built `IAFStudent`.
    """

    def __init__(self, student):
        self.student = student
        self._fns = {
            False: tf.function(self._forward, reduce_retracing=True),
            True: tf.function(self._forward, jit_compile=True, reduce_retracing=True),
        }

    @staticmethod
    def logistic_noise(batch, length, seed):
        """Logistic(0, 1) noise `[batch, length]` float32 from a `[2]` stateless seed."""
        return draw_logistic_noise(tf.convert_to_tensor(batch, tf.int32),
                                   tf.convert_to_tensor(length, tf.int32),
                                   tf.convert_to_tensor(seed))

    def _forward(self, features, speaker_id, noise):
        student = self.student
        global_conditioning = None
        if student.multi_speaker:
            global_conditioning = student.global_conditioning(speaker_id)
        return synthesize(student, features, noise, global_conditioning)

    def generate(self, features, speaker_id=None, seed=(0, 0), chunk_frames=None,
                 jit_compile=False):
        """Generates `[batch, frames * hop]` float32 audio in [-1, 1] from raw `features`.

        Args:
            features: `[batch, frames, conditioning_dim]`.
            speaker_id: int32 `[batch]`, required iff the student is multi-speaker (ignored
                otherwise).
            seed: `[2]` integers of the stateless noise seed.
            chunk_frames: None for one pass, or frames per chunk (same output).
            jit_compile: run the pass(es) compiled with XLA.
        """
        student = self.student
        features = validate_features(features, student.conditioning_dim)
        batch, frames = features.shape[0], features.shape[1]
        if student.multi_speaker:
            if speaker_id is None:
                raise ValueError("This student is multi-speaker: pass `speaker_id`.")
            speaker_id = tf.convert_to_tensor(speaker_id, tf.int32)
            if speaker_id.shape != (batch,):
                raise ValueError(
                    f"`speaker_id` must be [batch] = [{batch}]. "
                    f"Received: speaker_id.shape={speaker_id.shape}"
                )
        else:
            speaker_id = tf.zeros([batch], tf.int32)  # ignored by a single-speaker student
        if chunk_frames is not None and (
            not isinstance(chunk_frames, int) or isinstance(chunk_frames, bool)
            or chunk_frames < 1
        ):
            raise ValueError(
                f"`chunk_frames` must be None or a positive integer. "
                f"Received: chunk_frames={chunk_frames!r}"
            )
        hop = student.hop_length
        if chunk_frames is None or chunk_frames >= frames:
            noise = self.logistic_noise(batch, frames * hop, seed)
            return self._fns[bool(jit_compile)](features, speaker_id, noise)

        from pwavenet_tf.models.streaming_vocoder import LogisticNoise, StreamingVocoder

        vocoder = StreamingVocoder(
            student, speaker_id=speaker_id if student.multi_speaker else None,
            noise=LogisticNoise(seed, length=frames * hop), jit_compile=jit_compile)
        pieces = [vocoder.push(features[:, f0:f0 + chunk_frames])
                  for f0 in range(0, frames, chunk_frames)]
        pieces.append(vocoder.flush())
        return tf.constant(np.concatenate(pieces, axis=1))
