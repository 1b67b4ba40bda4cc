import pytest

from pwavenet_tf.benchmarks import flops
from pwavenet_tf.models.iaf_student import IAFStudent
from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

# Upsampler of both models: features 4 -> 2 channels, factors (2, 3), hop 6.
#   pre-conv kernel [3, 4, 2] per frame                    = 24
#   transposed conv 1: kernel [2, 2*2] on 1 row per frame  =  8
#   transposed conv 2: kernel [2, 3*2] on 2 rows per frame = 24
#   per sample: (24 + 8 + 24) / 6
UPSAMPLER = 56 / 6


def _teacher(**kw):
    args = dict(conditioning_dim=4, num_layers=2, num_cycles=1, filter_size=2,
                residual_channels=3, gate_channels=4, skip_channels=5, num_mixtures=2,
                conditioning_channels=2, upsample_factors=(2, 3), input_mu_law=True)
    args.update(kw)
    return WaveNetTeacher(**args)


def test_teacher_two_layers_hand_count():
    teacher = _teacher()
    # input_proj: 2 input features (linear + mu-law) x 3                  =   6
    # per block: dilated conv 2 taps x 3 x 4 = 24, conditioning 2 x 4 = 8,
    #            residual (4/2) x 3 = 6, skip (4/2) x 5 = 10             =  48
    # the last block has no residual projection (its residual is unused) =  42
    # head: 5 x 5 + 5 x (3 * 2 mixtures)                                  =  55
    stack = 6 + 48 + 42 + 55
    got = flops.teacher_macs_per_sample(teacher)
    assert got["per_step_stack"] == stack
    assert got["total"] == pytest.approx(stack + UPSAMPLER)
    assert got["flops"] == pytest.approx(2 * (stack + UPSAMPLER))
    b = got["breakdown"]
    assert b["dilated_conv"] == 48 and b["conditioning_proj"] == 16
    assert b["residual_proj"] == 6 and b["skip_proj"] == 20 and b["head"] == 55
    assert b["upsampler"] == pytest.approx(UPSAMPLER)
    assert "global_proj" not in b

    naive = flops.teacher_macs_per_sample(teacher, naive_window=10)
    assert naive["total"] == pytest.approx(10 * stack + UPSAMPLER)


def test_teacher_multi_speaker_counts_global_projection():
    teacher = _teacher(num_speakers=3, speaker_channels=7)
    got = flops.teacher_macs_per_sample(teacher)
    assert got["breakdown"]["global_proj"] == 2 * 7 * 4
    assert got["per_step_stack"] == 6 + (48 + 28) + (42 + 28) + 55


def test_student_two_layers_hand_count():
    student = IAFStudent(conditioning_dim=4, flow_layers=(2,), dilation_cycle=2, channels=3,
                         filter_size=2, conditioning_channels=2, upsample_factors=(2, 3))
    # input_proj 1 x 3 = 3; per block: conv 2 x 3 x 6 = 36, conditioning 2 x 6 = 12,
    # residual 3 x 3 = 9 (no skip) -> 57 x 2 blocks; output_proj 3 x 2 = 6.
    flow = 3 + 2 * 57 + 6
    got = flops.student_macs_per_sample(student)
    assert got["per_flow"] == [flow]
    assert got["total"] == pytest.approx(flow + UPSAMPLER)
    assert flops.macs_per_sample(student)["total"] == got["total"]

    two_flows = IAFStudent(conditioning_dim=4, flow_layers=(2, 1), dilation_cycle=2,
                           channels=3, filter_size=2, conditioning_channels=2,
                           upsample_factors=(2, 3))
    got = flops.student_macs_per_sample(two_flows)
    assert got["per_flow"] == [flow, 3 + 57 + 6]


def test_naive_mean_window():
    teacher = _teacher()  # filter 2, dilations 1, 2: receptive field 4
    assert teacher.receptive_field == 4
    assert flops.naive_mean_window(teacher, 1) == 1
    assert flops.naive_mean_window(teacher, 4) == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert flops.naive_mean_window(teacher, 6) == pytest.approx((1 + 2 + 3 + 4 + 5 + 5) / 6)
    with pytest.raises(ValueError, match="num_samples"):
        flops.naive_mean_window(teacher, 0)


def test_rejects_other_models():
    with pytest.raises(ValueError, match="WaveNetTeacher or an IAFStudent"):
        flops.macs_per_sample(object())
