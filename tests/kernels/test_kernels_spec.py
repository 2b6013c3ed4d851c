"""The kernel library: exact built-in matrices, invariants, and the spec parser."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.ndimage._filters import _gaussian_kernel1d

import convtool
from convtool.kernels.builtins import BUILTINS
from convtool.kernels.files import format_kernel
from convtool.kernels.spec import load_kernel, parse_kernel
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel, is_zero_sum

EXACT = {
    "identity": [[1]],
    "edge": [[1, -1]],
    "edge-x": [[1, -1]],
    "edge-y": [[1], [-1]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "roberts-x": [[1, 0], [0, -1]],
    "roberts-y": [[0, 1], [-1, 0]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "box": np.full((3, 3), 1 / 9),
    "box:2": np.full((2, 2), 0.25),
    "box:5": np.full((5, 5), 1 / 25),
    "diff:1": [[1, -1]],
    "diff:2": [[1, -2, 1]],
    "diff:order=3": [[1, -3, 3, -1]],
    "diff:order=2,axis=y": [[1], [-2], [1]],
    "directional:0": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "directional:angle=90": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "directional:180": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "motion:3": [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]],
    "motion:length=3,angle=90": [[0, 1 / 3, 0], [0, 1 / 3, 0], [0, 1 / 3, 0]],
    "motion:5,45": np.fliplr(np.eye(5)) / 5,
    "motion:5,135": np.eye(5) / 5,
    "motion:4,0": np.pad([[0.2] * 5], ((2, 2), (0, 0))),
}


@pytest.mark.parametrize(("spec", "matrix"), list(EXACT.items()))
def test_exact_matrix(spec, matrix):
    np.testing.assert_allclose(parse_kernel(spec), np.asarray(matrix, float), rtol=0, atol=1e-15)


def gaussian_reference(sigma: float, n: int) -> np.ndarray:
    g = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            y, x = i - (n - 1) / 2, j - (n - 1) / 2
            g[i, j] = math.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return g / g.sum()


@pytest.mark.parametrize(
    ("spec", "sigma", "n"),
    [
        ("gaussian", 1.0, 9),
        ("gaussian:2", 2.0, 17),
        ("gaussian:0.6", 0.6, 5),
        ("gaussian:sigma=2,size=9", 2.0, 9),
        ("gaussian:sigma=2,truncate=3", 2.0, 13),
        ("gaussian:1.1", 1.1, 9),
        ("gaussian:0.5,4", 0.5, 4),
        ("gaussian:size=6,sigma=1.2", 1.2, 6),
    ],
)
def test_gaussian(spec, sigma, n):
    """Sampled at i − (N−1)/2, symmetric also for even N, N = 2·int(4σ + 0.5)+1 by default (0.6
    gives 5, where 2⌈4σ⌉+1 is 7), sum 1."""
    k = parse_kernel(spec)
    np.testing.assert_allclose(k, gaussian_reference(sigma, n), rtol=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    np.testing.assert_allclose(k, k.T)


def test_log_has_negative_centre_and_sums_to_zero():
    k = parse_kernel("log:sigma=1.4")
    assert k.shape == (13, 13)
    assert k[6, 6] == k.min() < 0
    assert abs(k.sum()) < 1e-14
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])


def test_unsharp_is_identity_plus_amount_times_detail():
    g = parse_kernel("gaussian:1")
    expected = -1.5 * g
    expected[4, 4] += 2.5
    np.testing.assert_allclose(parse_kernel("unsharp:sigma=1,amount=1.5"), expected)


@pytest.mark.parametrize("name", list(BUILTINS))
def test_invariants(name):
    """Blurs sum to 1; derivative kernels and Laplacians sum to 0; nothing is non-finite."""
    k = parse_kernel(name)
    assert np.isfinite(k).all()
    if name in {"box", "gaussian", "motion", "unsharp", "sharpen", "identity", "emboss"}:
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
    else:
        assert is_zero_sum(k) or abs(k.sum()) < 1e-12


def test_zero_sum_rule_ignores_rounding_residue():
    """|ΣK| ≤ 1e-12·Σ|K| counts as zero, so --normalize never divides by a residue."""
    assert is_zero_sum(np.array([[0.1, 0.2, -0.3]]))
    assert not is_zero_sum(np.array([[1.0, -0.999]]))
    k = Kernel(np.array([[1.0, -1.0]]))
    assert k.normalized() is k
    np.testing.assert_allclose(Kernel(np.array([[1.0, 3.0]])).normalized().weights, [[0.25, 0.75]])


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


def test_kernel_files(tmp_path):
    (tmp_path / "k.txt").write_text("# a comment\n# bias: 0.25\n1 2 3\n4, 5, 6  # trailing\n")
    k = load_kernel(f"@{tmp_path / 'k.txt'}")
    np.testing.assert_array_equal(k.weights, [[1, 2, 3], [4, 5, 6]])
    assert k.bias == 0.25
    (tmp_path / "k.csv").write_text("1,-1\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.csv'}"), [[1, -1]])
    np.save(tmp_path / "k.npy", np.array([[0.5, 1.5]]))
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.npy'}"), [[0.5, 1.5]])
    (tmp_path / "k.json").write_text(json.dumps({"kernel": [[1, 0], [0, -1]], "bias": -0.5}))
    k = load_kernel(f"@{tmp_path / 'k.json'}")
    np.testing.assert_array_equal(k.weights, [[1, 0], [0, -1]])
    assert k.bias == -0.5
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'k.json'}"), [[1, 0], [0, -1]])


@pytest.mark.parametrize("spec", ["sobel-x", "gaussian:1.3,5", "log:1", "motion:7,30"])
def test_format_round_trips_through_file_and_loadtxt(tmp_path, spec):
    """``convtool kernels SPEC`` output is read back by -k @FILE and by numpy.loadtxt."""
    original = Kernel(parse_kernel(spec), spec, bias=0.125)
    path = tmp_path / "k.txt"
    path.write_text(format_kernel(original))
    back = load_kernel(f"@{path}")
    np.testing.assert_array_equal(back.weights, original.weights)
    assert back.bias == 0.125
    np.testing.assert_array_equal(np.loadtxt(path, ndmin=2), original.weights)


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


def test_refused_files(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(convtool.KernelError, match="not a text file"):
        parse_kernel(f"@{tmp_path / 'bad.txt'}")
    np.save(tmp_path / "k3.npy", np.zeros((2, 2, 2)))
    with pytest.raises(convtool.KernelError, match="3 dimensions"):
        parse_kernel(f"@{tmp_path / 'k3.npy'}")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(convtool.KernelError, match="npy"):
        parse_kernel(f"@{tmp_path / 'obj.npy'}")
    with pytest.raises(convtool.KernelError, match="is a directory"):
        parse_kernel(f"@{tmp_path}")
    (tmp_path / "k.json").write_text('{"weights": [[1]]}')
    with pytest.raises(convtool.KernelError, match='"kernel" key'):
        parse_kernel(f"@{tmp_path / 'k.json'}")
    (tmp_path / "b.txt").write_text("# bias: nan\n1\n")
    with pytest.raises(convtool.KernelError, match="must be finite"):
        parse_kernel(f"@{tmp_path / 'b.txt'}")


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


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=4,
    )
)
def test_property_text_matrix_round_trip(rows):
    spec = "; ".join(" ".join(repr(v) for v in row) for row in rows)
    np.testing.assert_array_equal(parse_kernel(spec), np.array(rows))


# --- regressions found by trying unusual specs ---------------------------------------------


def test_spec_split_over_lines_prints_as_a_file_that_reads_back(tmp_path):
    """A name holding a new line used to end the '# kernel:' comment and break the file."""
    k = load_kernel("gaussian:1,\nsize=3")
    text = format_kernel(k)
    assert text.splitlines()[:2] == ["# kernel: gaussian:1, size=3", "# size: 3x3"]
    (tmp_path / "g.txt").write_text(text)
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'g.txt'}"), k.weights)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "g.txt"), k.weights)


def test_spaces_around_a_builtin_name_are_allowed():
    np.testing.assert_array_equal(parse_kernel(" box : 2"), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(parse_kernel("Sobel-X :"), EXACT["sobel-x"])


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


@pytest.mark.parametrize("name", ["gaussian", "log"])
def test_default_size_limit_is_stated_for_sigma(name):
    """sigma 128.125 needs 2·int(513)+1 = 1027 > 1025: refused for its sigma, not a size never
    given (it was 171 while the size was 2⌈3σ⌉+1)."""
    assert parse_kernel(f"{name}:128.12").shape == (MAX_KERNEL_SIDE, MAX_KERNEL_SIDE)
    with pytest.raises(convtool.KernelError) as info:
        parse_kernel(f"{name}:128.125")
    assert str(info.value) == (
        f"{name}: sigma 128.125 needs a kernel larger than the limit 1025 (its side is "
        "2·int(4·σ + 0.5) + 1); choose a sigma below 128.125, a smaller truncate=T, or give "
        "size=N"
    )
    assert parse_kernel(f"{name}:sigma=171,truncate=2").shape == (685, 685)
    assert parse_kernel(f"{name}:sigma=171,size=5").shape == (5, 5)


@pytest.mark.parametrize(
    "weights",
    [np.array([[1 + 2j, 0]]), [[1j, 2]], np.ones((2, 2), dtype=np.complex64)],
)
def test_complex_weights_are_refused_not_truncated(weights):
    """np.array(complex, float64) drops the imaginary part (with only a ComplexWarning)."""
    with pytest.raises(convtool.KernelError, match="has complex entries; a kernel needs real"):
        Kernel(weights)
    with pytest.raises(convtool.KernelError, match="complex"):
        convtool.correlate(np.ones((4, 4)), weights)


@pytest.mark.parametrize(
    "weights", [[[1, 2], [3]], [(1, 2), (3,)], [np.array([1.0, 2.0]), np.array([3.0])]]
)
def test_ragged_python_rows_are_named_ragged(weights):
    with pytest.raises(convtool.KernelError, match=r"ragged rows \(lengths \[1, 2\]\)"):
        Kernel(weights)


def test_semicolons_on_several_lines_of_a_file_are_refused(tmp_path):
    """A ';'-separated CSV (Excel in many locales) used to become a silent column."""
    (tmp_path / "k.csv").write_text("1;2;3\n4;5;6\n")
    with pytest.raises(convtool.KernelError, match=r"line 1 holds ';' but each line"):
        parse_kernel(f"@{tmp_path / 'k.csv'}")
    # one line in the inline form, and ';' inside comments, are fine
    (tmp_path / "one.txt").write_text("# rows; columns\n1 2; 3 4  # two rows; two columns\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'one.txt'}"), [[1, 2], [3, 4]])
    (tmp_path / "two.txt").write_text("# a; b\n1 2\n3 4 # c; d\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'two.txt'}"), [[1, 2], [3, 4]])
    # a ';' in a comment used to start a row: '# weights; 1 2' added the row [1, 2]
    (tmp_path / "c.txt").write_text("# weights; 1 2\n5 6\n")
    np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / 'c.txt'}"), [[5, 6]])
    np.testing.assert_array_equal(parse_kernel("1 2 # then; 3 4"), [[1, 2]])


def test_utf16_kernel_files_are_read(tmp_path):
    """What Windows PowerShell's '>' writes: UTF-16 with a byte-order mark, CRLF."""
    for encoding in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.txt"
        bom = "\ufeff".encode(encoding)
        path.write_bytes(bom + "# bias: 0.5\r\n1 -1\r\n2 0.25\r\n".encode(encoding))
        k = load_kernel(f"@{path}")
        np.testing.assert_array_equal(k.weights, [[1, -1], [2, 0.25]])
        assert k.bias == 0.5


def test_a_tilde_after_the_at_sign_is_the_home_directory(tmp_path, monkeypatch):
    """No shell expands '~' in '-k @~/k.txt'; convtool does."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "k.txt").write_text("1 -1\n")
    np.testing.assert_array_equal(parse_kernel("@~/k.txt"), [[1, -1]])
    with pytest.raises(convtool.KernelError, match="no such file"):
        parse_kernel("@~nosuchuser-convtool/k.txt")


def test_a_numpy_bias_is_written_as_a_number_that_reads_back(tmp_path):
    """bias=np.float32(0.1) used to be written '# bias: np.float32(0.1)', a file -k refused."""
    k = Kernel(np.array([[1.0, -1.0]]), bias=np.float32(0.1))
    assert type(k.bias) is float and k.bias == float(np.float32(0.1))
    (tmp_path / "k.txt").write_text(format_kernel(k))
    assert load_kernel(f"@{tmp_path / 'k.txt'}").bias == k.bias


@pytest.mark.parametrize("bias", ["0.5", None, True, 1j])
def test_a_bias_that_is_not_a_real_number_is_refused(bias):
    with pytest.raises(convtool.KernelError, match="is not a real number"):
        Kernel(np.ones((1, 1)), bias=bias)


def test_an_inline_json_object_carries_its_bias():
    k = load_kernel('{"kernel": [[1, -1]], "bias": 0.5}')
    np.testing.assert_array_equal(k.weights, [[1, -1]])
    assert k.bias == 0.5
    assert load_kernel("[[1, -1]]").bias == 0.0


def test_a_kernel_file_named_without_the_at_sign_is_pointed_to_it(tmp_path, monkeypatch):
    """'-k ok.csv' used to say "'ok.csv' is not a number"; a file is named with '@'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.csv").write_text("1 0\n0 1\n")
    (tmp_path / "mine").write_text("1 -1\n")
    for spec in ["ok.csv", "mine", "missing.npy", "k/x.json", "K.TXT"]:
        with pytest.raises(convtool.KernelError) as info:
            parse_kernel(spec)
        assert str(info.value) == (
            f"kernel {spec!r}: a kernel file is named with '@'; did you mean -k @{spec}?"
        )
    np.testing.assert_array_equal(parse_kernel("@ok.csv"), np.eye(2))
    # neither a file nor a file's name: the error is about the spec itself
    with pytest.raises(convtool.KernelError, match="'x' is not a number"):
        parse_kernel("1 x; 2 3.txt")
    with pytest.raises(convtool.KernelError, match="did you mean 'sobel-x'"):
        parse_kernel("sobelx")


@pytest.mark.parametrize("sigma", [0.5, 0.6, 1.1, 2, 2.375, 5])
def test_gaussian_weights_are_scipys(sigma):
    """scipy.ndimage.gaussian_filter's kernel (radius int(4σ + 0.5)) per axis: the default
    was 2⌈3σ⌉+1, up to 0.42 grey levels away at σ = 5."""
    g1 = _gaussian_kernel1d(sigma, 0, int(4 * sigma + 0.5))
    np.testing.assert_allclose(parse_kernel(f"gaussian:{sigma}"), np.outer(g1, g1), atol=1e-16)
    g1 = _gaussian_kernel1d(sigma, 0, int(2.5 * sigma + 0.5))
    np.testing.assert_allclose(
        parse_kernel(f"gaussian:sigma={sigma},truncate=2.5"), np.outer(g1, g1), atol=1e-16
    )


@pytest.mark.parametrize("sigma", [0.5, 0.6, 2, 5])
def test_gaussian_filters_as_scipy_gaussian_filter(sigma):
    """The whole array, borders included, odd and non-square, smaller than the kernel at σ 5."""
    x = np.random.default_rng(7).random((23, 34))
    np.testing.assert_allclose(
        convtool.correlate(x, f"gaussian:{sigma}", border="reflect"),
        ndimage.gaussian_filter(x, sigma, mode="reflect"),
        rtol=0,
        atol=1e-14,
    )
    np.testing.assert_allclose(
        convtool.correlate(x, f"gaussian:sigma={sigma},truncate=3", border="mirror"),
        ndimage.gaussian_filter(x, sigma, mode="mirror", truncate=3),
        rtol=0,
        atol=1e-14,
    )


def test_log_and_unsharp_take_gaussians_size():
    for spec, n in [("log:2", 17), ("log:sigma=2,truncate=3", 13), ("unsharp:0.6", 5)]:
        assert parse_kernel(spec).shape == (n, n), spec
    g = parse_kernel("gaussian:sigma=1.5,truncate=2")
    expected = -2 * g
    expected[3, 3] += 3
    np.testing.assert_allclose(parse_kernel("unsharp:1.5,2,truncate=2"), expected)
