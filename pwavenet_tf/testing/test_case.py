"""Standard checks every layer must pass (in the style of keras-hub's `run_layer_test`)."""

import os
import tempfile

import keras
import numpy as np
from keras import ops


def _to_list(x):
    if isinstance(x, dict):
        return [x[k] for k in sorted(x)]
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _symbolic(x, name=None):
    if isinstance(x, dict):
        return {k: _symbolic(v, k) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_symbolic(v) for v in x)
    x = np.asarray(x)
    return keras.Input(shape=x.shape[1:], batch_size=None, dtype=str(x.dtype), name=name)


def _call(layer, data):
    """Dict inputs are keyword arguments (keras-hub convention), anything else positional."""
    if isinstance(data, dict):
        return layer(**data)
    return layer(data)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    run_training_check=True,
    atol=1e-6,
):
    """Runs the standard checks on a layer and returns its eager output.

    - `get_config` / `from_config` round-trip gives an identical config and output.
    - Saving round-trip (`.keras` archive) gives identical outputs.
    - A symbolic call (functional `keras.Input`) gives the eager output shape.
    - One `fit` step runs and changes the trainable weights.
    """
    layer = layer_cls(**init_kwargs)
    output = _call(layer, input_data)
    outputs = _to_list(output)
    if expected_output_shape is not None:
        expected = expected_output_shape
        if all(isinstance(d, int) or d is None for d in expected):
            expected = [expected]
        got = [tuple(ops.shape(o)) for o in outputs]
        assert got == [tuple(e) for e in expected], f"output shapes {got} != {expected}"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights

    # 1. Serialization round-trip.
    config = layer.get_config()
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config, "get_config does not round-trip"
    _call(revived, input_data)
    revived.set_weights(layer.get_weights())
    for a, b in zip(outputs, _to_list(_call(revived, input_data))):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=atol)

    # 2. Symbolic call inside a functional model.
    sym_inputs = _symbolic(input_data)
    sym_out = _call(layer_cls(**init_kwargs), sym_inputs)
    for s, o in zip(_to_list(sym_out), outputs):
        assert len(s.shape) == len(o.shape), "symbolic output rank differs from eager"
        for ds, do in zip(s.shape[1:], tuple(ops.shape(o))[1:]):
            assert ds is None or ds == do, f"symbolic shape {s.shape} vs eager {o.shape}"

    # 3. Saving round-trip through a functional model.
    model = keras.Model(sym_inputs, _call(layer, sym_inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    for a, b in zip(_to_list(model(input_data)), _to_list(restored(input_data))):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=atol)

    # 4. One fit step on a mean-squared target changes the weights.
    if run_training_check and layer.trainable_weights:
        before = [np.array(w) for w in layer.trainable_weights]
        targets = [np.zeros_like(ops.convert_to_numpy(o)) + 0.5 for o in outputs]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(input_data, targets if len(targets) > 1 else targets[0], epochs=1, verbose=0)
        after = [np.array(w) for w in layer.trainable_weights]
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "fit changed nothing"
    return output
