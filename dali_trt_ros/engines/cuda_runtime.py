"""The few CUDA runtime calls the engines need, through ``libcudart`` and ctypes.

One binding, chosen by what exists everywhere this package runs: JetPack puts ``libcudart.so``
under ``/usr/local/cuda/lib64`` on every Jetson (cuda-python and CuPy are not part of JetPack and
have no Jetson wheels for every JetPack release), pip's ``nvidia-cuda-runtime-*`` wheels put it
inside ``site-packages/nvidia/.../lib`` (that is how the staged TensorRT bundle on the GPU machine
carries ``libcudart.so.12``), and desktop CUDA installs it under ``/usr/local/cuda*/lib64``.
TensorRT links its own CUDA runtime statically, so nothing else is needed to drive it.

Every failure raises :class:`dali_trt_ros.errors.CudaError` with CUDA's own error text, so the
node counts CUDA failures under their own reason. Handles and pointers are plain ints.
"""

import ctypes
import glob
import os
import sys
import threading

from dali_trt_ros.errors import CudaError

HOST_TO_DEVICE = 1
DEVICE_TO_HOST = 2
DEVICE_TO_DEVICE = 3
_STREAM_NON_BLOCKING = 1
_EVENT_DISABLE_TIMING = 2
# cudaDeviceAttr values, stable since CUDA 5.
_ATTR_COMPUTE_CAPABILITY_MAJOR = 75
_ATTR_COMPUTE_CAPABILITY_MINOR = 76


class CudaUnavailableError(CudaError):
    """No CUDA runtime library could be loaded (or it found no usable device)."""

    reason = 'cuda_unavailable'


def libcudart_candidates():
    """Return the library names and paths to try, most specific first.

    Set DALI_TRT_ROS_LIBCUDART to a full path to use one library and nothing else.
    """
    forced = os.environ.get('DALI_TRT_ROS_LIBCUDART')
    if forced:
        return [forced]
    names = ['libcudart.so', 'libcudart.so.13', 'libcudart.so.12', 'libcudart.so.11.0',
             'libcudart.so.10.2']
    # pip wheels (nvidia-cuda-runtime-*) keep the library inside site-packages.
    for entry in sys.path:
        names += sorted(glob.glob(os.path.join(entry, 'nvidia', '**', 'libcudart.so*'),
                                  recursive=True))
    names += sorted(glob.glob('/usr/local/cuda*/lib64/libcudart.so*'))
    names += sorted(glob.glob('/usr/local/cuda*/targets/*/lib/libcudart.so*'))  # JetPack
    return names


def _load_libcudart():
    failures = []
    for name in libcudart_candidates():
        try:
            return ctypes.CDLL(name), name
        except OSError as error:
            failures.append(str(error))
    raise CudaUnavailableError(
        'libcudart (the CUDA runtime library) could not be loaded; on Jetson it comes with '
        'JetPack (/usr/local/cuda/lib64), elsewhere with the CUDA toolkit or pip install '
        'nvidia-cuda-runtime-cu12; add its folder to LD_LIBRARY_PATH or set '
        f'DALI_TRT_ROS_LIBCUDART to its path (tried: {"; ".join(failures[:3])})')


_VOID_P = ctypes.c_void_p
_SIGNATURES = {
    'cudaGetErrorString': ([ctypes.c_int], ctypes.c_char_p),
    'cudaGetErrorName': ([ctypes.c_int], ctypes.c_char_p),
    'cudaSetDevice': ([ctypes.c_int], ctypes.c_int),
    'cudaGetDeviceCount': ([ctypes.POINTER(ctypes.c_int)], ctypes.c_int),
    'cudaDeviceGetAttribute': ([ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int],
                               ctypes.c_int),
    'cudaRuntimeGetVersion': ([ctypes.POINTER(ctypes.c_int)], ctypes.c_int),
    'cudaStreamCreateWithFlags': ([ctypes.POINTER(_VOID_P), ctypes.c_uint], ctypes.c_int),
    'cudaStreamDestroy': ([_VOID_P], ctypes.c_int),
    'cudaStreamSynchronize': ([_VOID_P], ctypes.c_int),
    'cudaStreamWaitEvent': ([_VOID_P, _VOID_P, ctypes.c_uint], ctypes.c_int),
    'cudaEventCreateWithFlags': ([ctypes.POINTER(_VOID_P), ctypes.c_uint], ctypes.c_int),
    'cudaEventDestroy': ([_VOID_P], ctypes.c_int),
    'cudaEventRecord': ([_VOID_P, _VOID_P], ctypes.c_int),
    'cudaMalloc': ([ctypes.POINTER(_VOID_P), ctypes.c_size_t], ctypes.c_int),
    'cudaFree': ([_VOID_P], ctypes.c_int),
    'cudaMemcpyAsync': ([_VOID_P, _VOID_P, ctypes.c_size_t, ctypes.c_int, _VOID_P],
                        ctypes.c_int),
}


class CudaRuntime:
    """The CUDA runtime calls of this package, each raising CudaError on failure."""

    def __init__(self, library=None):
        if library is None:
            library, self.path = _load_libcudart()
        else:
            self.path = getattr(library, '_name', '?')
        self._lib = library
        for name, (argtypes, restype) in _SIGNATURES.items():
            function = getattr(library, name, None)
            if function is not None:
                function.argtypes, function.restype = argtypes, restype

    def _check(self, func, *args):
        code = getattr(self._lib, func)(*args)
        if code != 0:
            raise CudaError(f'CUDA {func} failed: {self.error_text(code)}')

    def error_text(self, code):
        """Return CUDA's name and description of an error code."""
        name = self._lib.cudaGetErrorName(code) or b'?'
        text = self._lib.cudaGetErrorString(code) or b'?'
        return f'{name.decode(errors="replace")} ({code}): {text.decode(errors="replace")}'

    def _out(self, func, *args):
        handle = _VOID_P()
        self._check(func, ctypes.byref(handle), *args)
        return int(handle.value or 0)

    def runtime_version(self):
        """Return the runtime version as an int, e.g. 12010 for CUDA 12.1."""
        version = ctypes.c_int()
        self._check('cudaRuntimeGetVersion', ctypes.byref(version))
        return version.value

    def device_count(self):
        """Return the number of CUDA devices visible to this process."""
        count = ctypes.c_int()
        self._check('cudaGetDeviceCount', ctypes.byref(count))
        return count.value

    def set_device(self, device_id):
        """Make ``device_id`` current on the calling thread (CUDA keeps it per thread)."""
        self._check('cudaSetDevice', int(device_id))

    def device_properties(self, device_id):
        """Return (name, (major, minor)) of a device."""
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check('cudaDeviceGetAttribute', ctypes.byref(major),
                    _ATTR_COMPUTE_CAPABILITY_MAJOR, int(device_id))
        self._check('cudaDeviceGetAttribute', ctypes.byref(minor),
                    _ATTR_COMPUTE_CAPABILITY_MINOR, int(device_id))
        # cudaDeviceProp's first member is char name[256] in every CUDA version; the buffer is
        # larger than any version's struct.
        props = ctypes.create_string_buffer(16384)
        getter = 'cudaGetDeviceProperties'
        if hasattr(self._lib, 'cudaGetDeviceProperties_v2'):  # CUDA 12+; the old name stays
            getter = 'cudaGetDeviceProperties_v2'
        function = getattr(self._lib, getter)
        function.argtypes, function.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_int
        self._check(getter, props, int(device_id))
        name = props.raw[:256].split(b'\x00', 1)[0].decode(errors='replace')
        return name, (major.value, minor.value)

    def stream_create(self):
        """Create a non-blocking stream; return its handle."""
        return self._out('cudaStreamCreateWithFlags', _STREAM_NON_BLOCKING)

    def stream_destroy(self, stream):
        """Destroy a stream."""
        self._check('cudaStreamDestroy', stream)

    def stream_synchronize(self, stream):
        """Wait until the work queued on ``stream`` is done."""
        self._check('cudaStreamSynchronize', stream)

    def event_create(self):
        """Create an event without timing; return its handle."""
        return self._out('cudaEventCreateWithFlags', _EVENT_DISABLE_TIMING)

    def event_destroy(self, event):
        """Destroy an event."""
        self._check('cudaEventDestroy', event)

    def event_record(self, event, stream):
        """Record ``event`` on ``stream``."""
        self._check('cudaEventRecord', event, stream)

    def stream_wait_event(self, stream, event):
        """Make ``stream`` wait for ``event`` without blocking the host."""
        self._check('cudaStreamWaitEvent', stream, event, 0)

    def malloc(self, nbytes):
        """Allocate device memory; return its address."""
        return self._out('cudaMalloc', int(nbytes))

    def free(self, pointer):
        """Free device memory."""
        self._check('cudaFree', pointer)

    def memcpy_async(self, dst, src, nbytes, kind, stream):
        """Queue a copy of ``nbytes`` (kind HOST_TO_DEVICE, DEVICE_TO_HOST, ...) on ``stream``."""
        self._check('cudaMemcpyAsync', dst, src, int(nbytes), int(kind), stream)


_runtime = None
_runtime_lock = threading.Lock()


def cuda_runtime():
    """Return the process-wide CudaRuntime; raise CudaUnavailableError saying what to install."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = CudaRuntime()
        return _runtime


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
