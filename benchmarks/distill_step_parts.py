"""The networks' share of a distillation step (issue 10, section 6): the student's and the
frozen teacher's passes timed alone, at a config's distill shape (default `ljspeech_mini`,
4 x 4,096), with random weights, each as one `tf.function` (graph mode, as `pwavenet
distill` runs). Prints; asserts nothing.

Parts:
- student forward: one parallel pass (sample, mu_tot, log_s_tot) from noise and features;
- student forward + backward: the same with the gradient of every student weight (a stand-in
  loss of the sample and log-scales; the step's real loss adds only elementwise work);
- teacher forward: the teacher-forced mixture parameters on a waveform;
- teacher forward + d/dx: the same with the gradient with respect to the waveform only
  (the teacher is frozen: no weight gradients, as in distillation); the step runs two of
  these with the contrastive term;
- output high-pass forward + backward (`CausalHighpass`, the student's last step) alone.

Compare with the whole step of `pwavenet bench --config CFG --phase train --stage
distill`. Pause other work on the machine first.

Run (from the repository root):
  python benchmarks/distill_step_parts.py [--config ljspeech_mini] [--repeats 6]
      [--mixed-precision off|bfloat16|float16]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _time(fn, repeats):
    import tensorflow as tf

    fn()  # traced
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn())
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="ljspeech_mini")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--mixed-precision", default="off",
                        help="the networks' dtype policy, as `pwavenet distill` takes it")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from pwavenet_tf.benchmarks.training import build_stage
    from pwavenet_tf.config import load_config

    cfg = load_config(args.config)
    distiller, _ = build_stage(cfg, "distill", precision=args.mixed_precision)
    student, teacher = distiller.student, distiller.teacher
    hop = cfg.audio.hop_length
    batch, window = cfg.distill.batch_size, cfg.distill.window_samples // hop * hop
    rng = np.random.default_rng(0)
    features = tf.constant(rng.standard_normal(
        (batch, window // hop, cfg.audio.conditioning_dim)).astype("float32"))
    inputs = {"noise": tf.constant(rng.logistic(size=(batch, window)).astype("float32")),
              "features": features}
    if student.multi_speaker:
        inputs["speaker_id"] = tf.zeros((batch,), "int32")
    x = tf.constant((0.1 * rng.standard_normal((batch, window))).astype("float32"))
    conditioning = teacher.upsample_conditioning(features)
    global_cond = (teacher.global_conditioning(inputs["speaker_id"])
                   if teacher.multi_speaker else None)

    @tf.function
    def student_forward():
        return student(inputs)["audio"]

    @tf.function
    def student_backward():
        with tf.GradientTape() as tape:
            out = student(inputs)
            loss = tf.reduce_sum(out["audio"] ** 2) + tf.reduce_sum(out["log_s_tot"])
        return tape.gradient(loss, student.trainable_variables)

    @tf.function
    def teacher_forward():
        return teacher.params_from_conditioning(x, conditioning, global_cond)

    @tf.function
    def teacher_input_gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(teacher.params_from_conditioning(x, conditioning,
                                                                  global_cond) ** 2)
        return tape.gradient(loss, x)

    parts = [("student forward", student_forward),
             ("student forward + backward", student_backward),
             ("teacher forward", teacher_forward),
             ("teacher forward + d/dx", teacher_input_gradient)]
    highpass = getattr(student, "highpass", None)
    if highpass is not None:
        variable = tf.Variable(x)

        @tf.function
        def highpass_backward():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(highpass(variable) ** 2)
            return tape.gradient(loss, variable)

        parts.append(("output high-pass forward + backward", highpass_backward))
    print(f"{cfg.name}: batch {batch} x {window} samples, precision "
          f"{args.mixed_precision}; student {student.count_params():,} parameters, "
          f"teacher {teacher.count_params():,}")
    print("| part | seconds, median [min, max] |\n|---|---|")
    for name, fn in parts:
        s = _time(fn, args.repeats)
        print(f"| {name} | {statistics.median(s):.3f} [{min(s):.3f}, {max(s):.3f}] |",
              flush=True)


if __name__ == "__main__":
    main()
