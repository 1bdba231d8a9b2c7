"""The few CUDA runtime calls the engines need, from whichever Python binding is installed.

TensorRT needs device buffers and a stream, and engines must wait for the stream a DALI output
was written on. Bindings tried, in order: cuda-python (``cuda.bindings.runtime``, or
``cuda.cudart`` before 12.6), CuPy, then ``libcudart`` through ctypes (present wherever CUDA is,
JetPack included, so no binding has to be built there). Set DALI_TRT_ROS_CUDA_API to
``cuda-python``, ``cupy`` or ``ctypes`` to force one. Handles and pointers are plain ints.
"""

import ctypes
import glob
import os
import sys

from dali_trt_ros.errors import ModelError

HOST_TO_DEVICE = 1
DEVICE_TO_HOST = 2
DEVICE_TO_DEVICE = 3
_STREAM_NON_BLOCKING = 1
_EVENT_DISABLE_TIMING = 2


class CudaUnavailableError(ModelError):
    """No usable CUDA runtime binding (or no CUDA device) was found."""

    reason = 'cuda_unavailable'


class _CudaPython:
    name = 'cuda-python'

    def __init__(self):
        try:
            from cuda.bindings import runtime
        except ImportError:
            from cuda import cudart as runtime  # cuda-python < 12.6
        self._rt = runtime

    def _call(self, func, *args):
        result = getattr(self._rt, func)(*args)
        err, values = result[0], result[1:]
        if int(getattr(err, 'value', err)) != 0:
            raise ModelError(f'CUDA {func} failed: {err}')
        if not values:
            return None
        value = values[0]
        return value if len(values) == 1 else values

    def set_device(self, device_id):
        self._call('cudaSetDevice', device_id)

    def device_properties(self, device_id):
        props = self._call('cudaGetDeviceProperties', device_id)
        name = props.name.decode(errors='replace') if isinstance(props.name, bytes) else props.name
        return name.rstrip('\x00'), (int(props.major), int(props.minor))

    def stream_create(self):
        return int(self._call('cudaStreamCreateWithFlags', _STREAM_NON_BLOCKING))

    def stream_destroy(self, stream):
        self._call('cudaStreamDestroy', stream)

    def stream_synchronize(self, stream):
        self._call('cudaStreamSynchronize', stream)

    def event_create(self):
        return int(self._call('cudaEventCreateWithFlags', _EVENT_DISABLE_TIMING))

    def event_destroy(self, event):
        self._call('cudaEventDestroy', event)

    def event_record(self, event, stream):
        self._call('cudaEventRecord', event, stream)

    def stream_wait_event(self, stream, event):
        self._call('cudaStreamWaitEvent', stream, event, 0)

    def malloc(self, nbytes):
        return int(self._call('cudaMalloc', nbytes))

    def free(self, pointer):
        self._call('cudaFree', pointer)

    def memcpy_async(self, dst, src, nbytes, kind, stream):
        kinds = self._rt.cudaMemcpyKind
        kind_enum = {HOST_TO_DEVICE: kinds.cudaMemcpyHostToDevice,
                     DEVICE_TO_HOST: kinds.cudaMemcpyDeviceToHost,
                     DEVICE_TO_DEVICE: kinds.cudaMemcpyDeviceToDevice}[kind]
        self._call('cudaMemcpyAsync', dst, src, nbytes, kind_enum, stream)


class _CuPy:
    name = 'cupy'

    def __init__(self):
        from cupy.cuda import runtime
        self._rt = runtime

    def set_device(self, device_id):
        self._rt.setDevice(device_id)

    def device_properties(self, device_id):
        props = self._rt.getDeviceProperties(device_id)
        name = props['name']
        name = name.decode(errors='replace') if isinstance(name, bytes) else name
        return name.rstrip('\x00'), (int(props['major']), int(props['minor']))

    def stream_create(self):
        return int(self._rt.streamCreateWithFlags(_STREAM_NON_BLOCKING))

    def stream_destroy(self, stream):
        self._rt.streamDestroy(stream)

    def stream_synchronize(self, stream):
        self._rt.streamSynchronize(stream)

    def event_create(self):
        return int(self._rt.eventCreateWithFlags(_EVENT_DISABLE_TIMING))

    def event_destroy(self, event):
        self._rt.eventDestroy(event)

    def event_record(self, event, stream):
        self._rt.eventRecord(event, stream)

    def stream_wait_event(self, stream, event):
        self._rt.streamWaitEvent(stream, event, 0)

    def malloc(self, nbytes):
        return int(self._rt.malloc(nbytes))

    def free(self, pointer):
        self._rt.free(pointer)

    def memcpy_async(self, dst, src, nbytes, kind, stream):
        self._rt.memcpyAsync(dst, src, nbytes, kind, stream)


def _find_libcudart():
    names = ['libcudart.so', 'libcudart.so.13', 'libcudart.so.12', 'libcudart.so.11.0',
             'libcudart.so.10.2']
    # pip wheels (nvidia-cuda-runtime-*) keep the library inside site-packages.
    for entry in sys.path:
        names += sorted(glob.glob(os.path.join(entry, 'nvidia', '**', 'libcudart.so*'),
                                  recursive=True))
    names += sorted(glob.glob('/usr/local/cuda*/lib64/libcudart.so*'))
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise ImportError('libcudart not found')


class _CtypesCudart:
    name = 'ctypes'

    def __init__(self):
        self._lib = _find_libcudart()
        self._lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _check(self, func, *args):
        code = getattr(self._lib, func)(*args)
        if code != 0:
            text = self._lib.cudaGetErrorString(code).decode(errors='replace')
            raise ModelError(f'CUDA {func} failed: {text} ({code})')

    def _out(self, func, *args):
        handle = ctypes.c_void_p()
        self._check(func, ctypes.byref(handle), *args)
        return int(handle.value or 0)

    def set_device(self, device_id):
        self._check('cudaSetDevice', ctypes.c_int(device_id))

    def device_properties(self, device_id):
        major, minor = ctypes.c_int(), ctypes.c_int()
        # cudaDevAttrComputeCapabilityMajor = 75, ...Minor = 76 (stable since CUDA 5).
        self._check('cudaDeviceGetAttribute', ctypes.byref(major), 75, device_id)
        self._check('cudaDeviceGetAttribute', ctypes.byref(minor), 76, device_id)
        # cudaDeviceProp's first member is char name[256] in every CUDA version; the buffer
        # is larger than any version's struct.
        props = ctypes.create_string_buffer(16384)
        getter = 'cudaGetDeviceProperties_v2' if hasattr(self._lib, 'cudaGetDeviceProperties_v2') \
            else 'cudaGetDeviceProperties'
        self._check(getter, props, device_id)
        name = props.raw[:256].split(b'\x00', 1)[0].decode(errors='replace')
        return name, (major.value, minor.value)

    def stream_create(self):
        return self._out('cudaStreamCreateWithFlags', ctypes.c_uint(_STREAM_NON_BLOCKING))

    def stream_destroy(self, stream):
        self._check('cudaStreamDestroy', ctypes.c_void_p(stream))

    def stream_synchronize(self, stream):
        self._check('cudaStreamSynchronize', ctypes.c_void_p(stream))

    def event_create(self):
        return self._out('cudaEventCreateWithFlags', ctypes.c_uint(_EVENT_DISABLE_TIMING))

    def event_destroy(self, event):
        self._check('cudaEventDestroy', ctypes.c_void_p(event))

    def event_record(self, event, stream):
        self._check('cudaEventRecord', ctypes.c_void_p(event), ctypes.c_void_p(stream))

    def stream_wait_event(self, stream, event):
        self._check('cudaStreamWaitEvent', ctypes.c_void_p(stream), ctypes.c_void_p(event),
                    ctypes.c_uint(0))

    def malloc(self, nbytes):
        return self._out('cudaMalloc', ctypes.c_size_t(nbytes))

    def free(self, pointer):
        self._check('cudaFree', ctypes.c_void_p(pointer))

    def memcpy_async(self, dst, src, nbytes, kind, stream):
        self._check('cudaMemcpyAsync', ctypes.c_void_p(dst), ctypes.c_void_p(src),
                    ctypes.c_size_t(nbytes), ctypes.c_int(kind), ctypes.c_void_p(stream))


_BINDINGS = {'cuda-python': _CudaPython, 'cupy': _CuPy, 'ctypes': _CtypesCudart}
_loaded = {}


def cuda_runtime(preferred=None):
    """Return a CUDA runtime binding (cached); raise CudaUnavailableError saying what to install.

    ``preferred`` (or the DALI_TRT_ROS_CUDA_API variable) forces one binding by name.
    """
    choice = preferred or os.environ.get('DALI_TRT_ROS_CUDA_API') or None
    if choice is not None and choice not in _BINDINGS:
        raise CudaUnavailableError(f'unknown CUDA binding {choice!r}; use one of '
                                   f'{sorted(_BINDINGS)}')
    names = [choice] if choice else list(_BINDINGS)
    failures = []
    for name in names:
        if name in _loaded:
            return _loaded[name]
        try:
            binding = _BINDINGS[name]()
        except (ImportError, OSError, AttributeError) as error:
            failures.append(f'{name}: {error}')
            continue
        _loaded[name] = binding
        return binding
    raise CudaUnavailableError(
        'no CUDA runtime binding could be loaded (' + '; '.join(failures) + '). Install '
        'cuda-python (pip install cuda-python matching your CUDA major version) or CuPy, or put '
        'libcudart.so on LD_LIBRARY_PATH.')


def stream_handle(stream):
    """Return a producer's CUDA stream as an int handle, or None if it cannot be read.

    DALI and CAI producers report streams as ints, None, or objects with ``handle``/``ptr``.
    """
    if stream is None or isinstance(stream, bool):
        return None
    if isinstance(stream, int):
        return stream
    for attribute in ('handle', 'ptr', 'value', 'cuda_stream'):
        value = getattr(stream, attribute, None)
        if isinstance(value, int):
            return value
    try:
        return int(stream)
    except (TypeError, ValueError):
        return None
