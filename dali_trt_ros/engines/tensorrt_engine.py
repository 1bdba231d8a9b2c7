"""TensorRT backend (8.5 .. 10.x): build from ONNX, cache, and run with execute_async_v3.

Only the calls into TensorRT live here; what to build (build_plan), when a cached engine may be
reused (engine_cache), binding checks (binding) and calibration data (calibration) are plain
functions tested without TensorRT. Uses the name-based I/O API that TensorRT 8.5 introduced
(``num_io_tensors``, ``get_tensor_name``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) and nothing older, so one code path serves JetPack 5 (8.5) to 10.x.

NOTE: TensorRT is not installable on the machines this was written on; none of the code in this
module has run against TensorRT yet (see docs/engines.md).
"""

import ctypes
import logging
import os

import numpy as np

from dali_trt_ros.engines.base import DeviceBuffer, Engine, TensorInfo
from dali_trt_ros.engines.binding import check_feeds, validate_bindings
from dali_trt_ros.engines.build_plan import DeviceFacts, parse_version, plan_build
from dali_trt_ros.engines.calibration import (calibration_batches, calibration_data_sha256,
                                              list_calibration_images, preprocessor_batch_fn)
from dali_trt_ros.engines.cuda_runtime import (DEVICE_TO_HOST, HOST_TO_DEVICE, cuda_runtime,
                                               stream_handle)
from dali_trt_ros.engines.dynamic_ranges import load_dynamic_ranges, unmatched_ranges
from dali_trt_ros.engines.engine_cache import (check_cached_engine, default_engine_path,
                                               file_sha256, make_cache_key, store_engine,
                                               write_atomically)
from dali_trt_ros.engines.onnx_model import read_model_io
from dali_trt_ros.errors import ConfigError, EngineCacheError, ModelError

LOG = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'dali_trt_ros', 'engines')


def import_tensorrt():
    """Import TensorRT or raise ModelError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError:
        raise ModelError('TensorRT (python module tensorrt) is not installed: on Jetson it comes '
                         'with JetPack (python3-libnvinfer); on x86 pip install tensorrt. Or set '
                         'backend: onnxruntime') from None
    return trt


class _Logger:
    """A TensorRT logger that forwards to Python logging."""

    def __new__(cls, trt):
        class Forwarder(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, message):
                levels = {trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
                          trt.ILogger.Severity.ERROR: logging.ERROR,
                          trt.ILogger.Severity.WARNING: logging.WARNING,
                          trt.ILogger.Severity.INFO: logging.DEBUG}
                LOG.log(levels.get(severity, logging.DEBUG), 'TensorRT: %s', message)
        return Forwarder()


def load_plugins(trt, logger, plugin_paths):
    """Register TensorRT's built-in plugins and load plugin libraries."""
    trt.init_libnvinfer_plugins(logger, '')
    registry = trt.get_plugin_registry()
    for path in plugin_paths:
        if not os.path.isfile(path):
            raise ConfigError(f'plugin library {path!r} not found')
        if hasattr(registry, 'load_library'):  # TensorRT 8.6+
            if registry.load_library(path) is None:
                raise ModelError(f'TensorRT could not load plugin library {path!r}')
        else:  # 8.5: the library registers its creators when loaded into the process
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        LOG.info('loaded TensorRT plugin library %s', path)


def device_facts(trt, builder, cuda, device_id):
    """Collect the DeviceFacts the build plan and cache key need."""
    name, capability = cuda.device_properties(device_id)
    return DeviceFacts(tensorrt_version=trt.__version__, device_name=name,
                       compute_capability=capability,
                       num_dla_cores=int(getattr(builder, 'num_DLA_cores', 0)),
                       fast_fp16=bool(getattr(builder, 'platform_has_fast_fp16', True)),
                       fast_int8=bool(getattr(builder, 'platform_has_fast_int8', True)))


def make_entropy_calibrator(trt, batches, batch_size, cache_path, cuda, data_sha256=''):
    """Return an IInt8EntropyCalibrator2 feeding ``batches`` (host arrays) to TensorRT.

    A calibration cache is reused only if its ``.sha256`` record matches ``data_sha256``.
    """
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._pointer, self._capacity = None, 0
            self._stream = cuda.stream_create()

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            try:
                batch = next(self._batches)
            except StopIteration:
                return None
            if batch.nbytes > self._capacity:
                if self._pointer is not None:
                    cuda.free(self._pointer)
                self._pointer, self._capacity = cuda.malloc(batch.nbytes), batch.nbytes
            cuda.memcpy_async(self._pointer, batch.ctypes.data, batch.nbytes, HOST_TO_DEVICE,
                              self._stream)
            cuda.stream_synchronize(self._stream)
            return [self._pointer]

        def read_calibration_cache(self):
            if not cache_path or not os.path.isfile(cache_path):
                return None
            record = cache_path + '.sha256'
            if data_sha256:
                recorded = open(record).read().strip() if os.path.isfile(record) else ''
                if recorded != data_sha256:
                    LOG.info('calibration cache %s is for other data: recalibrating', cache_path)
                    return None
            with open(cache_path, 'rb') as stream:
                return stream.read()

        def write_calibration_cache(self, cache):
            if cache_path:
                write_atomically(cache_path, bytes(cache))
                if data_sha256:
                    write_atomically(cache_path + '.sha256', data_sha256.encode())
    return EntropyCalibrator()


def _apply_dynamic_ranges(network, ranges):
    names = set()
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        tensors += [layer.get_output(k) for k in range(layer.num_outputs)]
    for tensor in tensors:
        names.add(tensor.name)
        if tensor.name in ranges:
            tensor.set_dynamic_range(*ranges[tensor.name])  # deprecated in 10.x, still works
    missing = unmatched_ranges(ranges, names)
    if missing:
        LOG.warning('dynamic ranges for tensors the network does not have: %s', missing)
    return len(ranges) - len(missing)


def _dla_report(config, network):
    """List layers DLA cannot run (the builder's own answer, before building)."""
    off_dla = [network.get_layer(i) for i in range(network.num_layers)
               if not config.can_run_on_DLA(network.get_layer(i))]
    names = [f'{layer.name} ({layer.type})' for layer in off_dla]
    return [f'{network.num_layers - len(off_dla)} of {network.num_layers} layers can run on DLA'] \
        + [f'on GPU: {name}' for name in names]


def _engine_layers(trt, runtime, serialized):
    """Return the built engine's layer list from the engine inspector (TensorRT 8.2+)."""
    import json
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None or not hasattr(engine, 'create_engine_inspector'):
        return []
    info = engine.create_engine_inspector().get_engine_information(
        trt.LayerInformationFormat.JSON)
    layers = json.loads(info).get('Layers', [])
    return [layer.get('Name', str(layer)) if isinstance(layer, dict) else str(layer)
            for layer in layers]


def _network_from_onnx(trt, builder, logger, model_path):
    flags = 0
    if parse_version(trt.__version__)[0] < 10:
        # Explicit batch is required before 10.x and the only mode in 10.x (flag deprecated).
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(model_path):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(f'TensorRT could not parse {model_path!r}: ' + '; '.join(errors))
    return network, parser


def build_serialized_engine(trt, logger, cfg, plan, cuda, calibration_sha256=''):
    """Build an engine for EngineConfig ``cfg`` following BuildPlan ``plan``.

    Returns (serialized engine bytes, notes for the cache record).
    """
    builder = trt.Builder(logger)
    network, parser = _network_from_onnx(trt, builder, logger, cfg.model)
    config = builder.create_builder_config()
    workspace = cfg.workspace_mib << 20
    if hasattr(config, 'set_memory_pool_limit'):  # 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    else:
        config.max_workspace_size = workspace
    if hasattr(trt, 'ProfilingVerbosity'):
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if plan.precision in ('fp16', 'int8'):
        config.set_flag(trt.BuilderFlag.FP16)
    notes = list(plan.describe())
    profile = builder.create_optimization_profile()
    for name, (low, best, high) in plan.profiles.items():
        profile.set_shape(name, low, best, high)
    config.add_optimization_profile(profile)
    if plan.precision == 'int8':
        config.set_flag(trt.BuilderFlag.INT8)
        if cfg.dynamic_ranges:
            applied = _apply_dynamic_ranges(network, load_dynamic_ranges(cfg.dynamic_ranges))
            notes.append(f'dynamic ranges set on {applied} tensors')
        else:
            config.int8_calibrator = _calibrator_for(trt, cfg, network, cuda, calibration_sha256)
            config.set_calibration_profile(profile)
    if plan.device == 'dla':
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        if plan.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        notes += _dla_report(config, network)
    timing_cache = _load_timing_cache(config, cfg.timing_cache)
    for line in notes:
        LOG.info('build %s: %s', os.path.basename(cfg.model), line)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f'TensorRT failed to build {cfg.model!r} (see the TensorRT errors '
                         'logged above)')
    if timing_cache is not None and cfg.timing_cache:
        write_atomically(cfg.timing_cache, bytes(config.get_timing_cache().serialize()))
    del parser
    return bytes(serialized), notes


def _load_timing_cache(config, path):
    data = b''
    if path and os.path.isfile(path):
        with open(path, 'rb') as stream:
            data = stream.read()
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _calibrator_for(trt, cfg, network, cuda, data_sha256):
    calibration = cfg.calibration
    input_name = network.get_input(0).name
    if network.num_inputs != 1:
        raise ConfigError('int8 calibration from images supports one model input; use '
                          'dynamic_ranges for multi-input models')
    batches = []
    if calibration.images:
        paths = list_calibration_images(calibration.images)
        make_batch = preprocessor_batch_fn(calibration.preprocess, input_name,
                                           device_id=cfg.device_id)
        batches = calibration_batches(paths, make_batch, calibration.batch_size,
                                      calibration.max_batches)
    return make_entropy_calibrator(trt, batches, calibration.batch_size, calibration.cache,
                                   cuda, data_sha256)


class TensorRTEngine(Engine):
    """A deserialized TensorRT engine with its own CUDA stream and device buffers."""

    def __init__(self, trt, logger, serialized, cuda, device_id, name):
        self._cuda = cuda
        self._name = name
        self._device_id = device_id
        cuda.set_device(device_id)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(serialized)
        if self._engine is None:
            raise EngineCacheError(f'{name}: TensorRT could not deserialize the engine (built by '
                                   'another TensorRT version or device?); delete it to rebuild')
        self._context = self._engine.create_execution_context()
        self._inputs, self._outputs = [], []
        for index in range(self._engine.num_io_tensors):
            tensor_name = self._engine.get_tensor_name(index)
            info = TensorInfo(tensor_name, tuple(self._engine.get_tensor_shape(tensor_name)),
                              np.dtype(trt.nptype(self._engine.get_tensor_dtype(tensor_name))))
            is_input = self._engine.get_tensor_mode(tensor_name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(info)
        self._stream = cuda.stream_create()
        self._event = cuda.event_create()
        self._buffers = {}  # name -> (pointer, capacity in bytes)

    def _buffer(self, name, nbytes):
        pointer, capacity = self._buffers.get(name, (None, 0))
        if nbytes > capacity:
            if pointer is not None:
                self._cuda.free(pointer)
            pointer = self._cuda.malloc(max(nbytes, 1))
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def _bind_input(self, name, value):
        if isinstance(value, DeviceBuffer):
            if value.device_id != self._device_id:
                raise ConfigError(f'{self._name}: input {name!r} is on GPU {value.device_id}, '
                                  f'the engine on GPU {self._device_id}')
            producer = stream_handle(value.stream)
            if producer is not None:
                # Order our stream after the producer's work without blocking the host.
                self._cuda.event_record(self._event, producer)
                self._cuda.stream_wait_event(self._stream, self._event)
            pointer = value.data_ptr
        else:
            pointer = self._buffer(name, value.nbytes)
            self._cuda.memcpy_async(pointer, value.ctypes.data, value.nbytes, HOST_TO_DEVICE,
                                    self._stream)
        if not self._context.set_input_shape(name, tuple(value.shape)):
            raise ModelError(f'{self._name}: input {name!r} shape {tuple(value.shape)} is outside '
                             'the optimization profile the engine was built with')
        self._context.set_tensor_address(name, pointer)

    @property
    def accepts_device_input(self):
        """Return True: TensorRT binds every tensor by device address."""
        return True

    def run(self, feeds, outputs_on_device=False):
        """Run once on the engine's stream; see Engine.run."""
        if self._context is None:
            raise ModelError(f'{self._name}: engine is closed')
        feeds = check_feeds(feeds, self._inputs, self._name)
        for name, value in feeds.items():
            self._bind_input(name, value)
        shapes = {}
        for tensor in self._outputs:
            shape = tuple(self._context.get_tensor_shape(tensor.name))
            if any(dim < 0 for dim in shape):
                raise ModelError(f'{self._name}: output {tensor.name!r} has a data-dependent '
                                 f'shape {shape}; such models are not supported')
            shapes[tensor.name] = shape
            nbytes = int(np.prod(shape, dtype=np.int64)) * tensor.dtype.itemsize
            self._context.set_tensor_address(tensor.name, self._buffer(tensor.name, nbytes))
        if not self._context.execute_async_v3(self._stream):
            raise ModelError(f'{self._name}: TensorRT execute_async_v3 failed (see the log)')
        result = {}
        for tensor in self._outputs:
            pointer = self._buffers[tensor.name][0]
            if outputs_on_device:
                result[tensor.name] = DeviceBuffer(pointer, shapes[tensor.name], tensor.dtype,
                                                   self._device_id, keepalive=self)
            else:
                host = np.empty(shapes[tensor.name], tensor.dtype)
                self._cuda.memcpy_async(host.ctypes.data, pointer, host.nbytes, DEVICE_TO_HOST,
                                        self._stream)
                result[tensor.name] = host
        # Inputs (DALI outputs, host arrays) must outlive the work that reads them.
        self._cuda.stream_synchronize(self._stream)
        return result

    def close(self):
        """Free device buffers, the stream and the TensorRT objects."""
        if self._context is None:
            return
        self._context = None
        self._engine = None
        for pointer, _ in self._buffers.values():
            self._cuda.free(pointer)
        self._buffers = {}
        self._cuda.event_destroy(self._event)
        self._cuda.stream_destroy(self._stream)


def _calibration_sha256(cfg, plan):
    if plan.precision != 'int8' or cfg.dynamic_ranges:
        return ''
    if cfg.calibration.images:
        paths = list_calibration_images(cfg.calibration.images)
        return calibration_data_sha256(paths, cfg.calibration.preprocess,
                                       cfg.calibration.batch_size, cfg.calibration.max_batches)
    return file_sha256(cfg.calibration.cache)


def load_tensorrt_engine(cfg):
    """Return a TensorRTEngine for EngineConfig ``cfg``, reusing a cached engine when valid."""
    trt = import_tensorrt()
    cuda = cuda_runtime()
    cuda.set_device(cfg.device_id)
    logger = _Logger(trt)
    load_plugins(trt, logger, cfg.plugins)
    builder = trt.Builder(logger)
    facts = device_facts(trt, builder, cuda, cfg.device_id)
    model_inputs, _ = read_model_io(cfg.model)
    plan = plan_build(cfg, model_inputs, facts)
    for warning in plan.warnings:
        LOG.warning('%s: %s', os.path.basename(cfg.model), warning)
    calibration_sha256 = _calibration_sha256(cfg, plan)
    key = make_cache_key(cfg.model, facts, plan.precision, plan.dla_core, plan.profiles,
                         calibration_sha256, cfg.dynamic_ranges, cfg.plugins)
    cache_dir = os.path.expanduser(cfg.engine_cache_dir or DEFAULT_CACHE_DIR)
    engine_path = cfg.engine_path or default_engine_path(cache_dir, cfg.model, plan.precision,
                                                         plan.dla_core)
    decision = check_cached_engine(engine_path, key)
    if decision.reuse:
        LOG.info('using cached engine: %s', decision.reason)
        with open(engine_path, 'rb') as stream:
            serialized = stream.read()
    else:
        LOG.warning('building a TensorRT engine (minutes on Jetson): %s', decision.reason)
        serialized, notes = build_serialized_engine(trt, logger, cfg, plan, cuda,
                                                    calibration_sha256)
        notes += _engine_layers(trt, trt.Runtime(logger), serialized)
        store_engine(engine_path, serialized, key, notes)
        LOG.info('engine written to %s', engine_path)
    engine = TensorRTEngine(trt, logger, serialized, cuda, cfg.device_id,
                            os.path.basename(engine_path))
    validate_bindings([s.as_tensor_info() for s in cfg.inputs], engine.inputs, 'input',
                      engine_path)
    validate_bindings([s.as_tensor_info() for s in cfg.outputs], engine.outputs, 'output',
                      engine_path)
    return engine
