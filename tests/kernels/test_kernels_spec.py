"""Kernel specs: built-in names with arguments, inline matrices, and the errors for bad ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convtool
from convtool.kernels.spec import load_kernel, parse_kernel
from convtool.kernels.value import MAX_KERNEL_SIDE


@pytest.mark.parametrize(
    ("spec", "matrix"),
    [
        ("[[0,1],[2,3]]", [[0, 1], [2, 3]]),
        ("0 1; 2 3", [[0, 1], [2, 3]]),
        ("0,1;2,3", [[0, 1], [2, 3]]),
        ("1 -1", [[1, -1]]),
        ("1; -1", [[1], [-1]]),
        ("-1.5e0 .5 +2", [[-1.5, 0.5, 2]]),
        ("[1, -1]", [[1, -1]]),
        ("  0 1 ;\n 2 3 ; ", [[0, 1], [2, 3]]),
        ("7", [[7]]),
    ],
)
def test_inline_matrices(spec, matrix):
    np.testing.assert_array_equal(parse_kernel(spec), np.asarray(matrix, float))


def test_names_are_case_insensitive_and_args_positional_or_named():
    np.testing.assert_array_equal(parse_kernel("Sobel-X"), parse_kernel("sobel-x"))
    np.testing.assert_array_equal(parse_kernel("box:4"), parse_kernel("box:size=4"))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("sobelx", "unknown kernel 'sobelx'; did you mean 'sobel-x'"),
        ("gausian:2", "did you mean 'gaussian'"),
        ("", "empty kernel spec"),
        ("   ", "empty kernel spec"),
        ("1 2; 3", r"ragged rows \(lengths \[1, 2\]\)"),
        ("[[1,2],[3]]", "ragged rows"),
        ("1 x; 2 3", "'x' is not a number"),
        ("nan 1", "NaN or infinite"),
        ("1 inf", "NaN or infinite"),
        ("[[1, NaN]]", "NaN or infinite"),
        ("[[[1]]]", "3 dimensions"),
        ("[]", "empty"),
        ("[[1,2]", "not valid JSON"),
        ("box:0", "whole number ≥ 1"),
        ("box:2.5", "whole number ≥ 1"),
        ("box:5000", "larger than the limit 1025"),
        ("gaussian:-1", "sigma must be > 0"),
        ("gaussian:sigma=400", "larger than the limit"),
        ("gaussian:radius=2", "has no argument 'radius'"),
        ("gaussian:2,size=9,truncate=3", "give size=N or truncate=T, not both"),
        ("gaussian:2,truncate=-1", "truncate must be ≥ 0"),
        ("unsharp:2,1,truncate=inf", "must be finite"),
        ("box:3,4", "too many arguments"),
        ("box:abc", "is not a number"),
        ("sobel-x:3", "takes no arguments"),
        ("diff:order=2,axis=z", "axis must be 'x' or 'y'"),
        ("@", "needs a file name"),
        ("@/nonexistent/k.txt", "no such file"),
        (f"[{','.join(['1'] * (MAX_KERNEL_SIDE + 1))}]", "largest kernel side"),
    ],
)
def test_refused_specs(spec, match):
    with pytest.raises(convtool.KernelError, match=match):
        parse_kernel(spec)


def test_parse_kernel_returns_a_fresh_writable_copy():
    k = parse_kernel("laplacian")
    k[0, 0] = 99
    assert parse_kernel("laplacian")[0, 0] == 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_property_parser_never_crashes(text):
    """Arbitrary text gives a kernel or a KernelError, never another exception."""
    try:
        k = parse_kernel(text)
    except convtool.KernelError:
        return
    assert k.ndim == 2 and k.size >= 1 and np.isfinite(k).all()


def test_spaces_around_a_builtin_name_are_allowed():
    np.testing.assert_array_equal(parse_kernel(" box : 2"), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(parse_kernel("Sobel-X :"), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def test_unknown_argument_shows_the_whole_usage():
    """The example used to be cut at the first comma: 'e.g. gaussian:sigma=S['."""
    with pytest.raises(convtool.KernelError) as info:
        parse_kernel("gaussian:radius=2")
    assert str(info.value) == (
        "kernel 'gaussian' has no argument 'radius'; its arguments are sigma, size, truncate "
        "(e.g. gaussian:sigma=S[,size=N|truncate=T])"
    )
    with pytest.raises(convtool.KernelError, match=r"\(e\.g\. motion:length=L,angle=A\)$"):
        parse_kernel("motion:speed=2")


def test_an_inline_json_object_carries_its_bias():
    k = load_kernel('{"kernel": [[1, -1]], "bias": 0.5}')
    np.testing.assert_array_equal(k.weights, [[1, -1]])
    assert k.bias == 0.5
    assert load_kernel("[[1, -1]]").bias == 0.0
