"""ONNX Runtime backend on CPU: real models, real sessions, binding validation at load and run."""

import numpy as np
import pytest

from dali_trt_ros.engines import DeviceBuffer, EngineConfig, TensorInfo, load_engine
from dali_trt_ros.engines.base import format_shape
from dali_trt_ros.engines.binding import check_feeds, shape_mismatch, validate_bindings
from dali_trt_ros.engines.onnxruntime_engine import execution_providers
from sample_model import write_conv_relu_model
from dali_trt_ros.errors import BindingMismatchError, ConfigError, ModelError


def reference_conv_relu(images, weight, bias):
    """Compute the sample model's outputs with numpy in float64, independently of ONNX."""
    batch, _, height, width = images.shape
    padded = np.pad(images.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((batch, weight.shape[0], height, width))
    for dy in range(3):
        for dx in range(3):
            window = padded[:, :, dy:dy + height, dx:dx + width]
            out += np.einsum('bchw,fc->bfhw', window, weight[:, :, dy, dx].astype(np.float64))
    features = np.maximum(out + bias[None, :, None, None], 0.0)
    return features, features.mean(axis=(2, 3))


@pytest.fixture(scope='module')
def static_model(tmp_path_factory):
    return write_conv_relu_model(tmp_path_factory.mktemp('m') / 'static.onnx', batch=1)


@pytest.fixture(scope='module')
def dynamic_model(tmp_path_factory):
    return write_conv_relu_model(tmp_path_factory.mktemp('m') / 'dynamic.onnx', batch='N')


def test_cpu_engine_matches_numpy_reference(static_model):
    path, weight, bias = static_model
    images = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with load_engine({'model': path}) as engine:
        assert [t.name for t in engine.inputs] == ['images']
        assert engine.inputs[0].shape == (1, 3, 8, 8)
        assert engine.inputs[0].dtype == np.float32
        assert [t.describe() for t in engine.outputs] == [
            'features (1, 4, 8, 8) float32', 'pooled (1, 4) float32']
        result = engine.run({'images': images})
    features, pooled = reference_conv_relu(images, weight, bias)
    assert result['features'].dtype == np.float32
    np.testing.assert_allclose(result['features'], features, atol=1e-4)
    np.testing.assert_allclose(result['pooled'], pooled, atol=1e-5)
    assert (result['features'] == 0).any() and (result['features'] > 0).any()


def test_dynamic_batch_runs_several_batch_sizes(dynamic_model):
    path, weight, bias = dynamic_model
    config = {'model': path, 'inputs': [{'name': 'images', 'shape': [-1, 3, 8, 8]}]}
    with load_engine(config) as engine:
        assert engine.inputs[0].shape == ('N', 3, 8, 8)
        assert not engine.inputs[0].is_static
        for batch in (1, 3):
            images = np.random.default_rng(batch).random((batch, 3, 8, 8), np.float32)
            result = engine.run({'images': images})
            np.testing.assert_allclose(result['pooled'],
                                       reference_conv_relu(images, weight, bias)[1], atol=1e-5)


def test_non_contiguous_host_feed_is_accepted(static_model):
    path, weight, bias = static_model
    nhwc = np.random.default_rng(2).random((1, 8, 8, 3), np.float32)
    images = nhwc.transpose(0, 3, 1, 2)
    assert not images.flags.c_contiguous
    with load_engine({'model': path}) as engine:
        result = engine.run({'images': images})
    np.testing.assert_allclose(result['pooled'], reference_conv_relu(images, weight, bias)[1],
                               atol=1e-5)


def test_wrong_input_name_lists_what_the_model_has(static_model):
    config = {'model': static_model[0], 'inputs': [{'name': 'image', 'shape': [1, 3, 8, 8]}]}
    with pytest.raises(BindingMismatchError) as caught:
        load_engine(config)
    message = str(caught.value)
    assert "no input named 'image'" in message
    assert 'images (1, 3, 8, 8) float32' in message


def test_wrong_shape_and_dtype_are_reported(static_model):
    config = {'model': static_model[0],
              'inputs': [{'name': 'images', 'shape': [1, 3, 300, 300], 'dtype': 'float16'}],
              'outputs': [{'name': 'pooled', 'shape': [1, 4]}, {'name': 'boxes'}]}
    with pytest.raises(BindingMismatchError) as caught:
        load_engine(config)
    message = str(caught.value)
    assert 'dimension 2 is 300, the model has 8' in message
    assert 'dtype float16 != float32' in message
    config['inputs'] = []
    with pytest.raises(BindingMismatchError) as caught:
        load_engine(config)
    assert "no output named 'boxes'" in str(caught.value)
    assert 'features (1, 4, 8, 8) float32; pooled (1, 4) float32' in str(caught.value)


def test_run_rejects_bad_feeds(static_model):
    with load_engine({'model': static_model[0]}) as engine:
        with pytest.raises(BindingMismatchError, match='missing'):
            engine.run({})
        with pytest.raises(BindingMismatchError, match=r'unknown \[.extra.\]'):
            engine.run({'images': np.zeros((1, 3, 8, 8), np.float32),
                        'extra': np.zeros(1, np.float32)})
        with pytest.raises(BindingMismatchError, match='dimension 3 is 8, the model has 9|'
                                                       'has shape'):
            engine.run({'images': np.zeros((1, 3, 8, 9), np.float32)})
        with pytest.raises(BindingMismatchError, match='float64, the engine takes float32'):
            engine.run({'images': np.zeros((1, 3, 8, 8))})
        with pytest.raises(BindingMismatchError, match='numpy array or a DeviceBuffer'):
            engine.run({'images': [[0.0]]})


def test_cpu_provider_refuses_device_memory_clearly(static_model):
    buffer = DeviceBuffer(0x1000, (1, 3, 8, 8), np.float32)
    with load_engine({'model': static_model[0]}) as engine:
        with pytest.raises(ConfigError, match='CPU provider cannot'):
            engine.run({'images': buffer})
        with pytest.raises(ConfigError, match='CPU provider cannot'):
            engine.run({'images': np.zeros((1, 3, 8, 8), np.float32)}, outputs_on_device=True)


def test_closed_engine_refuses_to_run(static_model):
    engine = load_engine({'model': static_model[0]})
    engine.close()
    with pytest.raises(ModelError, match='closed'):
        engine.run({'images': np.zeros((1, 3, 8, 8), np.float32)})


def test_missing_model_and_unavailable_cuda_are_clear_errors(static_model, tmp_path):
    with pytest.raises(ModelError, match='not found'):
        load_engine({'model': str(tmp_path / 'absent.onnx')})
    with pytest.raises(ConfigError, match='cuda requested'):
        execution_providers(('cuda',), 0, ['CPUExecutionProvider'])
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'not a model')
    with pytest.raises(ModelError, match='could not load'):
        load_engine({'model': str(corrupt)})


def test_cuda_provider_list_has_device_stream_and_cpu_fallback():
    providers = execution_providers(('cuda',), 1, ['CUDAExecutionProvider',
                                                   'CPUExecutionProvider'], user_stream=1234)
    assert providers == [('CUDAExecutionProvider',
                          {'device_id': '1', 'use_tf32': '0', 'user_compute_stream': '1234'}),
                         'CPUExecutionProvider']
    assert execution_providers(('cpu',), 0, ['CPUExecutionProvider']) == ['CPUExecutionProvider']


def test_shape_rules():
    assert shape_mismatch((1, 3, 8, 8), ('N', 3, 8, 8)) == ''
    assert shape_mismatch((-1, 3, 8, 8), (1, 3, 8, 8)) == ''
    assert shape_mismatch((None, 3), (2, 3)) == ''
    assert shape_mismatch((1, 3), (1, 3, 1)) == 'rank 2 != 3'
    assert shape_mismatch((2, 3), (1, 3)) == 'dimension 0 is 2, the model has 1'
    assert format_shape(('N', -1, None, 3)) == '(N, ?, ?, 3)'


def test_check_feeds_accepts_device_buffers_by_shape_and_dtype():
    inputs = [TensorInfo('x', (-1, 4), np.float32)]
    buffer = DeviceBuffer(0x2000, (2, 4), 'float32')
    assert check_feeds({'x': buffer}, inputs, 'm')['x'] is buffer
    with pytest.raises(BindingMismatchError, match='float16, the engine takes float32'):
        check_feeds({'x': DeviceBuffer(0x2000, (2, 4), np.float16)}, inputs, 'm')
    validate_bindings([], inputs, 'input', 'm')  # nothing configured: nothing to check


@pytest.mark.parametrize('threads', [1, 3])
def test_engine_config_reaches_the_session(static_model, threads):
    config = EngineConfig.from_dict({'model': static_model[0], 'cpu_threads': threads})
    with load_engine(config) as engine:
        assert engine.providers == ['CPUExecutionProvider']
        # Read back from the live session: the setting took effect, not just got parsed.
        assert engine._session.get_session_options().intra_op_num_threads == threads


def _cuda_provider_available():
    import onnxruntime
    return 'CUDAExecutionProvider' in onnxruntime.get_available_providers()


@pytest.mark.skipif(not _cuda_provider_available(),
                    reason='no CUDA execution provider (CPU-only onnxruntime, no GPU): the CUDA '
                           'and zero-copy DALI paths are verified by tools/verify_engines_gpu.py')
def test_cuda_paths_match_cpu(static_model):
    from dali_trt_ros.tools.verify_engines_gpu import verify_model
    rows, ok = verify_model(static_model[0], runs=3, atol=1e-3, rtol=1e-3)
    assert ok, rows


class _CudaArrayInterfaceOnly:
    """An object that only describes GPU memory (what CuPy/DALI expose), for parsing checks."""

    def __init__(self, shape, typestr, strides=None, stream=None):
        self.__cuda_array_interface__ = {'shape': shape, 'typestr': typestr, 'strides': strides,
                                         'data': (0xABC000, False), 'version': 3,
                                         'stream': stream}


def test_device_buffer_from_cuda_array_interface():
    owner = _CudaArrayInterfaceOnly((2, 3), '<f4', stream=1)
    buffer = DeviceBuffer.from_cuda_array(owner)
    assert (buffer.data_ptr, buffer.shape, buffer.dtype, buffer.stream) == \
        (0xABC000, (2, 3), np.float32, 1)
    assert buffer.keepalive is owner and buffer.nbytes == 24
    assert DeviceBuffer.from_cuda_array(_CudaArrayInterfaceOnly((2, 3), '<f4', (12, 4))).shape \
        == (2, 3)
    with pytest.raises(BindingMismatchError, match='not C-contiguous'):
        DeviceBuffer.from_cuda_array(_CudaArrayInterfaceOnly((2, 3), '<f4', (4, 8)))
    with pytest.raises(TypeError, match='__cuda_array_interface__'):
        DeviceBuffer.from_cuda_array(np.zeros(3))
