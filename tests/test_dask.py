"""correlate_dask: map_overlap with the border mode at the true image edges only."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import convtool

import references
from conftest import assert_close, distinct_kernel, loopback_cluster, random_image

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]
ALL_MODES = [*MODES, "valid"]


def compute(array):
    with dask.config.set(scheduler="sync"):
        return array.compute()


@pytest.mark.parametrize("chunks", [2, 3, 100])
@pytest.mark.parametrize("ksize", [(1, 1), (2, 2), (3, 3), (4, 5), (6, 3), (7, 7)])
@pytest.mark.parametrize("mode", ALL_MODES)
def test_equals_in_memory_correlate(mode, ksize, chunks):
    """Every mode, odd/even/non-square kernels, chunks smaller than the kernel and larger."""
    x = random_image((7, 8, 3), np.float32, seed=chunks)
    k = distinct_kernel(*ksize, seed=2)
    lazy = convtool.correlate_dask(da.from_array(x, chunks=(chunks, chunks + 1, 2)), k,
                                   border=mode, cval=0.25)  # fmt: skip
    got = compute(lazy)
    whole = convtool.correlate(x, k, border=mode, cval=0.25)
    assert lazy.shape == whole.shape and lazy.dtype == got.dtype == whole.dtype
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-6 * np.abs(k).sum() * np.abs(x).max())
    assert_close(got, references.scipy_correlate(x, k, mode, 0.25), k, x)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_chunks_of_one_pixel(mode):
    """Chunks of 1 × 1: halos from several neighbours, merged where the halo needs it."""
    x = random_image((5, 6), np.float64, seed=13)
    k = distinct_kernel(3, 2, seed=14)
    got = compute(convtool.correlate_dask(da.from_array(x, chunks=1), k, border=mode, cval=2.0))
    assert_close(got, references.scipy_correlate(x, k, mode, 2.0), k, x)


@pytest.mark.parametrize("ksize", [(9, 9), (12, 3), (2, 11)])
@pytest.mark.parametrize("mode", MODES)
def test_kernels_larger_than_the_image(mode, ksize):
    """The extension at the true edges repeats the border mode as often as the kernel needs."""
    x = random_image((5, 4), np.float64, seed=3)
    k = distinct_kernel(*ksize, seed=4)
    got = compute(convtool.correlate_dask(da.from_array(x, chunks=2), k, border=mode, cval=3.0))
    assert got.dtype == np.float64
    assert_close(got, references.scipy_correlate(x, k, mode, 3.0), k, x)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.bool_])
def test_dtypes_as_correlate_takes_them(dtype):
    """Integer images keep their values; a constant cval they cannot hold is not rounded."""
    x = random_image((12, 10), np.uint16, seed=5).astype(dtype)
    k = distinct_kernel(3, 2, seed=6)
    got = compute(convtool.correlate_dask(da.from_array(x, chunks=4), k, border="constant",
                                          cval=0.5))  # fmt: skip
    whole = convtool.correlate(x, k, border="constant", cval=0.5)
    assert got.dtype == whole.dtype
    assert_close(got, whole, k, x.astype(np.float64))


def test_chunks_along_channels_too():
    x = random_image((16, 12, 4), np.float32, seed=7)
    k = distinct_kernel(3, 3, seed=8)
    got = compute(convtool.correlate_dask(da.from_array(x, chunks=(5, 5, 1)), k, border="wrap"))
    assert_close(got, convtool.correlate(x, k, border="wrap"), k, x)


def test_chunks_kept_where_they_hold_the_halo():
    """Output chunks are the input's; chunks too small for the halo are merged."""
    x = da.zeros((100, 90, 3), chunks=(25, 30, 3), dtype=np.float32)
    assert convtool.correlate_dask(x, np.ones((5, 4))).chunks == x.chunks
    valid = convtool.correlate_dask(x, np.ones((5, 4)), border="valid")
    assert valid.shape == (96, 87, 3)
    assert valid.chunks[0] == (23, 25, 25, 23)
    small = convtool.correlate_dask(da.zeros((40, 40), chunks=2), np.ones((7, 7)))
    assert sum(small.chunks[0]) == 40 and len(small.chunks[0]) <= 40 // 7 + 1
    assert min(small.chunks[0]) >= 7 - 7 // 2


def test_numpy_input_and_spec_strings():
    x = random_image((30, 20), np.float32, seed=9)
    got = compute(convtool.correlate_dask(x, "gaussian:1.5", border="mirror"))
    np.testing.assert_allclose(got, convtool.correlate(x, "gaussian:1.5", border="mirror"),
                               atol=1e-6)  # fmt: skip


def test_zarr_store_in_zarr_store_out(tmp_path):
    """A Zarr array as the source, the result stored to Zarr chunk by chunk."""
    zarr = pytest.importorskip("zarr")
    x = random_image((64, 48, 3), np.uint8, seed=10)
    source = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=x.shape, chunks=(16, 16, 3),
                             dtype=x.dtype)  # fmt: skip
    source[:] = x
    result = convtool.correlate_dask(da.from_zarr(source), "sobel-x", border="nearest")
    with dask.config.set(scheduler="threads"):
        result.to_zarr(str(tmp_path / "out.zarr"))
    got = np.asarray(zarr.open_array(tmp_path / "out.zarr", mode="r")[:])
    np.testing.assert_allclose(got, convtool.correlate(x, "sobel-x", border="nearest"), atol=1e-4)


def test_errors():
    with pytest.raises(convtool.KernelError, match="larger than the 3x3 image"):
        convtool.correlate_dask(da.zeros((3, 3), chunks=2), np.ones((4, 1)), border="valid")
    with pytest.raises(convtool.UsageError, match="unknown border"):
        convtool.correlate_dask(da.zeros((3, 3), chunks=2), "box:3", border="same")
    with pytest.raises(convtool.ImageError, match="4 dimensions"):
        convtool.correlate_dask(da.zeros((3, 3, 3, 3), chunks=2), "box:3")


def test_import_convtool_does_not_import_dask():
    """Without asking for Dask, nothing of it is loaded (the base install has no Dask)."""
    code = (
        "import sys, convtool, convtool.cli, convtool.stream, convtool.dask;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'zarr')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def cluster_client():
    """A two-worker cluster on the loopback interface, started and closed by the test."""
    distributed = pytest.importorskip("distributed")
    with loopback_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def test_on_a_local_cluster(cluster_client):
    """The same result computed by two workers, blocks spread between them."""
    x = random_image((150, 120, 3), np.float32, seed=11)
    k = distinct_kernel(6, 5, seed=12)
    lazy = convtool.correlate_dask(da.from_array(x, chunks=(40, 50, 3)), k, border="wrap")
    got = cluster_client.compute(lazy).result()
    assert_close(got, convtool.correlate(x, k, border="wrap"), k, x)
    assert len(cluster_client.scheduler_info()["workers"]) == 2
