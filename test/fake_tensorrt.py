"""A fake ``tensorrt`` module and CUDA runtime that record calls and enforce the documented API.

TensorRT cannot be installed on the CI machines, so the backend's decisions are tested against
this stand-in. It follows the Python API of TensorRT 8.5 (JetPack 5), 8.6 and 10.x where this
package uses it, and enforces what those versions document:

* ``ILogger`` subclasses must call ``ILogger.__init__`` (pybind trampoline); TensorRT expects one
  logger per process and warns when a Builder or Runtime gets another one.
* ``IExecutionContext.set_tensor_address`` / ``set_input_shape`` return bool (False for unknown
  names, addresses that are not 256-byte aligned, shapes outside the profile);
  ``execute_async_v3(stream)`` returns bool and needs every address set and the engine's GPU
  current on the calling thread.
* ``IRuntime.DLA_core`` picks the DLA core of engines deserialized AFTER it is set;
  ``num_DLA_cores`` is 0 without DLA; DLA builds need FP16 or INT8.
* ``IInt8EntropyCalibrator2``: TensorRT calls get_batch_size(), read_calibration_cache(), then
  get_batch(names) until it returns None, reading ONE batch at the calibration profile's kOPT
  shape from each pointer; exceptions raised in Python callbacks are swallowed by the
  trampoline (TensorRT 8.5) and end the data silently; then write_calibration_cache(buffer).
* ``trt.nptype`` raises on 8.5 with NumPy >= 1.24 (it refers to ``np.bool``).
* ``IBuilderConfig.builder_optimization_level`` exists from 8.6 on; ``set_tactic_sources``
  returns bool.
* The engine inspector's JSON has raw control characters in layer names (seen with 8.6).

Execution is real: a fake engine runs its ONNX model with ONNX Runtime (CPU) on the bytes in
fake device memory, so outputs can be compared with the ONNX Runtime backend.
"""

import ctypes
import enum
import json
import threading
import types

import numpy as np

ALIGNMENT = 256
ENGINE_MAGIC = b'FAKETRT1'


class FakeCuda:
    """The CudaRuntime interface over host memory, with per-thread current devices."""

    path = 'fake libcudart'

    def __init__(self, device_count=2, name='Fake GPU', capability=(8, 7)):
        self.device_count_value = device_count
        self.name, self.capability = name, capability
        self.memory = {}  # pointer -> bytearray
        self.streams, self.events = set(), set()
        self._next = 1 << 20
        self._local = threading.local()
        self.calls = []

    def current_device(self):
        """Return the calling thread's current device (CUDA's default is 0)."""
        return getattr(self._local, 'device', 0)

    def _handle(self):
        self._next += ALIGNMENT
        return self._next

    def set_device(self, device_id):
        if not 0 <= device_id < self.device_count_value:
            from dali_trt_ros.errors import CudaError
            raise CudaError(f'CUDA cudaSetDevice failed: invalid device ordinal {device_id}')
        self._local.device = device_id
        self.calls.append(('set_device', device_id, threading.get_ident()))

    def device_count(self):
        return self.device_count_value

    def runtime_version(self):
        return 12010

    def device_properties(self, device_id):
        return self.name, self.capability

    def stream_create(self):
        handle = self._handle()
        self.streams.add(handle)
        return handle

    def stream_destroy(self, stream):
        self.streams.remove(stream)

    def stream_synchronize(self, stream):
        assert stream in self.streams, f'unknown stream {stream}'

    def event_create(self):
        handle = self._handle()
        self.events.add(handle)
        return handle

    def event_destroy(self, event):
        self.events.remove(event)

    def event_record(self, event, stream):
        assert event in self.events and stream is not None

    def stream_wait_event(self, stream, event):
        assert stream in self.streams and event in self.events

    def malloc(self, nbytes):
        pointer = self._next + ALIGNMENT
        self._next = pointer + (int(nbytes) // ALIGNMENT + 1) * ALIGNMENT
        self.memory[pointer] = bytearray(int(nbytes))
        return pointer

    def free(self, pointer):
        del self.memory[pointer]

    def block(self, pointer, nbytes):
        """Return a view of ``nbytes`` of device memory at ``pointer`` (inside one allocation)."""
        for base, data in self.memory.items():
            if base <= pointer and pointer + nbytes <= base + len(data):
                return memoryview(data)[pointer - base:pointer - base + nbytes]
        raise AssertionError(f'{nbytes} bytes at {pointer:#x} are not in device memory')

    def memcpy_async(self, dst, src, nbytes, kind, stream):
        assert stream in self.streams, f'copy on unknown stream {stream}'
        if kind == 1:  # host to device
            self.block(dst, nbytes)[:] = ctypes.string_at(src, nbytes)
        elif kind == 2:  # device to host
            ctypes.memmove(dst, bytes(self.block(src, nbytes)), nbytes)
        else:
            self.block(dst, nbytes)[:] = bytes(self.block(src, nbytes))

    def upload(self, array):
        """Put a host array into new device memory; return the pointer (a test helper)."""
        array = np.ascontiguousarray(array)
        pointer = self.malloc(array.nbytes)
        self.block(pointer, array.nbytes)[:] = array.tobytes()
        return pointer


def make_tensorrt(version='8.6.1', num_dla_cores=0, cuda=None, inspector_error=None,
                  verbose_messages=200):
    """Return a fresh fake ``tensorrt`` module; its ``state`` records what happened."""
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    major_minor = tuple(int(p) for p in version.split('.')[:2])
    state = types.SimpleNamespace(calls=[], loggers=[], logger_warnings=[], builders=0,
                                  inspector_calls=0, calibration_rows=[], cuda=cuda,
                                  timing_cache_loaded=[], timing_cache_rejected=[],
                                  executions=[])
    trt.state = state

    def record(*call):
        state.calls.append(call)

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        def __init__(self):
            self._trt_initialized = True

        def log(self, severity, message):
            raise NotImplementedError

    ILogger.Severity = Severity
    trt.ILogger = ILogger

    class Logger(ILogger):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = list(Severity)

        def __init__(self, min_severity=Severity.WARNING):
            ILogger.__init__(self)
            self.min_severity = min_severity

        def log(self, severity, message):
            if severity <= self.min_severity:
                print(f'[TRT] {message}')
    trt.Logger = Logger

    def use_logger(who, logger):
        if not getattr(logger, '_trt_initialized', False):
            raise TypeError(f'{who}: logger did not call ILogger.__init__ (trampoline)')
        if state.loggers and state.loggers[0] is not logger:
            text = (f'The logger passed into {who} differs from one already provided for an '
                    'existing builder, runtime, or refitter.')
            state.logger_warnings.append(text)
            state.loggers[0].log(Severity.WARNING, text)
        if logger not in state.loggers:
            state.loggers.append(logger)

    def emit(logger, severity, message):
        logger.log(severity, message)

    trt.DataType = enum.IntEnum('DataType', {
        'FLOAT': 0, 'HALF': 1, 'INT8': 2, 'INT32': 3, 'BOOL': 4, 'UINT8': 5,
        **({'FP8': 6} if major_minor >= (8, 6) else {}),
        **({'BF16': 7, 'INT64': 8, 'INT4': 9} if major_minor >= (10, 0) else {})})
    trt.TensorIOMode = enum.IntEnum('TensorIOMode', {'NONE': 0, 'INPUT': 1, 'OUTPUT': 2})
    trt.BuilderFlag = enum.IntEnum('BuilderFlag', {
        'FP16': 0, 'INT8': 1, 'DEBUG': 2, 'GPU_FALLBACK': 3, 'REFIT': 5, 'TF32': 7,
        'OBEY_PRECISION_CONSTRAINTS': 10, 'PREFER_PRECISION_CONSTRAINTS': 11})
    trt.DeviceType = enum.IntEnum('DeviceType', {'GPU': 0, 'DLA': 1})
    trt.MemoryPoolType = enum.IntEnum('MemoryPoolType', {'WORKSPACE': 0, 'DLA_MANAGED_SRAM': 1})
    trt.TacticSource = enum.IntEnum('TacticSource', {
        'CUBLAS': 0, 'CUBLAS_LT': 1, 'CUDNN': 2, 'EDGE_MASK_CONVOLUTIONS': 3,
        'JIT_CONVOLUTIONS': 4})
    trt.NetworkDefinitionCreationFlag = enum.IntEnum('NetworkDefinitionCreationFlag',
                                                     {'EXPLICIT_BATCH': 0})
    trt.ProfilingVerbosity = enum.IntEnum('ProfilingVerbosity',
                                          {'LAYER_NAMES_ONLY': 0, 'NONE': 1, 'DETAILED': 2})
    trt.LayerInformationFormat = enum.IntEnum('LayerInformationFormat', {'ONELINE': 0, 'JSON': 1})
    numpy_of = {'FLOAT': np.float32, 'HALF': np.float16, 'INT8': np.int8, 'INT32': np.int32,
                'BOOL': np.bool_, 'UINT8': np.uint8, 'INT64': np.int64}
    trt_of_numpy = {np.dtype(v): k for k, v in numpy_of.items()}

    def nptype(datatype):
        if major_minor < (8, 6):
            # TensorRT 8.5 builds its table with np.bool, removed in NumPy 1.24.
            raise AttributeError("module 'numpy' has no attribute 'bool'")
        return numpy_of[datatype.name]
    trt.nptype = nptype

    # ---------------------------------------------------------------- plugins
    registry = types.SimpleNamespace(loaded=[])
    if major_minor >= (8, 6):
        registry.load_library = lambda path: registry.loaded.append(path) or object()
    trt.get_plugin_registry = lambda: registry
    trt.init_libnvinfer_plugins = lambda logger, namespace: record('init_libnvinfer_plugins')

    # ---------------------------------------------------------------- network
    class Tensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype
            self.dynamic_range = None

        def set_dynamic_range(self, low, high):
            self.dynamic_range = (low, high)
            return True

    class Layer:
        def __init__(self, name, op_type, outputs):
            self.name, self.type, self._outputs = name, op_type, outputs
            self.num_outputs = len(outputs)
            self._precision = None

        @property
        def precision(self):
            return self._precision if self._precision is not None else trt.DataType.FLOAT

        @precision.setter
        def precision(self, datatype):
            if not isinstance(datatype, trt.DataType):
                raise TypeError('precision must be a tensorrt.DataType')
            self._precision = datatype

        @property
        def precision_is_set(self):
            return self._precision is not None

        def get_output(self, index):
            return self._outputs[index]

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.inputs, self.outputs, self.layers = [], [], []
            self.model_path = None
            self.symbols = {}

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, index):
            return self.inputs[index]

        def get_output(self, index):
            return self.outputs[index]

        def get_layer(self, index):
            return self.layers[index]

    class OnnxParser:
        def __init__(self, network, logger):
            use_logger('OnnxParser', logger)
            self.network, self.errors = network, []

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, index):
            return self.errors[index]

        def parse_from_file(self, path):
            import onnx
            from onnx import helper
            record('parse_from_file', path)
            explicit = self.network.flags & (1 << trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
            if major_minor < (10, 0) and not explicit:
                self.errors.append('ONNX parser only supports networks with an explicit batch '
                                   'dimension')
                return False
            model = onnx.load(path)
            weights = {init.name for init in model.graph.initializer}

            def tensor(value):
                dims = [d.dim_value if d.HasField('dim_value') else -1
                        for d in value.type.tensor_type.shape.dim]
                self.network.symbols[value.name] = [
                    d.dim_param if not d.HasField('dim_value') else None
                    for d in value.type.tensor_type.shape.dim]
                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
                if dtype == np.int64 and major_minor < (10, 0):
                    dtype = np.dtype(np.int32)  # the 8.x parser casts INT64 I/O to INT32
                return Tensor(value.name, dims, trt.DataType[trt_of_numpy[dtype]])
            self.network.inputs = [tensor(v) for v in model.graph.input if v.name not in weights]
            self.network.outputs = [tensor(v) for v in model.graph.output]
            for index, node in enumerate(model.graph.node):
                outputs = [Tensor(name, (), trt.DataType.FLOAT) for name in node.output]
                self.network.layers.append(Layer(node.name or f'{node.op_type}_{index}',
                                                 node.op_type, outputs))
            self.network.model_path = path
            return True
    trt.OnnxParser = OnnxParser

    # ---------------------------------------------------------------- builder
    class OptimizationProfile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, best, high):
            self.shapes[name] = (tuple(low), tuple(best), tuple(high))

    class TimingCache:
        def __init__(self, data):
            self.entries = json.loads(data.decode()) if data else []

        def serialize(self):
            return memoryview(json.dumps(self.entries).encode())

    class BuilderConfig:
        def __init__(self):
            self.flags = 1 << int(trt.BuilderFlag.TF32)  # TensorRT's default
            self.pools = {}
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.int8_calibrator = None
            self.profiles = []
            self.calibration_profile = None
            self.tactic_sources = 0b11111
            self.timing_cache = None
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY

        def set_flag(self, flag):
            self.flags |= 1 << int(flag)

        def clear_flag(self, flag):
            self.flags &= ~(1 << int(flag))

        def get_flag(self, flag):
            return bool(self.flags & (1 << int(flag)))

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = int(size)

        def set_tactic_sources(self, mask):
            if mask >> len(trt.TacticSource):
                return False
            self.tactic_sources = mask
            return True

        def get_tactic_sources(self):
            return self.tactic_sources

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def set_calibration_profile(self, profile):
            self.calibration_profile = profile
            return True

        def create_timing_cache(self, data):
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            assert isinstance(ignore_mismatch, bool)
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

        def can_run_on_DLA(self, layer):
            return layer.type not in ('ReduceMean', 'Softmax')

    if major_minor >= (8, 6):
        BuilderConfig.builder_optimization_level = 3
    trt.IBuilderConfig = BuilderConfig

    class HostMemory:
        def __init__(self, data):
            self._data = data
            self.nbytes = len(data)

        def __bytes__(self):
            return self._data

    def calibrate(logger, config, network):
        """What TensorRT does with an IInt8EntropyCalibrator2 (see the module docstring)."""
        calibrator = config.int8_calibrator
        profile = config.calibration_profile or config.profiles[0]
        names = [tensor.name for tensor in network.inputs]
        record('calibrator.get_batch_size', calibrator.get_batch_size())
        cache = calibrator.read_calibration_cache()
        record('calibrator.read_calibration_cache', cache is not None)
        if cache:
            return True
        batches = 0
        while True:
            try:
                pointers = calibrator.get_batch(names)
            except Exception as error:  # the trampoline swallows it: data ends
                emit(logger, Severity.ERROR, f'Exception caught in get_batch(): {error}')
                pointers = None
            if not pointers:
                break
            assert len(pointers) == len(names), (pointers, names)
            for name, pointer in zip(names, pointers):
                best = profile.shapes[name][1]
                nbytes = int(np.prod(best)) * 4
                data = np.frombuffer(bytes(cuda.block(int(pointer), nbytes)), np.float32)
                state.calibration_rows.append(best[0])
                record('calibration batch', name, best, float(np.abs(data).max()))
            batches += 1
        if batches == 0:
            emit(logger, Severity.ERROR, 'Calibration failure occurred with no scaling factors '
                 'detected.')
            return False
        calibrator.write_calibration_cache(memoryview(json.dumps({'batches': batches}).encode()))
        return True

    class Builder:
        def __init__(self, logger):
            use_logger('createInferBuilder', logger)
            state.builders += 1
            self.logger = logger
            self.num_DLA_cores = num_dla_cores
            self.platform_has_fast_fp16 = True
            self.platform_has_fast_int8 = True
            record('Builder')

        def create_network(self, flags=0):
            return Network(flags)

        def create_builder_config(self):
            return BuilderConfig()

        def create_optimization_profile(self):
            return OptimizationProfile()

        def build_serialized_network(self, network, config):
            record('build_serialized_network')
            for index in range(verbose_messages):
                emit(self.logger, Severity.VERBOSE, f'tactic {index}')
            emit(self.logger, Severity.INFO, 'build started')
            if config.timing_cache is None:
                emit(self.logger, Severity.INFO, 'no timing cache set')
            else:
                entries = config.timing_cache.entries
                precision = 'int8' if config.get_flag(trt.BuilderFlag.INT8) else \
                    'fp16' if config.get_flag(trt.BuilderFlag.FP16) else 'fp32'
                graph = f'{network.model_path}:{precision}'
                if any(entry != graph for entry in entries):
                    # What TensorRT 8.6 did on the H100 with a cache of another network's
                    # Myelin graphs: two errors, and the build goes on without the cache.
                    state.timing_cache_rejected.append(list(entries))
                    emit(self.logger, Severity.ERROR, '1: [myelinCache.h::deserializeFromBuffer'
                         '::52] Error Code 1: Myelin (Myelin error from unknown graph)')
                    emit(self.logger, Severity.ERROR, '4: The timing cache will not be used!')
                else:
                    state.timing_cache_loaded.append(list(entries))
                    entries.append(graph)
            device = 'gpu'
            if config.default_device_type == trt.DeviceType.DLA:
                device = 'dla'
                if num_dla_cores == 0 or not 0 <= config.DLA_core < num_dla_cores:
                    emit(self.logger, Severity.ERROR, f'DLA core {config.DLA_core} not available')
                    return None
                if not (config.get_flag(trt.BuilderFlag.FP16)
                        or config.get_flag(trt.BuilderFlag.INT8)):
                    emit(self.logger, Severity.ERROR, 'DLA needs FP16 or INT8')
                    return None
            if config.get_flag(trt.BuilderFlag.INT8) and config.int8_calibrator is not None:
                if not calibrate(self.logger, config, network):
                    return None
            profile = config.profiles[0] if config.profiles else OptimizationProfile()
            description = {
                'version': version, 'model': network.model_path, 'device': device,
                'dla_core': config.DLA_core if device == 'dla' else None,
                'flags': config.flags, 'tactic_sources': config.tactic_sources,
                'optimization_level': getattr(config, 'builder_optimization_level', None),
                'inputs': [[t.name, list(t.shape), t.dtype.name] for t in network.inputs],
                'outputs': [[t.name, list(t.shape), t.dtype.name] for t in network.outputs],
                'profiles': {k: [list(s) for s in v] for k, v in profile.shapes.items()},
                'symbols': network.symbols,
                'layers': [layer.name + '\x01\x1f' for layer in network.layers],
                'fp16_layers': [layer.name for layer in network.layers
                                if layer.precision_is_set
                                and layer.precision == trt.DataType.HALF]
                if config.get_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
                or config.get_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS) else []}
            return HostMemory(ENGINE_MAGIC + json.dumps(description).encode())
    trt.Builder = Builder

    # ---------------------------------------------------------------- runtime
    class Inspector:
        def __init__(self, engine):
            self.engine = engine

        def get_engine_information(self, fmt):
            state.inspector_calls += 1
            if inspector_error is not None:
                raise inspector_error
            layers = [{'Name': name} for name in self.engine.description['layers']]
            # Raw control characters inside strings, as TensorRT 8.6 writes them.
            return json.dumps({'Layers': layers}, ensure_ascii=False)

    class ExecutionContext:
        def __init__(self, engine):
            self.engine = engine
            self.shapes, self.addresses = {}, {}

        def set_input_shape(self, name, shape):
            io = self.engine.io.get(name)
            if io is None or io['mode'] != trt.TensorIOMode.INPUT:
                return False
            low, high = self.engine.profile(name)[0], self.engine.profile(name)[2]
            if len(shape) != len(low) or any(
                    not lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def set_tensor_address(self, name, pointer):
            if name not in self.engine.io or int(pointer) % ALIGNMENT:
                return False
            self.addresses[name] = int(pointer)
            return True

        def get_tensor_shape(self, name):
            io = self.engine.io[name]
            if io['mode'] == trt.TensorIOMode.INPUT:
                return self.shapes.get(name, tuple(io['shape']))
            # A dynamic output axis takes the size of the input axis with the same ONNX
            # dimension name (as TensorRT's shape inference does), else the batch.
            sizes = {}
            for input_name, shape in self.shapes.items():
                for symbol, size in zip(self.engine.symbols.get(input_name, []), shape):
                    if symbol:
                        sizes[symbol] = size
            batch = next(iter(self.shapes.values()), (1,))[0]
            symbols = self.engine.symbols.get(name) or [None] * len(io['shape'])
            return tuple((sizes.get(symbol, batch) if d < 0 else d)
                         for d, symbol in zip(io['shape'], symbols))

        def execute_async_v3(self, stream):
            record('execute_async_v3', cuda.current_device(), self.engine.device_id)
            if cuda.current_device() != self.engine.device_id or stream not in cuda.streams:
                return False
            if set(self.addresses) != set(self.engine.io):
                return False
            session = self.engine.session()
            feeds = {}
            for name, io in self.engine.io.items():
                if io['mode'] == trt.TensorIOMode.INPUT:
                    shape, dtype = self.shapes.get(name, tuple(io['shape'])), io['dtype']
                    nbytes = int(np.prod(shape)) * dtype.itemsize
                    feeds[name] = np.frombuffer(
                        bytes(cuda.block(self.addresses[name], nbytes)), dtype).reshape(shape)
            names = [o.name for o in session.get_outputs()]
            for name, value in zip(names, session.run(names, feeds)):
                value = np.ascontiguousarray(value, self.engine.io[name]['dtype'])
                cuda.block(self.addresses[name], value.nbytes)[:] = value.tobytes()
            state.executions.append(self.engine.dla_core)
            return True

    class CudaEngine:
        def __init__(self, description, dla_core):
            self.description = description
            self.dla_core = dla_core
            self.device_id = cuda.current_device()
            self.io = {}
            for mode, items in ((trt.TensorIOMode.INPUT, description['inputs']),
                                (trt.TensorIOMode.OUTPUT, description['outputs'])):
                for name, shape, dtype in items:
                    self.io[name] = {'mode': mode, 'shape': shape,
                                     'datatype': trt.DataType[dtype],
                                     'dtype': np.dtype(numpy_of[dtype])}
            self.names = list(self.io)
            self.symbols = description.get('symbols', {})
            self._session = None

        num_io_tensors = property(lambda self: len(self.names))
        num_layers = property(lambda self: len(self.description['layers']))

        def profile(self, name):
            shapes = self.description['profiles'].get(name)
            return [tuple(s) for s in shapes] if shapes else [tuple(self.io[name]['shape'])] * 3

        def get_tensor_name(self, index):
            return self.names[index]

        def get_tensor_shape(self, name):
            return tuple(self.io[name]['shape'])

        def get_tensor_dtype(self, name):
            return self.io[name]['datatype']

        def get_tensor_mode(self, name):
            return self.io[name]['mode']

        def create_execution_context(self):
            return ExecutionContext(self)

        def create_engine_inspector(self):
            return Inspector(self)

        def session(self):
            if self._session is None:
                import onnxruntime
                self._session = onnxruntime.InferenceSession(
                    self.description['model'], providers=['CPUExecutionProvider'])
            return self._session

    class Runtime:
        def __init__(self, logger):
            use_logger('createInferRuntime', logger)
            self.logger = logger
            self._dla_core = -1
            self.num_DLA_cores = num_dla_cores
            record('Runtime')

        @property
        def DLA_core(self):
            return self._dla_core

        @DLA_core.setter
        def DLA_core(self, core):
            record('Runtime.DLA_core', core)
            self._dla_core = core

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            record('deserialize_cuda_engine', self._dla_core)
            if not data.startswith(ENGINE_MAGIC):
                emit(self.logger, Severity.ERROR, 'Serialization assertion failed (magic tag)')
                return None
            description = json.loads(data[len(ENGINE_MAGIC):])
            if description['version'] != version:
                emit(self.logger, Severity.ERROR, 'engine built by another TensorRT version')
                return None
            dla_core = None
            if description['device'] == 'dla':
                dla_core = max(self._dla_core, 0)  # the runtime's core, 0 if never set
            return CudaEngine(description, dla_core)
    trt.Runtime = Runtime

    # ---------------------------------------------------------------- calibrators
    class IInt8EntropyCalibrator2:
        def __init__(self):
            self._trt_initialized = True
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return trt
