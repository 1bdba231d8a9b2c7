"""ONNX Runtime backend: CPU, or CUDA with IOBinding so GPU inputs are read in place.

On CUDA every run goes through an IOBinding: host arrays are bound as CPU inputs (ONNX Runtime
uploads them), DeviceBuffers are bound by address, so a DALI GPU output feeds the model with no
copy through host memory. Outputs are bound on the GPU when asked for on the device, else on the
host. The CUDA execution provider gives each session its own compute stream, so two engines run
concurrently; a stream of ours can be passed with ``user_compute_stream`` if a CUDA binding
exists.
"""

import logging
import os

import numpy as np

from dali_trt_ros.engines.base import DeviceBuffer, Engine, TensorInfo
from dali_trt_ros.engines.binding import check_feeds, validate_bindings
from dali_trt_ros.errors import ConfigError, CudaError, ModelError

LOG = logging.getLogger(__name__)

_ORT_TYPES = {
    'tensor(float)': np.float32, 'tensor(float16)': np.float16, 'tensor(double)': np.float64,
    'tensor(int8)': np.int8, 'tensor(uint8)': np.uint8, 'tensor(int16)': np.int16,
    'tensor(uint16)': np.uint16, 'tensor(int32)': np.int32, 'tensor(uint32)': np.uint32,
    'tensor(int64)': np.int64, 'tensor(uint64)': np.uint64, 'tensor(bool)': np.bool_,
}


def numpy_dtype_of_ort_type(type_name):
    """Return the numpy dtype for an ONNX Runtime type string like 'tensor(float)'."""
    try:
        return np.dtype(_ORT_TYPES[type_name])
    except KeyError:
        raise ModelError(f'ONNX Runtime type {type_name!r} is not supported by this package; '
                         f'supported: {sorted(_ORT_TYPES)}') from None


def _tensor_infos(node_args):
    return [TensorInfo(arg.name, tuple(arg.shape), numpy_dtype_of_ort_type(arg.type))
            for arg in node_args]


def execution_providers(providers, device_id, available, user_stream=None, tf32=False):
    """Return the ONNX Runtime provider list for configured providers ('cpu'/'cuda').

    Raises ConfigError if CUDA is asked for but this onnxruntime build lacks it.
    """
    result = []
    for provider in providers:
        if provider == 'cuda':
            if 'CUDAExecutionProvider' not in available:
                raise ConfigError(
                    'providers: cuda requested but this onnxruntime has only '
                    f'{available}; install onnxruntime-gpu matching your CUDA, or use cpu')
            options = {'device_id': str(device_id), 'use_tf32': '1' if tf32 else '0'}
            if user_stream:
                # has_user_compute_stream is implied by user_compute_stream (ORT >= 1.17).
                options['user_compute_stream'] = str(user_stream)
            result.append(('CUDAExecutionProvider', options))
        else:
            result.append('CPUExecutionProvider')
    if 'CPUExecutionProvider' not in result:
        # ONNX Runtime places ops the CUDA provider lacks on the CPU provider.
        result.append('CPUExecutionProvider')
    return result


class OnnxRuntimeEngine(Engine):
    """An ONNX model run by ONNX Runtime on the CPU or CUDA execution provider."""

    def __init__(self, config, session_options=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError('onnxruntime is not installed; pip install onnxruntime (CPU) or '
                             'onnxruntime-gpu (CUDA)') from None
        if not os.path.isfile(config.model):
            raise ModelError(f'model file {config.model!r} not found; run prepare_models or fix '
                             "the 'model' path")
        self._ort = ort
        self._config = config
        self._device_id = config.device_id
        self._on_cuda = 'cuda' in config.providers
        self._own_stream = None
        self._cuda = None
        if session_options is None:
            session_options = ort.SessionOptions()
            if config.cpu_threads:
                session_options.intra_op_num_threads = config.cpu_threads
        providers = execution_providers(config.providers, config.device_id,
                                        ort.get_available_providers(), self._create_stream(),
                                        tf32=config.cuda_tf32)
        try:
            self._session = ort.InferenceSession(config.model, session_options,
                                                 providers=providers)
        except Exception as error:  # ORT raises its own exception types per failure
            self._destroy_stream()
            raise ModelError(f'ONNX Runtime could not load {config.model!r}: {error}') from error
        if self._on_cuda and 'CUDAExecutionProvider' not in self._session.get_providers():
            self._destroy_stream()
            raise ModelError('ONNX Runtime did not enable the CUDA provider (CUDA or cuDNN '
                             'libraries missing?); see the onnxruntime log above')
        self._inputs = _tensor_infos(self._session.get_inputs())
        self._outputs = _tensor_infos(self._session.get_outputs())
        name = os.path.basename(config.model)
        validate_bindings([s.as_tensor_info() for s in config.inputs], self._inputs, 'input', name)
        validate_bindings([s.as_tensor_info() for s in config.outputs], self._outputs, 'output',
                          name)
        self._name = name
        LOG.info('%s on ONNX Runtime %s with %s', name, ort.__version__,
                 self._session.get_providers())

    def _create_stream(self):
        """Create our own CUDA stream for the session where a CUDA binding exists."""
        if not self._on_cuda:
            return None
        from dali_trt_ros.engines.cuda_runtime import cuda_runtime
        try:
            self._cuda = cuda_runtime()
            self._cuda.set_device(self._device_id)
            self._own_stream = self._cuda.stream_create()
        except CudaError as error:
            LOG.info('no usable CUDA runtime (%s); ONNX Runtime uses its own per-session stream',
                     error)
            self._cuda = None
            self._own_stream = None
        return self._own_stream

    def _destroy_stream(self):
        if self._own_stream is not None and self._cuda is not None:
            self._cuda.stream_destroy(self._own_stream)
        self._own_stream = None

    @property
    def providers(self):
        """Return the execution providers the session really uses."""
        return self._session.get_providers()

    @property
    def accepts_device_input(self):
        """Return True on the CUDA provider, where DeviceBuffers are bound by address."""
        return self._on_cuda

    def run(self, feeds, outputs_on_device=False):
        """Run the model once; see Engine.run."""
        if self._session is None:
            raise ModelError(f'{self._name}: engine is closed')
        feeds = check_feeds(feeds, self._inputs, self._name)
        if not self._on_cuda:
            return self._run_on_cpu(feeds, outputs_on_device)
        return self._run_with_binding(feeds, outputs_on_device)

    def _run_on_cpu(self, feeds, outputs_on_device):
        if outputs_on_device or any(isinstance(v, DeviceBuffer) for v in feeds.values()):
            raise ConfigError(f'{self._name}: the CPU provider cannot read or write GPU memory; '
                              "set providers: [cuda] or feed host arrays")
        names = [tensor.name for tensor in self._outputs]
        values = self._session.run(names, feeds)
        return dict(zip(names, values))

    def _wait_for_producers(self, feeds):
        """Make sure GPU inputs written on another stream (e.g. DALI's) are complete."""
        from dali_trt_ros.engines.cuda_runtime import stream_handle
        for value in feeds.values():
            if not isinstance(value, DeviceBuffer):
                continue
            handle = stream_handle(value.stream)
            if handle is not None and self._cuda is not None:
                self._cuda.stream_synchronize(handle)

    def _run_with_binding(self, feeds, outputs_on_device):
        binding = self._session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, DeviceBuffer):
                if value.device_id != self._device_id:
                    raise ConfigError(f'{self._name}: input {name!r} is on GPU '
                                      f'{value.device_id}, the engine on GPU {self._device_id}')
                binding.bind_input(name, 'cuda', self._device_id, value.dtype, list(value.shape),
                                   value.data_ptr)
            else:
                binding.bind_cpu_input(name, value)
        for tensor in self._outputs:
            if outputs_on_device:
                binding.bind_output(tensor.name, 'cuda', self._device_id)
            else:
                binding.bind_output(tensor.name, 'cpu')
        self._wait_for_producers(feeds)
        self._session.run_with_iobinding(binding)
        values = binding.get_outputs()
        result = {}
        for tensor, value in zip(self._outputs, values):
            if outputs_on_device:
                result[tensor.name] = DeviceBuffer(
                    value.data_ptr(), tuple(value.shape()), tensor.dtype, self._device_id,
                    keepalive=value)
            else:
                result[tensor.name] = value.numpy()
        # The DeviceBuffer feeds (and their DALI owners) are referenced until here, i.e. until
        # run_with_iobinding has synchronized.
        del feeds
        return result

    def close(self):
        """Drop the session and our stream."""
        self._session = None
        self._destroy_stream()
