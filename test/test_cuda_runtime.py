"""The one CUDA binding (libcudart through ctypes): failures are CudaError, not model errors."""

import types

import pytest

from dali_trt_ros.engines.cuda_runtime import CudaRuntime, CudaUnavailableError, cuda_runtime
from dali_trt_ros.errors import CudaError, ModelError


def fake_libcudart(malloc_status=0):
    """A stand-in for the loaded library: each entry point returns a cudaError_t."""
    def malloc(pointer, nbytes):
        pointer._obj.value = 4096 if malloc_status == 0 else None
        return malloc_status
    names = {2: b'cudaErrorMemoryAllocation'}
    texts = {2: b'out of memory'}
    return types.SimpleNamespace(
        _name='libcudart.so.12', cudaMalloc=malloc, cudaFree=lambda pointer: 0,
        cudaGetErrorName=lambda code: names.get(code, b'cudaErrorUnknown'),
        cudaGetErrorString=lambda code: texts.get(code, b'unknown error'))


def test_cuda_failures_raise_cuda_error_with_cudas_text():
    assert CudaRuntime(fake_libcudart()).malloc(16) == 4096
    with pytest.raises(CudaError) as caught:
        CudaRuntime(fake_libcudart(malloc_status=2)).malloc(1 << 40)
    assert str(caught.value) == ('CUDA cudaMalloc failed: cudaErrorMemoryAllocation (2): out of '
                                 'memory')
    # Diagnostics count these under their own reason, not as model errors.
    assert not isinstance(caught.value, ModelError)
    assert caught.value.reason == 'cuda_error'


def test_missing_libcudart_says_where_it_comes_from(monkeypatch, tmp_path):
    from dali_trt_ros.engines import cuda_runtime as module
    monkeypatch.setenv('DALI_TRT_ROS_LIBCUDART', str(tmp_path / 'libcudart.so.12'))
    monkeypatch.setattr(module, '_runtime', None)
    with pytest.raises(CudaUnavailableError, match='on Jetson it comes with JetPack') as caught:
        cuda_runtime()
    assert isinstance(caught.value, CudaError) and caught.value.reason == 'cuda_unavailable'
