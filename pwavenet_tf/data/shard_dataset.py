"""Streaming training windows from a `pwavenet prepare-data` shard folder.

`ShardCorpus` has the interface of the in-memory `CorpusData` (`dataset`, `examples`,
`train`, `valid`, `stats`) but never holds the training corpus in memory: `dataset(...)`
reads the shards with `tf.data` (interleave over the shard files, crop, shuffle, batch,
prefetch, `AUTOTUNE`).

The stream is a pure function of `(seed, example index)`: epoch `e` reads the shard files
in the order `stateless_shuffle(files, [seed, e])`, interleaved `cycle_length` files at a
time, record by record; the `p`-th record of the epoch is cropped at a frame offset drawn
with `stateless_uniform(seed=[seed, e * 2**32 + p])`; then windows are permuted within
consecutive blocks of `shuffle_buffer` (stateless permutation seeded by `(seed, e, block)`:
the memory of a shuffle buffer, without its dependence on TensorFlow's global seed).
`start_step=s` starts at example `s * batch_size` (the records before it are read and
skipped, not decoded into batches), so a resumed run sees exactly the batches an
uninterrupted run sees at those steps.

Over several workers (`MultiWorkerMirroredStrategy`) the dataset is split by DATA, not by
file (`with_data_sharding`): every worker reads the same global stream and keeps its own
replicas' slices of each global batch, so W workers train on exactly the batches one
process would (and resume exactly), and no shard-count / worker-count constraint applies.
The cost: each worker reads and crops every record (W times the input work of one reader),
which is small next to a training step at these window sizes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from pwavenet_tf.data.corpus import Utterance
from pwavenet_tf.data.dataset import _check_positive, _check_window, with_data_sharding
from pwavenet_tf.data.shard_writer import ShardError, load_shard_manifest

_SPEC = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "speaker_id": tf.io.FixedLenFeature([], tf.int64),
    "audio_pcm16": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "audio_f32": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "features": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "feature_dim": tf.io.FixedLenFeature([], tf.int64),
}

__all__ = ["ShardCorpus", "ShardSplit", "parse_clip"]


def parse_clip(serialized: tf.Tensor) -> dict:
    """One record -> `{"id", "speaker_id" int32, "audio" [F*hop] float32, "features" [F, D]}`."""
    ex = tf.io.parse_single_example(serialized, _SPEC)
    pcm = ex["audio_pcm16"]

    def from_pcm():
        codes = tf.io.decode_raw(pcm, tf.int16, little_endian=True)
        return tf.cast((tf.cast(codes, tf.float64) + 32768.0) * 2.0 / 65535.0 - 1.0, tf.float32)

    audio = tf.cond(tf.strings.length(pcm) > 0, from_pcm,
                    lambda: tf.io.decode_raw(ex["audio_f32"], tf.float32, little_endian=True))
    feats = tf.io.decode_raw(ex["features"], tf.float32, little_endian=True)
    feats = tf.reshape(feats, tf.stack([ex["num_frames"], ex["feature_dim"]]))
    return {"id": ex["id"], "speaker_id": tf.cast(ex["speaker_id"], tf.int32),
            "audio": audio, "features": feats}


class ShardSplit:
    """The shard files and clip count of one split (`len()` is the number of clips)."""

    def __init__(self, name, files, num_clips, num_samples):
        self.name, self.files = name, list(files)
        self.num_clips, self.num_samples = int(num_clips), int(num_samples)

    def __len__(self):
        return self.num_clips

    def __repr__(self):
        return f"ShardSplit({self.name!r}, {len(self.files)} files, {self.num_clips} clips)"


class ShardCorpus:
    """A prepared shard folder, checked against `audio_config` (see the module docstring).

    `stats` defaults to the manifest's feature statistics of the training clips.
    """

    def __init__(self, path: str | os.PathLike, audio_config: Any, stats: dict | None = None,
                 cycle_length: int = 16, shuffle_buffer: int = 1024):
        self.path = os.fspath(path)
        self.audio_config = audio_config
        self.manifest = load_shard_manifest(self.path, audio_config)
        self.settings = self.manifest["audio_settings"]
        self.hop = int(self.settings["hop_length"])
        self.feature_dim = int(self.manifest["feature_dim"])
        self.pad_value = float(self.manifest["feature_pad_value"])
        self.cycle_length = _check_positive("cycle_length", cycle_length)
        self.shuffle_buffer = _check_positive("shuffle_buffer", shuffle_buffer)
        splits = {}
        for name in ("train", "valid"):
            shards = [s for s in self.manifest["shards"] if s["split"] == name]
            splits[name] = ShardSplit(name, [os.path.join(self.path, s["file"]) for s in shards],
                                      sum(s["num_clips"] for s in shards),
                                      sum(s["num_samples"] for s in shards))
        if not splits["train"].num_clips:
            raise ShardError(f"{self.path} holds no training clips; re-run `pwavenet prepare-data`.")
        self.train = splits["train"]
        self.valid = splits["valid"] if splits["valid"].num_clips else None
        self.stats = stats if stats is not None else self.manifest["feature_stats"]
        self._examples_cache: dict[str, list] = {}

    def _split(self, split):
        if split not in ("train", "valid"):
            raise ValueError(f"`split` must be 'train' or 'valid'. Received: split={split!r}")
        return self.train if split == "train" else self.valid

    def dataset(self, split, window_samples, batch_size, seed, multi_speaker, shuffle=True,
                start_step=0):
        """Endless batches `({"audio", "features"[, "speaker_id"]}, audio)` of a split."""
        part = self._split(split)
        if part is None:
            raise ShardError(f"{self.path} holds no {split!r} clips.")
        hop = self.hop
        window_samples = _check_window(window_samples, hop)
        batch_size = _check_positive("batch_size", batch_size)
        if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) \
                or start_step < 0:
            raise ValueError(f"`start_step` must be an integer >= 0. Received: {start_step!r}")
        window_frames = window_samples // hop
        dim, pad_value, n = self.feature_dim, self.pad_value, part.num_clips
        first_epoch, skip = divmod(int(start_step) * batch_size, n)
        files = tf.constant(part.files)
        seed_t = tf.constant(int(seed), tf.int64)
        cycle = min(self.cycle_length, len(part.files))
        block = min(self.shuffle_buffer, n)

        def crop(epoch, position, serialized):
            rec = parse_clip(serialized)
            frames = tf.shape(rec["features"], out_type=tf.int32)[0]
            max_offset = tf.maximum(frames - window_frames, 0)
            offset = tf.random.stateless_uniform(
                [], seed=tf.stack([seed_t, epoch * 4294967296 + position]),
                minval=0, maxval=max_offset + 1, dtype=tf.int32)
            audio = tf.pad(rec["audio"], [[0, window_samples]])[
                offset * hop: offset * hop + window_samples]
            feats = tf.pad(rec["features"], [[0, window_frames], [0, 0]],
                           constant_values=pad_value)[offset: offset + window_frames]
            return (tf.ensure_shape(audio, [window_samples]),
                    tf.ensure_shape(feats, [window_frames, dim]), rec["speaker_id"])

        def permute(epoch, index, a, f, spk):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(a)[0]), seed=tf.stack([-seed_t - 1, epoch * 4294967296 + index]))
            return tf.gather(a, order), tf.gather(f, order), tf.gather(spk, order)

        def epoch_ds(epoch):
            order = (tf.random.experimental.stateless_shuffle(files, seed=tf.stack([seed_t, epoch]))
                     if shuffle else files)
            ds = tf.data.Dataset.from_tensor_slices(order).interleave(
                tf.data.TFRecordDataset, cycle_length=cycle, block_length=1,
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = ds.enumerate().map(lambda p, r: crop(epoch, p, r),
                                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if shuffle and block > 1:
                ds = ds.batch(block).enumerate().map(
                    lambda i, x: permute(epoch, i, *x),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
            return ds

        ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_ds)
        if skip:
            ds = ds.skip(skip)
        ds = ds.batch(batch_size, drop_remainder=True)

        def to_inputs(a, f, spk):
            x = {"audio": a, "features": f}
            if multi_speaker:
                x["speaker_id"] = spk
            return x, a

        ds = ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return with_data_sharding(ds.prefetch(tf.data.AUTOTUNE))

    def examples(self, split):
        """`[(Utterance, audio [F*hop], features [F, D])]` of a split, read into memory.

        Meant for the (small) validation split; the validation clips are kept after the
        first call. `Utterance.audio_path` is the shard file the clip came from.
        """
        part = self._split(split)
        if part is None:
            return []
        if split in self._examples_cache:
            return self._examples_cache[split]
        out = []
        for path in part.files:
            try:
                for serialized in tf.data.TFRecordDataset(path):
                    rec = parse_clip(serialized)
                    utt = Utterance(rec["id"].numpy().decode("utf-8"), path, None,
                                    int(rec["speaker_id"]))
                    out.append((utt, rec["audio"].numpy(), rec["features"].numpy()))
            except tf.errors.DataLossError as e:
                raise ShardError(f"shard {path} is corrupt ({e.message.strip()}); delete it and "
                                 "re-run `pwavenet prepare-data` with the same --out.") from e
        if split == "valid":
            self._examples_cache[split] = out
        return out
