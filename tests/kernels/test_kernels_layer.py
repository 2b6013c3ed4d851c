"""Per-channel kernels and layers: the value, and their text, JSON and .npy files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convtool
from convtool.kernels.files import format_kernel, save_kernel
from convtool.kernels.layer import Layer
from convtool.kernels.spec import load_any_kernel, load_kernel


def _layer(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Weights whose entries all differ (a transposed or misplaced kernel cannot hide)."""
    n = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(np.arange(1, n + 1)) / 8
    return values.reshape(shape) * np.where(np.arange(n) % 3 == 1, -1, 1).reshape(shape)


@pytest.mark.parametrize(
    ("shape", "bias"),
    [((2, 3, 3, 5), [0.5, -1.25]), ((3, 2, 4), [0.1, 0.2, 0.3]), ((1, 3, 1, 1), [7.0])],
)
@pytest.mark.parametrize("suffix", [".txt", ".json", ".csv"])
def test_layers_round_trip_through_every_text_file(tmp_path, shape, bias, suffix):
    """``learn -o k.txt`` then ``apply -k @k.txt``: weights, biases and form come back."""
    layer = Layer(_layer(shape), bias, "learned")
    path = tmp_path / f"k{suffix}"
    save_kernel(layer, path)
    back = load_any_kernel(f"@{path}")
    assert isinstance(back, Layer)
    np.testing.assert_array_equal(back.weights, layer.weights)
    np.testing.assert_array_equal(back.biases, bias)
    assert back.per_channel == (len(shape) == 3)


def test_a_layer_without_bias_round_trips_through_npy(tmp_path):
    layer = Layer(_layer((3, 3, 2, 2)))
    save_kernel(layer, tmp_path / "k.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "k.npy"), layer.weights)
    back = load_any_kernel(f"@{tmp_path / 'k.npy'}")
    np.testing.assert_array_equal(back.weights, layer.weights)
    with pytest.raises(convtool.KernelError, match=r"would lose the bias \[1.0, 0.0, 0.0\]"):
        save_kernel(Layer(layer.weights, [1, 0, 0]), tmp_path / "b.npy")
    assert not (tmp_path / "b.npy").exists()


def test_the_text_form_is_blocks_headed_by_channel_with_a_bias_per_output():
    layer = Layer([[[[1, 2]], [[3, 4]]]], [0.5], "mix")
    assert format_kernel(layer) == (
        "# kernel: mix\n# size: 1x2\n# layer: 2 inputs -> 1 outputs\n\n"
        "# channel 0, 0\n# bias: 0.5\n1 2\n\n# channel 0, 1\n3 4\n"
    )
    per = Layer([[[1.5]], [[-2]]], [0, 1], "per")
    assert format_kernel(per) == (
        "# kernel: per\n# size: 1x1\n# channels: 2, one kernel per channel\n\n"
        "# channel 0\n# bias: 0.0\n1.5\n\n# channel 1\n# bias: 1.0\n-2\n"
    )


def test_hand_written_text_in_any_order(tmp_path):
    """Blocks may come in any order, the bias in any block of its output."""
    (tmp_path / "k.txt").write_text(
        "# channel 1, 0\n5 6\n# channel 0, 1\n3 4\n# bias: -1\n"
        "# channel 1, 1\n# bias: 2\n7 8\n\n# channel 0, 0\n1 2\n"
    )
    layer = load_any_kernel(f"@{tmp_path / 'k.txt'}")
    np.testing.assert_array_equal(layer.weights, [[[[1, 2]], [[3, 4]]], [[[5, 6]], [[7, 8]]]])
    np.testing.assert_array_equal(layer.biases, [-1, 2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\n# channel 0\n3 4\n", "line 1: numbers before the first '# channel' line"),
        ("# bias: 1\n# channel 0\n3 4\n", "line 1: a '# bias:' line goes inside the block"),
        ("# channel 0, 0\n1\n# channel 1, 1\n2\n", r"no block for channel 0, 1"),
        ("# channel 0\n1\n# channel 0\n2\n", r"line 3: channel 0 was given already \(line 1\)"),
        ("# channel 0\n1\n# channel 1, 0\n2\n", "mixes '# channel c' and '# channel o, i'"),
        ("# channel 0\n1 2\n# channel 1\n3\n", r"different sizes \(1x1, 1x2\)"),
        ("# channel 0\n1 x\n", r"channel 0 \(line 1\): 'x' is not a number"),
        ("# channel 0\n# bias: nan\n1\n", "line 2: bias 'nan' must be finite"),
        ("# channel 0, 0\n# bias: 1\n1\n# channel 0, 1\n# bias: 2\n1\n", "output 0 has a"),
        ("# channel 0\n1;2\n3;4\n", "line 2 holds ';'"),
        ("# channel 0\n", "channel 0 .line 1.: no numbers found"),
    ],
)
def test_refused_layer_text(tmp_path, text, message):
    (tmp_path / "k.txt").write_text(text)
    with pytest.raises(convtool.KernelError, match=message):
        load_any_kernel(f"@{tmp_path / 'k.txt'}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kernel": [[[1, 2]], [[3]]]}, "ragged"),
        ({"kernel": [[[1, True]]]}, "holds true, which is not a number"),
        ({"kernel": [[["1"]]]}, 'holds "1", which is not a number'),
        ({"kernel": [[[1]], [[2]]], "bias": 0.5}, "one number per output channel; got 0.5"),
        ({"kernel": [[[1]], [[2]]], "bias": [1, 2, 3]}, "3 bias values for 2 output channels"),
        ({"kernel": [[[[[1]]]]]}, "lists nested more than 4 deep"),
        ({"kernel": [[[1]], [[2]]], "bias": [1, None]}, "holds null, which is not a number"),
    ],
)
def test_refused_layer_json(tmp_path, data, message):
    (tmp_path / "k.json").write_text(json.dumps(data))
    with pytest.raises(convtool.KernelError, match=message):
        load_any_kernel(f"@{tmp_path / 'k.json'}")


def test_inline_json_layers_and_a_3d_list_without_bias():
    layer = load_any_kernel('{"kernel": [[[1, 2]], [[3, 4]]], "bias": [0.5, 1]}')
    assert layer.per_channel and layer.biases.tolist() == [0.5, 1]
    assert load_any_kernel("[[[1]], [[2]], [[3]]]").biases.tolist() == [0, 0, 0]


def test_npy_layers_are_checked_before_loading(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((300, 1, 1)))
    with pytest.raises(convtool.KernelError, match="more than 256 channels"):
        load_any_kernel(f"@{tmp_path / 'big.npy'}")
    np.save(tmp_path / "k5.npy", np.zeros((1, 1, 1, 1, 1)))
    with pytest.raises(convtool.KernelError, match="5 dimensions"):
        load_any_kernel(f"@{tmp_path / 'k5.npy'}")


def test_load_kernel_refuses_a_layer_naming_it(tmp_path):
    """Where one 2-D kernel is needed (correlate, learn --init), a layer file is refused."""
    save_kernel(Layer(_layer((3, 3, 5, 5))), tmp_path / "k.txt")
    with pytest.raises(convtool.KernelError, match=r"holds a 3->3 layer of 5x5 kernels"):
        load_kernel(f"@{tmp_path / 'k.txt'}")


def test_a_two_d_file_with_blank_lines_stays_one_kernel(tmp_path):
    """Blank lines split kernels only in files whose blocks are headed '# channel'."""
    (tmp_path / "k.txt").write_text("1 2\n\n3 4\n")
    k = load_any_kernel(f"@{tmp_path / 'k.txt'}")
    assert isinstance(k, convtool.Kernel)
    np.testing.assert_array_equal(k.weights, [[1, 2], [3, 4]])


def test_layer_value():
    w = _layer((2, 3, 2, 3))
    layer = Layer(w, [1, 2])
    assert (layer.outputs, layer.inputs, layer.shape) == (2, 3, (2, 3))
    np.testing.assert_array_equal(layer.flipped().weights, w[..., ::-1, ::-1])
    per = Layer(w[0], [1, 2, 3])
    full = per.full()
    assert full.shape == (3, 3, 2, 3)
    np.testing.assert_array_equal(full[1, 1], w[0, 1])
    assert not full[0, 1].any()
    normalized = Layer(np.ones((2, 3, 2, 2))).normalized()
    np.testing.assert_allclose(normalized.weights, 1 / 12)
    zero_sum = Layer([[[1, -1]]]).normalized()
    np.testing.assert_array_equal(zero_sum.weights, [[[1, -1]]])
    with pytest.raises(convtool.KernelError, match="has 2 dimensions"):
        Layer(np.ones((2, 2)))
    with pytest.raises(convtool.KernelError, match="channel 1: has NaN"):
        Layer([[[1.0]], [[np.nan]]])
    with pytest.raises(convtool.KernelError, match="2 bias values for 1 output"):
        Layer([[[1.0]]], [1, 2])
    with pytest.raises(convtool.KernelError, match="is a number"):
        Layer([[[1.0]]], [True])


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)).map(
        lambda s: s if s[1] > 1 else (s[0], s[2], s[3])
    ),
    data=st.data(),
)
def test_property_layer_files_round_trip(tmp_path_factory, shape, data):
    """Any shape and any finite weights and biases come back exactly from .txt and .json."""
    values = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
    n = int(np.prod(shape))
    weights = np.array(data.draw(st.lists(values, min_size=n, max_size=n))).reshape(shape)
    bias = data.draw(st.lists(values, min_size=shape[0], max_size=shape[0]))
    layer = Layer(weights, bias, "any")
    folder = tmp_path_factory.mktemp("layer")
    for suffix in (".txt", ".json"):
        save_kernel(layer, folder / f"k{suffix}")
        back = load_any_kernel(f"@{folder / f'k{suffix}'}")
        np.testing.assert_array_equal(back.weights, weights)
        np.testing.assert_array_equal(back.biases, bias)
