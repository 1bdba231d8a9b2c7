"""TensorRT backend (8.5 .. 10.x): build from ONNX, cache, and run with execute_async_v3.

Only the calls into TensorRT live here; what to build and whether a cached engine may be reused
(engine_request, build_plan, engine_cache), binding checks (binding) and calibration data
(calibration) are plain functions tested without TensorRT. Uses the name-based I/O API that
TensorRT 8.5 introduced (``num_io_tensors``, ``get_tensor_name``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) and nothing older, so one code path serves JetPack 5
(8.5) to 10.x. test/fake_tensorrt.py checks the call sequence against the documented API; the
real run is tools/verify_tensorrt.py on the GPU machine (docs/engines.md).
"""

import ctypes
import json
import logging
import os
import threading
import time

import numpy as np

from dali_trt_ros.engines.base import DeviceBuffer, Engine, TensorInfo
from dali_trt_ros.engines.binding import check_feeds, validate_bindings
from dali_trt_ros.engines.build_plan import DeviceFacts, dla_gpu_fallback, parse_version
from dali_trt_ros.engines.calibration import (calibration_batches, list_calibration_images,
                                              preprocessor_batch_fn)
from dali_trt_ros.engines.cuda_runtime import (DEVICE_TO_HOST, HOST_TO_DEVICE, cuda_runtime,
                                               stream_handle)
from dali_trt_ros.engines.dynamic_ranges import load_dynamic_ranges, unmatched_ranges
from dali_trt_ros.engines.engine_cache import (append_build_notes, make_private_dir,
                                               read_cached_engine, store_engine,
                                               stored_build_notes, write_atomically)
from dali_trt_ros.engines.engine_request import resolve_engine
from dali_trt_ros.errors import ConfigError, EngineCacheError, ModelError

LOG = logging.getLogger(__name__)


def import_tensorrt():
    """Import TensorRT or raise ModelError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError:
        raise ModelError('TensorRT (python module tensorrt) is not installed: on Jetson it comes '
                         'with JetPack (python3-libnvinfer); on x86 pip install tensorrt. Or set '
                         'backend: onnxruntime') from None
    return trt


# ------------------------------------------------------------------------------------ logger
# TensorRT severities -> Python logging levels. VERBOSE sits below DEBUG: a build sends ~10^5
# verbose messages, forwarded only when this module's logger is set to level 5 or lower.
VERBOSE_LEVEL = 5
_LEVEL_OF_SEVERITY = {'INTERNAL_ERROR': logging.CRITICAL, 'ERROR': logging.ERROR,
                      'WARNING': logging.WARNING, 'INFO': logging.DEBUG,
                      'VERBOSE': VERBOSE_LEVEL}
_logger = None
_logger_lock = threading.Lock()
# Messages TensorRT logs as errors for a condition this module handles itself: a timing cache it
# cannot use (8.6 with Myelin graphs of another network). They are logged as warnings and
# counted, and the build discards that cache (see _save_timing_cache).
TIMING_CACHE_REJECTED = ('The timing cache will not be used',
                         'myelinCache.h::deserializeFromBuffer')


def tensorrt_logger(trt=None):
    """Return this process's one TensorRT logger (TensorRT expects a single logger per process).

    It forwards to Python logging (logger ``dali_trt_ros.engines.tensorrt_engine``), dropping
    messages below that logger's level with one dict lookup before any formatting; call
    ``refresh_levels()`` on it after changing the level.
    """
    global _logger
    with _logger_lock:
        if _logger is None:
            _logger = _make_logger(trt or import_tensorrt())
        return _logger


def _make_logger(trt):
    class ForwardingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.forwarded = {}
            self.timing_cache_rejections = 0
            self.refresh_levels()

        def refresh_levels(self):
            """Recompute which severities reach Python logging from the logger's level."""
            threshold = LOG.getEffectiveLevel()
            self.forwarded = {
                getattr(trt.ILogger.Severity, name): level
                for name, level in _LEVEL_OF_SEVERITY.items()
                if level >= threshold and hasattr(trt.ILogger.Severity, name)}

        def log(self, severity, message):
            level = self.forwarded.get(severity)
            if severity == trt.ILogger.Severity.ERROR and \
                    any(text in message for text in TIMING_CACHE_REJECTED):
                # Counted whatever the level: the build reads the count.
                self.timing_cache_rejections += 1
                LOG.warning('TensorRT: %s (handled: this build runs without the stored timing '
                            'cache, which is then deleted)', message)
            elif level is not None:
                LOG.log(level, 'TensorRT: %s', message)
    return ForwardingLogger()


# ------------------------------------------------------------------------------------- types
# By name, not trt.nptype: TensorRT 8.5's nptype maps BOOL through np.bool, which NumPy 1.24+
# removed, so every call raised there. Types NumPy lacks (BF16, FP8, INT4) are refused by name.
_NUMPY_OF_TENSORRT = {'FLOAT': np.float32, 'HALF': np.float16, 'INT8': np.int8,
                      'INT32': np.int32, 'INT64': np.int64, 'BOOL': np.bool_, 'UINT8': np.uint8}


def numpy_dtype(datatype):
    """Return the NumPy dtype of a ``trt.DataType``; ModelError for types NumPy cannot hold."""
    name = getattr(datatype, 'name', None) or str(datatype).rsplit('.', 1)[-1]
    if name not in _NUMPY_OF_TENSORRT:
        raise ModelError(f'engine tensor type {name} has no NumPy equivalent; export the model '
                         'with float32/float16/int32/int8/uint8/bool inputs and outputs')
    return np.dtype(_NUMPY_OF_TENSORRT[name])


# ----------------------------------------------------------------------- plugins and facts
_builtin_plugins_loaded = False
_loaded_plugin_paths = set()


def load_plugins(trt, logger, plugin_paths):
    """Register TensorRT's built-in plugins (once) and the configured plugin libraries.

    Only the libraries named in the configuration are loaded; a plugin library is code that runs
    in this process.
    """
    global _builtin_plugins_loaded
    if not _builtin_plugins_loaded:
        trt.init_libnvinfer_plugins(logger, '')
        _builtin_plugins_loaded = True
    registry = trt.get_plugin_registry()
    for path in plugin_paths:
        path = os.path.abspath(path)
        if path in _loaded_plugin_paths:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f'plugin library {path!r} not found')
        if hasattr(registry, 'load_library'):  # TensorRT 8.6+
            if registry.load_library(path) is None:
                raise ModelError(f'TensorRT could not load plugin library {path!r}')
        else:  # 8.5: the library registers its creators when loaded into the process
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        _loaded_plugin_paths.add(path)
        LOG.info('loaded TensorRT plugin library %s', path)


def device_facts(trt, runtime, cuda, device_id):
    """Collect the DeviceFacts the plan and cache key need, without creating a Builder.

    The DLA core count comes from ``runtime.num_DLA_cores`` (0 on machines without DLA); fast
    fp16/int8 are only known to a Builder and stay None here.
    """
    name, capability = cuda.device_properties(device_id)
    return DeviceFacts(tensorrt_version=trt.__version__, device_name=name,
                       compute_capability=capability,
                       num_dla_cores=int(getattr(runtime, 'num_DLA_cores', 0)))


# ------------------------------------------------------------------------------ calibrator
def make_entropy_calibrator(trt, batches, batch_shape, cache_path, cuda, data_sha256=''):
    """Return an IInt8EntropyCalibrator2 feeding ``batches`` (host arrays of ``batch_shape``).

    Exceptions inside get_batch are recorded in ``calibrator.error`` and end the data: TensorRT
    8.5's trampoline swallows them, so the build checks ``error`` afterwards and fails loudly.
    A calibration cache is reused only if its ``.sha256`` record matches ``data_sha256``. Call
    ``close()`` after the build to free the device buffer and the stream.
    """
    batch_shape = tuple(int(dim) for dim in batch_shape)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._pointer, self._capacity = None, 0
            self._stream = cuda.stream_create()
            self.error = None
            self.batches_fed = 0
            self.cache_read = False

        def get_batch_size(self):
            # Rows per batch; an explicit-batch network takes the real batch from the
            # calibration profile's opt shape, which batch_shape is.
            return batch_shape[0]

        def get_batch(self, names, *unused):
            try:
                return self._next_batch(names)
            except Exception as error:  # noqa: B902 - recorded, re-raised after the build
                if self.error is None:
                    self.error = error
                LOG.error('INT8 calibration stopped: %s', error)
                return None

        def _next_batch(self, names):
            if len(names) != 1:
                raise ConfigError(f'calibration feeds one input, TensorRT asks for {names}')
            batch = next(self._batches, None)
            if batch is None:
                return None
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if batch.shape != batch_shape:
                raise ConfigError(f'calibration batch has shape {batch.shape}, TensorRT '
                                  f'calibrates at {batch_shape}')
            if batch.nbytes > self._capacity:
                if self._pointer is not None:
                    cuda.free(self._pointer)
                    self._pointer = None
                self._pointer, self._capacity = cuda.malloc(batch.nbytes), batch.nbytes
            cuda.memcpy_async(self._pointer, batch.ctypes.data, batch.nbytes, HOST_TO_DEVICE,
                              self._stream)
            cuda.stream_synchronize(self._stream)
            self.batches_fed += 1
            return [int(self._pointer)]

        def read_calibration_cache(self, *unused):
            if not cache_path or not os.path.isfile(cache_path):
                return None
            if data_sha256:
                record = cache_path + '.sha256'
                recorded = ''
                if os.path.isfile(record):
                    with open(record, encoding='utf-8') as stream:
                        recorded = stream.read().strip()
                if recorded != data_sha256:
                    LOG.info('calibration cache %s is for other data: recalibrating', cache_path)
                    return None
            with open(cache_path, 'rb') as stream:
                data = stream.read()
            self.cache_read = bool(data)
            return data or None

        def write_calibration_cache(self, cache, *unused):
            if cache_path:
                write_atomically(cache_path, bytes(cache))
                if data_sha256:
                    write_atomically(cache_path + '.sha256', data_sha256.encode())

        def close(self):
            """Free the device buffer and the stream (idempotent)."""
            if self._pointer is not None:
                cuda.free(self._pointer)
                self._pointer, self._capacity = None, 0
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
                self._stream = None
    return EntropyCalibrator()


def _calibrator_for(trt, cfg, plan, cuda, data_sha256):
    calibration = cfg.calibration
    batches, make_batch = [], None
    if calibration.images:
        paths = list_calibration_images(calibration.images)
        make_batch = preprocessor_batch_fn(calibration.preprocess, next(iter(plan.profiles)),
                                           device_id=cfg.device_id)
        batches = calibration_batches(paths, make_batch, plan.calibration_shape,
                                      calibration.max_batches)
    shape = plan.calibration_shape or next(iter(plan.profiles.values()))[1]
    calibrator = make_entropy_calibrator(trt, batches, shape, calibration.cache, cuda,
                                         data_sha256)
    calibrator.preprocessing = make_batch
    return calibrator


def _check_calibration(calibrator):
    """Raise if INT8 calibration failed or fed nothing (TensorRT may still return an engine)."""
    if calibrator.error is not None:
        raise ModelError(f'INT8 calibration failed: {calibrator.error}; the engine was not '
                         'stored') from calibrator.error
    if calibrator.batches_fed == 0 and not calibrator.cache_read:
        raise ModelError('INT8 calibration read no data (no batch and no usable calibration '
                         'cache); the engine was not stored')


# ---------------------------------------------------------------------------------- build
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


def _keep_tail_in_fp16(trt, network, count):
    """Constrain the last ``count`` layers with only float outputs to FP16; return their names.

    Layers producing integers or shapes (Shape, Gather indices, casts to int) are skipped, not
    counted: they have no FP16 form. TensorRT honours the constraint where an FP16
    implementation exists (PREFER_PRECISION_CONSTRAINTS; OBEY would fail the build instead).
    """
    floats = (trt.DataType.FLOAT, trt.DataType.HALF)
    kept = []
    for index in range(network.num_layers - 1, -1, -1):
        if len(kept) == count:
            break
        layer = network.get_layer(index)
        outputs = [layer.get_output(k) for k in range(layer.num_outputs)]
        if outputs and all(tensor.dtype in floats for tensor in outputs):
            layer.precision = trt.DataType.HALF
            kept.append(layer.name)
    return kept[::-1]


def _dla_report(config, network):
    """List layers DLA cannot run (the builder's own answer, before building)."""
    off_dla = [network.get_layer(i) for i in range(network.num_layers)
               if not config.can_run_on_DLA(network.get_layer(i))]
    names = [f'{layer.name} ({layer.type})' for layer in off_dla]
    return [f'{network.num_layers - len(off_dla)} of {network.num_layers} layers can run on DLA'] \
        + [f'on GPU: {name}' for name in names]


def engine_layers(trt, engine):
    """Return the engine inspector's layer list as note lines; never raises.

    TensorRT 8.6 puts raw control characters in layer names, so the JSON is parsed with
    strict=False; any other problem becomes a note, because a report must never cost an engine.
    """
    try:
        if not hasattr(engine, 'create_engine_inspector'):
            return ['layer report: this TensorRT has no engine inspector']
        info = engine.create_engine_inspector().get_engine_information(
            trt.LayerInformationFormat.JSON)
        layers = json.loads(info, strict=False).get('Layers', [])
        return [f'layer: {layer.get("Name", layer) if isinstance(layer, dict) else layer}'
                for layer in layers]
    except Exception as error:  # noqa: B902 - a report problem must not fail the load
        LOG.warning('engine layer report unavailable: %s', error)
        return [f'layer report unavailable: {type(error).__name__}: {error}']


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


def _set_tactic_sources(trt, config, names):
    if names is None:
        return
    mask = 0
    for name in names:
        mask |= 1 << int(getattr(trt.TacticSource, name))
    if not config.set_tactic_sources(mask):
        raise ConfigError(f'TensorRT refused tactic_sources {list(names)}')


def _load_timing_cache(config, path):
    data = b''
    if path and os.path.isfile(path):
        with open(path, 'rb') as stream:
            data = stream.read()
    cache = config.create_timing_cache(data)
    # A cache from another GPU or TensorRT version is rejected rather than misused.
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        LOG.warning('timing cache %s does not fit this GPU/TensorRT; starting a new one', path)
        config.set_timing_cache(config.create_timing_cache(b''), ignore_mismatch=False)
    return bool(data)


def _save_timing_cache(config, path, had_timings, rejected):
    """Store the build's timings; return the note for the engine record.

    A cache TensorRT rejected during the build is deleted instead of written back (what the
    config holds is still the rejected data), so the next build starts a fresh one.
    """
    try:
        if rejected:
            LOG.warning('timing cache %s was rejected by TensorRT; deleted, the next build '
                        'starts a new one', path)
            if path and os.path.isfile(path):
                os.unlink(path)
            return f'timing cache: {path} (rejected by TensorRT, deleted)'
        write_atomically(path, bytes(config.get_timing_cache().serialize()))
    except (OSError, EngineCacheError) as error:  # timings are an optimization only
        LOG.warning('could not save the timing cache %s: %s', path, error)
    return f'timing cache: {path} ({"reused" if had_timings else "new"})'


def build_serialized_engine(trt, builder, logger, cfg, request, cuda):
    """Build an engine for EngineConfig ``cfg`` as EngineRequest ``request`` says.

    Returns (serialized engine bytes, notes for the cache record). Raises ModelError when the
    build or the INT8 calibration fails.
    """
    plan = request.plan
    network, parser = _network_from_onnx(trt, builder, logger, cfg.model)
    config = builder.create_builder_config()
    workspace = cfg.workspace_mib << 20
    if hasattr(config, 'set_memory_pool_limit'):  # 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    else:
        config.max_workspace_size = workspace
    if hasattr(trt, 'ProfilingVerbosity'):
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _set_tactic_sources(trt, config, cfg.tactic_sources)
    if cfg.builder_optimization_level is not None and \
            hasattr(config, 'builder_optimization_level'):  # 8.6+
        config.builder_optimization_level = cfg.builder_optimization_level
    notes = list(plan.describe())
    if not cfg.cuda_tf32 and hasattr(trt.BuilderFlag, 'TF32'):
        # TF32 rounds fp32 convolution inputs to 10 mantissa bits (Ampere+, Orin included);
        # off unless cuda_tf32 is set, as for ONNX Runtime, so fp32 matches the CPU closely.
        config.clear_flag(trt.BuilderFlag.TF32)
    if plan.precision in ('fp16', 'int8'):
        config.set_flag(trt.BuilderFlag.FP16)
        if not getattr(builder, 'platform_has_fast_fp16', True):  # deprecated in 10.x
            notes.append('this GPU has no fast fp16: expect little speed-up')
    profile = builder.create_optimization_profile()
    for name, (low, best, high) in plan.profiles.items():
        profile.set_shape(name, low, best, high)
    config.add_optimization_profile(profile)
    calibrator = None
    try:
        if plan.precision == 'int8':
            config.set_flag(trt.BuilderFlag.INT8)
            if cfg.dynamic_ranges:
                applied = _apply_dynamic_ranges(network, load_dynamic_ranges(cfg.dynamic_ranges))
                notes.append(f'dynamic ranges set on {applied} tensors')
            else:
                calibrator = _calibrator_for(trt, cfg, plan, cuda, request.calibration_sha256)
                config.int8_calibrator = calibrator
                config.set_calibration_profile(profile)
            if cfg.int8_fp16_tail_layers:
                kept = _keep_tail_in_fp16(trt, network, cfg.int8_fp16_tail_layers)
                config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
                notes.append(f'int8: last {len(kept)} float layers constrained to fp16 '
                             f'(PREFER_PRECISION_CONSTRAINTS): {", ".join(kept)}')
        if plan.device == 'dla':
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = plan.dla_core
            if plan.gpu_fallback:
                config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
            notes += _dla_report(config, network)
        had_timings = _load_timing_cache(config, request.timing_cache_path)
        for line in notes:
            LOG.info('build %s: %s', os.path.basename(cfg.model), line)
        rejections = getattr(logger, 'timing_cache_rejections', 0)
        started = time.monotonic()
        serialized = builder.build_serialized_network(network, config)
        if calibrator is not None:
            _check_calibration(calibrator)
        if serialized is None:
            raise ModelError(f'TensorRT failed to build {cfg.model!r} (see the TensorRT errors '
                             'logged above)')
        notes.append(f'build time: {time.monotonic() - started:.1f} s')
        rejected = getattr(logger, 'timing_cache_rejections', 0) > rejections
        notes.append(_save_timing_cache(config, request.timing_cache_path, had_timings,
                                        rejected))
    finally:
        if calibrator is not None:
            calibrator.close()
            preprocessing = getattr(calibrator, 'preprocessing', None)
            if preprocessing is not None:
                preprocessing.close()
    del parser
    return bytes(serialized), notes


# --------------------------------------------------------------------------------- engine
class TensorRTEngine(Engine):
    """A deserialized TensorRT engine with its own CUDA stream and device buffers.

    ``dla_core`` is set on the runtime before deserializing (TensorRT runs a DLA engine on the
    runtime's core, 0 unless told otherwise). Every call makes the engine's GPU current on the
    calling thread, since CUDA keeps the current device per thread.
    """

    def __init__(self, trt, runtime, serialized, cuda, device_id, name, dla_core=None):
        self._cuda = cuda
        self._name = name
        self._device_id = device_id
        self._context = None
        self.built = False  # set by load_tensorrt_engine: built now, or read from the cache
        self.load_seconds = None
        cuda.set_device(device_id)
        self._runtime = runtime
        if dla_core is not None:
            runtime.DLA_core = int(dla_core)
        self._engine = runtime.deserialize_cuda_engine(serialized)
        if self._engine is None:
            raise EngineCacheError(f'{name}: TensorRT could not deserialize the engine (built by '
                                   'another TensorRT version or device?); delete it to rebuild')
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelError(f'{name}: TensorRT could not create an execution context (out of '
                             'GPU memory?)')
        self._inputs, self._outputs = [], []
        for index in range(self._engine.num_io_tensors):
            tensor_name = self._engine.get_tensor_name(index)
            info = TensorInfo(tensor_name, tuple(self._engine.get_tensor_shape(tensor_name)),
                              numpy_dtype(self._engine.get_tensor_dtype(tensor_name)))
            is_input = self._engine.get_tensor_mode(tensor_name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(info)
        self._stream = cuda.stream_create()
        self._event = cuda.event_create()
        self._buffers = {}  # name -> (pointer, capacity in bytes)

    @property
    def cuda_engine(self):
        """Return the underlying trt.ICudaEngine (for inspection)."""
        return self._engine

    def _buffer(self, name, nbytes):
        pointer, capacity = self._buffers.get(name, (None, 0))
        if nbytes > capacity:
            if pointer is not None:
                self._cuda.free(pointer)
                del self._buffers[name]
            pointer = self._cuda.malloc(max(nbytes, 1))
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def _set_address(self, name, pointer):
        if not self._context.set_tensor_address(name, pointer):
            raise ModelError(f'{self._name}: TensorRT refused the address of tensor {name!r} '
                             '(misaligned or unknown tensor; see the TensorRT error above)')

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
        self._set_address(name, pointer)

    @property
    def accepts_device_input(self):
        """Return True: TensorRT binds every tensor by device address."""
        return True

    def run(self, feeds, outputs_on_device=False):
        """Run once on the engine's stream; see Engine.run."""
        if self._context is None:
            raise ModelError(f'{self._name}: engine is closed')
        feeds = check_feeds(feeds, self._inputs, self._name)
        self._cuda.set_device(self._device_id)
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
            self._set_address(tensor.name, self._buffer(tensor.name, nbytes))
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
        self._cuda.set_device(self._device_id)
        self._cuda.stream_synchronize(self._stream)
        # Context before engine before runtime: each depends on the next.
        self._context = None
        self._engine = None
        self._runtime = None
        for pointer, _ in self._buffers.values():
            self._cuda.free(pointer)
        self._buffers = {}
        self._cuda.event_destroy(self._event)
        self._cuda.stream_destroy(self._stream)


def load_tensorrt_engine(cfg, cuda=None):
    """Return a TensorRTEngine for EngineConfig ``cfg``, reusing a cached engine when valid.

    A cache hit creates no Builder and no layer report: it reads, checks and deserializes. A
    build writes the engine to the cache before anything else touches it.
    """
    started = time.monotonic()
    trt = import_tensorrt()
    cuda = cuda or cuda_runtime()
    cuda.set_device(cfg.device_id)
    logger = tensorrt_logger(trt)
    load_plugins(trt, logger, cfg.plugins)
    runtime = trt.Runtime(logger)
    request = resolve_engine(cfg, device_facts(trt, runtime, cuda, cfg.device_id))
    for warning in request.plan.warnings:
        LOG.warning('%s: %s', os.path.basename(cfg.model), warning)
    make_private_dir(os.path.dirname(os.path.abspath(request.engine_path)))
    name = os.path.basename(request.engine_path)
    engine = None
    if request.decision.reuse:
        LOG.info('using cached engine: %s', request.decision.reason)
        serialized = read_cached_engine(request.engine_path, request.decision)
        try:
            engine = TensorRTEngine(trt, runtime, serialized, cuda, cfg.device_id, name,
                                    dla_core=request.plan.dla_core)
        except EngineCacheError as error:
            LOG.warning('%s; rebuilding', error)
    if engine is None:
        if not request.decision.reuse:
            LOG.warning('building a TensorRT engine (minutes on Jetson): %s',
                        request.decision.reason)
        serialized, notes = build_serialized_engine(trt, trt.Builder(logger), logger, cfg,
                                                    request, cuda)
        # Stored first: nothing after this point can lose a built engine.
        store_engine(request.engine_path, serialized, request.key, notes)
        LOG.info('engine written to %s', request.engine_path)
        engine = TensorRTEngine(trt, runtime, serialized, cuda, cfg.device_id, name,
                                dla_core=request.plan.dla_core)
        engine.built = True
    try:
        if engine.built:
            _record_layers(trt, engine, request.engine_path)
        validate_bindings([s.as_tensor_info() for s in cfg.inputs], engine.inputs, 'input',
                          request.engine_path)
        validate_bindings([s.as_tensor_info() for s in cfg.outputs], engine.outputs, 'output',
                          request.engine_path)
    except BaseException:
        engine.close()
        raise
    engine.load_seconds = time.monotonic() - started
    engine.device = request.plan.device
    engine.dla_core = request.plan.dla_core
    engine.dla_gpu_fallback = dla_gpu_fallback(cfg.dla_core, request.plan,
                                               stored_build_notes(request.engine_path))
    if engine.dla_gpu_fallback:
        LOG.warning('%s: DLA requested, GPU used: %s', name, engine.dla_gpu_fallback)
    LOG.info('%s ready in %.2f s (%s)', name, engine.load_seconds,
             'built' if engine.built else 'from cache')
    return engine


def _record_layers(trt, engine, engine_path):
    """Add the layer report to the stored engine's record; a failure only costs the report."""
    try:
        append_build_notes(engine_path, engine_layers(trt, engine.cuda_engine))
    except (OSError, ValueError, EngineCacheError) as error:
        LOG.warning('could not add the layer report to %s.json: %s', engine_path, error)
