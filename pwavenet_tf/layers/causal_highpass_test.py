import numpy as np
import pytest
from keras import ops

from pwavenet_tf.layers.causal_highpass import CausalHighpass, butterworth_highpass_taps

SR = 22050


def test_taps_are_the_butterworth_response_with_a_unit_first_tap():
    h = butterworth_highpass_taps(60 / SR, 4096)
    assert h[0] == 1.0
    response = np.abs(np.fft.rfft(h, 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / SR)
    db = {f: 20 * np.log10(response[np.argmin(np.abs(freqs - f))] + 1e-30)
          for f in (0, 20, 60, 100, 1000)}
    assert db[0] < -100 and db[20] == pytest.approx(-19.2, abs=0.3)
    # -3 dB at the cutoff, plus the 0.1 dB lift of the unit first tap (1 / b0).
    assert db[60] == pytest.approx(-3.01 + 0.105, abs=0.05)
    assert abs(db[100] + 0.43) < 0.05 and abs(db[1000] - 0.1) < 0.02
    assert np.max(np.abs(h[1000:])) < 1e-5  # the truncation to 1,024 taps loses nothing


def test_shift_is_the_strictly_causal_part_of_the_convolution():
    hp = CausalHighpass(60 / SR, taps=64)
    x = np.random.default_rng(0).normal(size=(2, 300)).astype("float32")
    h = butterworth_highpass_taps(60 / SR, 64)
    want = np.stack([np.convolve(row, h)[:300] for row in x]) - x
    np.testing.assert_allclose(ops.convert_to_numpy(hp.shift(x)), want, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(hp(x)), want + x, atol=1e-5)
    # Strictly causal: changing x_t leaves shift_<=t unchanged.
    x2 = x.copy()
    x2[:, 150] += 1.0
    d = ops.convert_to_numpy(hp.shift(x2)) - ops.convert_to_numpy(hp.shift(x))
    assert np.abs(d[:, :151]).max() == 0.0 and np.abs(d[:, 151]).max() > 0.01


def test_chunks_with_history_equal_one_pass():
    hp = CausalHighpass(60 / SR, taps=100)
    x = np.random.default_rng(1).normal(size=(1, 500)).astype("float32")
    whole = ops.convert_to_numpy(hp.shift(x))
    history, pieces = None, []
    for a, b in ((0, 7), (7, 130), (130, 131), (131, 500)):
        pieces.append(ops.convert_to_numpy(hp.shift(x[:, a:b], history)))
        history = hp.history(x[:, a:b], history)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)


def test_a_dc_offset_is_removed():
    hp = CausalHighpass(60 / SR)
    t = np.arange(SR) / SR
    x = (0.01 + 0.1 * np.sin(2 * np.pi * 200 * t))[None].astype("float32")
    y = ops.convert_to_numpy(hp(x))[0]
    assert abs(np.mean(y[SR // 4:])) < 1e-4  # the 0.01 offset is gone after the transient
    assert np.std(y[SR // 4:]) == pytest.approx(0.1 / np.sqrt(2), rel=0.01)  # 200 Hz kept


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="cutoff"):
        CausalHighpass(0.6)
    with pytest.raises(ValueError, match="taps"):
        CausalHighpass(0.01, taps=1)
    assert CausalHighpass.from_config(CausalHighpass(0.01, taps=8).get_config()).taps == 8


@pytest.mark.parametrize("taps,block,length", [(1024, 256, 4096), (1024, 256, 1000),
                                               (64, 7, 300), (64, 64, 1), (5, 1, 40)])
def test_block_toeplitz_product_equals_the_direct_convolution(taps, block, length):
    # Many context blocks (1,023 taps in blocks of 256: 4), lengths that are not a multiple of
    # the block, one-sample blocks and one-sample inputs.
    hp = CausalHighpass(60 / SR, taps=taps, block=block)
    x = np.random.default_rng(taps + block).normal(size=(3, length)).astype("float32")
    h = butterworth_highpass_taps(60 / SR, taps)
    want = np.stack([np.convolve(row, h)[:length] for row in x]) - x
    np.testing.assert_allclose(ops.convert_to_numpy(hp.shift(x)), want, atol=2e-5)
    history = np.random.default_rng(2).normal(size=(3, taps - 1)).astype("float32")
    joined = np.concatenate([history, x], axis=1)
    want = np.stack([np.convolve(row, h)[taps - 1:taps - 1 + length] for row in joined]) - x
    np.testing.assert_allclose(ops.convert_to_numpy(hp.shift(x, history)), want, atol=2e-5)


def test_unknown_shapes_in_a_graph_and_gradients_are_the_transposed_filter():
    import tensorflow as tf

    hp = CausalHighpass(60 / SR, taps=300, block=128)
    x = np.random.default_rng(3).normal(size=(2, 777)).astype("float32")
    fn = tf.function(hp.shift, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    np.testing.assert_allclose(fn(x).numpy(), ops.convert_to_numpy(hp.shift(x)), atol=1e-6)
    g = np.random.default_rng(4).normal(size=x.shape).astype("float32")
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        loss = tf.reduce_sum(hp.shift(xv) * g)
    h = butterworth_highpass_taps(60 / SR, 300)
    h[0] = 0.0  # the shift's gradient is the anti-causal correlation with h_1 .. h_{K-1}
    want = np.stack([np.correlate(np.concatenate([row, np.zeros(299)]), h, "valid")
                     for row in g])
    np.testing.assert_allclose(tape.gradient(loss, xv).numpy(), want, atol=2e-5)
    with pytest.raises(ValueError, match="block"):
        CausalHighpass(0.01, block=0)
