"""Generate 16-bit audio from conditioning features with a trained teacher or student.

The teacher samples one value at a time (`--method cached` uses convolution queues,
O(layers) per sample; `--method naive` recomputes the receptive field every step, the
slow reference). The student is parallel within a chunk and streams long inputs chunk by
chunk (`--chunk-seconds`, a `StreamingVocoder` carrying its queues), written to the WAV as
they come: memory is bounded by the chunk and the output is identical to one pass.

Examples:
  pwavenet generate --model runs/teacher --input clip.wav --output out.wav --method cached
  pwavenet generate --model runs/student --mel features.npy --output out.wav
"""

import os
import time

import numpy as np

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--model", default=None,
                   help="trained teacher or student directory, or a preset name/folder "
                   "(default: the bundled ljspeech_mini preset's student)")
    p.add_argument("--role", choices=["student", "teacher"], default="student",
                   help="which model of a preset to use (default: student)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mel", help="feature array .npy [frames, n_mels] (raw log-mel)")
    src.add_argument("--input", help="audio file whose log-mel conditions the generation")
    p.add_argument("--output", required=True, help="output WAV path (16-bit PCM)")
    p.add_argument("--method", choices=["cached", "naive"], default="cached",
                   help="teacher generation method (default: cached)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    common.add_speaker_argument(p)
    p.add_argument("--xla", action="store_true", help="compile generation with XLA")
    p.add_argument("--max-seconds", type=common.positive_float, default=None,
                   help="only generate the first N seconds (at least one frame)")
    p.add_argument("--chunk-seconds", type=common.positive_float, default=1.0,
                   help="student: seconds of features per streamed chunk (default 1)")
    common.add_precision_argument(p)


def check_output_path(path):
    """Fails before any generation when the WAV could not be written to `path`."""
    if os.path.isdir(path):
        raise ValueError(f"--output {path} is a folder: give the path of a WAV file to write.")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"--output {path}: {parent} is a file, not a folder; choose another "
                         "output path.")


def run(args):
    from pwavenet_tf.audio.audio_io import write_wav
    from pwavenet_tf.inference import features_from_file, load_model, real_time_factor

    check_output_path(args.output)
    role, model, config = load_model(args.model, role=args.role, precision=args.precision)
    audio_cfg = config.audio
    speaker_id = common.speaker_id_for(
        args.speaker_id, audio_cfg.num_speakers if model.multi_speaker else 1,
        f"the {role} of {args.model or 'the default preset'}")
    features = features_from_file(args.mel or args.input, audio_cfg)
    if args.max_seconds is not None:
        frames = max(1, int(args.max_seconds * audio_cfg.sample_rate / audio_cfg.hop_length))
        features = features[:frames]
    speaker = None if speaker_id is None else np.array([speaker_id], "int32")
    start = time.time()
    if role == "teacher":
        from pwavenet_tf.models.teacher_generator import TeacherGenerator

        gen = TeacherGenerator(model, jit_compile=args.xla, progress_every=audio_cfg.sample_rate)
        audio = gen.generate(features[None], speaker, seed=(args.seed, 0), method=args.method)
        audio = np.asarray(audio)[0]
        write_wav(args.output, audio, audio_cfg.sample_rate)
        n = len(audio)
    else:
        from pwavenet_tf.inference import stream_student, write_wav_chunks

        if args.method == "naive":
            raise ValueError("--method naive applies to the teacher only; a student is parallel.")
        # Streamed chunk by chunk into the WAV: memory is bounded by the chunk.
        chunk = max(1, int(args.chunk_seconds * audio_cfg.sample_rate / audio_cfg.hop_length))
        chunks = stream_student(model, features, speaker_id, seed=args.seed,
                                chunk_frames=chunk, jit_compile=args.xla)
        n = write_wav_chunks(args.output, chunks, audio_cfg.sample_rate)
    elapsed = time.time() - start
    rtf = real_time_factor(n, audio_cfg.sample_rate, elapsed)
    print(f"wrote {args.output}: {n} samples ({n / audio_cfg.sample_rate:.2f} s) "
          f"with the {role} in {elapsed:.2f} s, {n / elapsed:,.0f} samples/s, "
          f"real-time factor {rtf:.3f}")
