"""Resynthesize audio files, or vocode feature arrays, with a trained or exported model.

--model is a training directory (teacher or student) or an exported SavedModel: a version
folder holding saved_model.pb, or BASE/NAME (its highest version is used). Audio files of
any sample rate are resampled to the model's; their log-mel is computed with the model's
front end and vocoded. --mel takes raw log-mel arrays [frames, n_mels] (.npy). Each input
X writes OUT/X.wav (16-bit PCM at the model's rate). Prints the real-time factor (seconds
of compute per second of audio; < 1 is faster than real time) per file and overall; the
first file includes graph tracing. A teacher generates sample by sample: slow, use
--max-seconds to trim the inputs.

Examples:
  pwavenet vocode --model runs/student --input a.wav b.flac --output-dir out/
  pwavenet vocode --model /models/pwavenet_student --mel feats.npy --output-dir out/
"""

import os
import sys
import time

import numpy as np

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--model", default=None,
                   help="training directory, SavedModel folder, BASE/NAME of an export, or a "
                   "preset name/folder (default: the bundled ljspeech_mini preset)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", nargs="+", metavar="AUDIO",
                     help="audio files (WAV/FLAC/MP3/OGG, any sample rate)")
    src.add_argument("--mel", nargs="+", metavar="NPY",
                     help="raw log-mel arrays [frames, n_mels] (.npy)")
    p.add_argument("--output-dir", required=True, help="folder for the 16-bit WAV outputs")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    common.add_speaker_argument(p)
    p.add_argument("--max-seconds", type=common.positive_float, default=None,
                   help="vocode only the first N seconds of each input (whole frames, at "
                   "least one)")
    p.add_argument("--chunk-seconds", type=common.positive_float, default=1.0,
                   help="training-directory or preset student: seconds of features per "
                   "streamed chunk; memory is bounded by the chunk, not the input (default 1)")
    p.add_argument("--xla", action="store_true",
                   help="training directory: compile generation with XLA")
    common.add_precision_argument(p)
    common.add_verbosity_argument(p)


class _TrainedModel:
    """A training directory: the model object with its generator."""

    def __init__(self, path, args):
        from pwavenet_tf.audio.front_end import make_log_mel
        from pwavenet_tf.inference import load_model

        self.role, self.model, self.config = load_model(path, precision=args.precision)
        self.audio_config = self.config.audio
        self.sample_rate = self.audio_config.sample_rate
        self.hop = self.audio_config.hop_length
        self.uses_mel = self.audio_config.uses_mel
        self.description = f"the {self.role} in {path}" + (
            f" ({args.precision})" if args.precision != "float32" else "")
        self.max_seconds = None
        self.max_frames = None
        num_speakers = self.config.audio.num_speakers if self.model.multi_speaker else 1
        self.speaker_id = common.speaker_id_for(args.speaker_id, num_speakers, self.description)
        self._mel = make_log_mel(self.audio_config) if self.uses_mel else None
        self._args = args
        if self.role == "teacher":
            from pwavenet_tf.models.teacher_generator import TeacherGenerator

            self._generator = TeacherGenerator(self.model, jit_compile=args.xla)
        self.streams = self.role == "student"  # stream_mel: chunk by chunk to the WAV

    def load_mel(self, path):
        from pwavenet_tf.inference import load_feature_array

        return load_feature_array(path, self.audio_config.conditioning_dim)

    def vocode_mel(self, features):
        if self.streams:
            return np.concatenate(list(self.stream_mel(features)))
        args = self._args
        speaker = None if self.speaker_id is None else np.array([self.speaker_id], "int32")
        audio = self._generator.generate(features[None], speaker, seed=(args.seed, 0))
        return np.asarray(audio)[0]

    def stream_mel(self, features):
        """Student: yields the audio of `features` `[F, D]` chunk by chunk
        (`--chunk-seconds`) through a `StreamingVocoder`, in memory bounded by the chunk."""
        from pwavenet_tf.inference import stream_student

        args = self._args
        chunk = max(1, int(args.chunk_seconds * self.sample_rate / self.hop))
        return stream_student(self.model, features, self.speaker_id, seed=args.seed,
                              chunk_frames=chunk, jit_compile=args.xla)

    def features_of(self, audio):
        from pwavenet_tf.inference import features_from_audio

        return features_from_audio(audio, self.audio_config, self._mel)

    def vocode_audio(self, audio):
        return self.vocode_mel(self.features_of(audio))


class _SavedModel:
    """An exported SavedModel, called through its signatures (no model code needed)."""

    def __init__(self, path, args):
        import tensorflow as tf

        if args.precision != "float32":
            raise ValueError(f"--precision {args.precision} applies to a training directory or "
                             f"preset; the SavedModel {path} runs in the precision it was "
                             "exported with (pwavenet export --precision).")
        self._tf = tf
        self._args = args
        self.path = path
        from pwavenet_tf.export.versioning import read_export_metadata

        read_export_metadata(path)  # before any of the export's graph runs
        self.loaded = tf.saved_model.load(path)
        loaded = self.loaded
        try:
            self.sample_rate = int(loaded.sample_rate.numpy())
            self.hop = int(loaded.hop_length.numpy())
            self.n_mels = int(loaded.n_mels.numpy())
            num_speakers = int(loaded.num_speakers.numpy())
            self.max_seconds = float(loaded.max_seconds.numpy())
            self.role = loaded.model_role.numpy().decode()
        except AttributeError as e:
            raise ValueError(f"{path} is a SavedModel but not a pwavenet export ({e}).") from e
        # The longest input the export accepts, in frames (audio: frames * hop samples).
        max_frames = getattr(loaded, "max_frames", None)
        self.max_frames = (int(max_frames.numpy()) if max_frames is not None
                           else frame_limit(self.sample_rate, self.hop, self.max_seconds))
        self.uses_mel = "vocode_waveform" in loaded.signatures
        self.description = f"the exported {self.role} in {path}"
        self.speaker_id = common.speaker_id_for(args.speaker_id, num_speakers, self.description)

    def load_mel(self, path):
        from pwavenet_tf.inference import load_feature_array

        return load_feature_array(path, self.n_mels)

    def _call(self, name, **inputs):
        tf = self._tf
        if self.speaker_id is not None:
            inputs["speaker_id"] = tf.constant([self.speaker_id], tf.int32)
        inputs["seed"] = tf.constant(self._args.seed, tf.int64)
        try:
            return self.loaded.signatures[name](**inputs)["audio"].numpy()[0]
        except tf.errors.InvalidArgumentError as e:
            lines = [ln for ln in str(e).splitlines() if "assertion failed" in ln]
            raise ValueError(
                f"The exported model rejected the input: {lines[0] if lines else e}") from e

    def vocode_mel(self, features):
        return self._call("serving_default", mel=self._tf.constant(features[None]))

    def vocode_audio(self, audio):
        return self._call("vocode_waveform", audio=self._tf.constant(audio[None]))


def frame_limit(sample_rate, hop, max_seconds=None, export_max_frames=None):
    """The most frames of an input that are vocoded, or None for no limit.

    `max_seconds` (`--max-seconds`) keeps the first whole frames of that length (at least
    one); `export_max_frames` is an export's own limit. Audio keeps `frames * hop`
    samples: a whole number of frames, so never more than the export's `max_samples`
    (600 s at 22,050 Hz with hop 256 is 51,679 frames, 13,229,824 samples, not 13,230,000).
    """
    limits = []
    if max_seconds is not None:
        limits.append(max(1, int(max_seconds * sample_rate // hop)))
    if export_max_frames is not None:
        limits.append(int(export_max_frames))
    return min(limits) if limits else None


def open_model(path, args):
    """A training directory, a preset (None: the bundled default) or a SavedModel export
    (`BASE/NAME` picks the latest version)."""
    from pwavenet_tf import presets
    from pwavenet_tf.export.versioning import resolve_saved_model_dir
    from pwavenet_tf.training.checkpointing import model_dir_role

    if path is None or presets.is_preset_dir(path) or (
            not os.path.exists(path) and path in presets.list_presets()):
        return _TrainedModel(path or presets.DEFAULT_PRESET, args)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model not found: {path}")
    if model_dir_role(path) is not None:
        return _TrainedModel(path, args)
    saved = resolve_saved_model_dir(path)
    if saved is not None:
        return _SavedModel(saved, args)
    raise ValueError(
        f"{path} is neither a pwavenet training directory (pwavenet_model.json) nor an "
        "exported SavedModel (saved_model.pb, or integer version folders holding one)."
    )


def _output_paths(inputs, output_dir):
    paths, seen = [], set()
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, k = stem, 1
        while name in seen:
            k += 1
            name = f"{stem}_{k}"
        seen.add(name)
        paths.append(os.path.join(output_dir, f"{name}.wav"))
    return paths


def run(args):
    from pwavenet_tf.audio.audio_io import read_audio, write_wav
    from pwavenet_tf.inference import real_time_factor, write_wav_chunks

    inputs = args.input or args.mel
    missing = [p for p in inputs if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"Input file(s) not found: {', '.join(missing)}")
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise ValueError(f"--output-dir {args.output_dir} is a file, not a folder: choose "
                         "another --output-dir (or remove the file).")
    model = open_model(args.model, args)
    if args.input and not model.uses_mel:
        raise ValueError(f"{args.model} is conditioned on external features, not log-mel: "
                         "pass feature arrays with --mel.")
    outputs = _output_paths(inputs, args.output_dir)
    sr, hop = model.sample_rate, model.hop
    # An export rejects longer inputs: trim them to the most whole frames it accepts.
    limit = frame_limit(sr, hop, args.max_seconds, model.max_frames)
    asked = frame_limit(sr, hop, args.max_seconds)
    export_limits = model.max_frames is not None and (asked is None or asked > model.max_frames)

    total_samples, total_seconds, lines = 0, 0.0, []
    items = list(zip(inputs, outputs))
    iterator = items if args.quiet or len(items) < 2 else common.progress(
        items, desc="vocoding")
    def trim_note(src, seconds):
        if export_limits:
            print(f"note: {src} is {seconds:.1f} s long; only the first "
                  f"{limit * hop / sr:.2f} s ({limit} frames) are vocoded (the export's "
                  f"--max-seconds {model.max_seconds:g})", file=sys.stderr)

    for src, dst in iterator:
        if args.input:
            audio = read_audio(src, sample_rate=sr)
            if limit is not None and len(audio) > limit * hop:
                trim_note(src, len(audio) / sr)
                audio = audio[:limit * hop]
            if len(audio) < hop:
                raise ValueError(f"{src} is shorter than one frame ({len(audio)} < {hop} "
                                 f"samples at {sr} Hz).")
            start = time.time()
            if getattr(model, "streams", False):
                feats = model.features_of(audio)
            else:
                out = model.vocode_audio(audio)
        else:
            feats = model.load_mel(src)
            if limit is not None and len(feats) > limit:
                trim_note(src, len(feats) * hop / sr)
                feats = feats[:limit]
            start = time.time()
            if not getattr(model, "streams", False):
                out = model.vocode_mel(feats)
        # Created only once there is something to write: a bad input leaves no folder.
        os.makedirs(args.output_dir, exist_ok=True)
        if getattr(model, "streams", False):
            # The student streams: each chunk's audio goes to the WAV as it comes.
            n = write_wav_chunks(dst, model.stream_mel(feats), sr)
        else:
            write_wav(dst, out, sr)
            n = len(out)
        elapsed = time.time() - start
        total_samples += n
        total_seconds += elapsed
        rtf = real_time_factor(n, sr, elapsed)
        line = (f"{dst}: {n / sr:.2f} s of audio in {elapsed:.2f} s, "
                f"real-time factor {rtf:.3f}")
        lines.append(line)
        if args.quiet or len(items) < 2:
            print(line)
    if not args.quiet and len(items) >= 2:
        sys.stderr.flush()
        print("\n".join(lines))
    rtf = real_time_factor(total_samples, sr, total_seconds)
    print(f"vocoded {len(items)} file(s) with {model.description}: "
          f"{total_samples / sr:.2f} s of audio in {total_seconds:.2f} s, "
          f"real-time factor {rtf:.3f} overall")
    return None
