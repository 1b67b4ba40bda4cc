"""A tiny IAF student for tests, its output kernels non-zero so x_t depends on the past."""

import keras
import numpy as np

from pwavenet_tf.models.iaf_student import IAFStudent

TINY_STUDENT = dict(conditioning_dim=5, flow_layers=(2, 2), dilation_cycle=2, channels=8,
                    conditioning_channels=6, upsample_factors=(2, 2))


def tiny_student(seed=1, kernel_std=0.2, **overrides):
    """`IAFStudent(**TINY_STUDENT, **overrides)`, seeded, output kernels ~ N(0, kernel_std)
    (they start at zero, which would make every flow the identity)."""
    keras.utils.set_random_seed(seed)
    student = IAFStudent(**dict(TINY_STUDENT, **overrides))
    r = np.random.default_rng(seed)
    for flow in student.flows:
        kernel = flow.output_proj.kernel
        kernel.assign(r.normal(0, kernel_std, size=kernel.shape))
    return student
