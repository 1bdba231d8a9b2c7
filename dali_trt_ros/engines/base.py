"""The engine interface shared by every inference backend.

An engine has named inputs and outputs (:class:`TensorInfo`) and runs on a dict of feeds, each a
host ``numpy`` array or a :class:`DeviceBuffer` (memory already on the GPU, e.g. a DALI GPU
output). Outputs come back as host arrays, or as device buffers when asked, so GPU pipelines never
pass through host memory.
"""

import abc
from dataclasses import dataclass, field

import numpy as np

from dali_trt_ros.errors import BindingMismatchError


def is_dynamic_dim(dim):
    """Return True if a shape entry stands for a size fixed only at run time."""
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim < 0)


def format_shape(shape):
    """Return a shape as text, dynamic entries shown as their name or '?'."""
    if shape is None:
        return '(any)'
    parts = []
    for dim in shape:
        if isinstance(dim, str):
            parts.append(dim)
        elif is_dynamic_dim(dim):
            parts.append('?')
        else:
            parts.append(str(dim))
    return '(' + ', '.join(parts) + ')'


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and element type of one engine input or output.

    ``shape`` entries are ints; a dynamic entry is -1, None or a symbolic name (str). A shape of
    None (in a configured expectation) means any shape.
    ``dtype`` is a numpy dtype, or None where the configuration does not constrain it.
    """

    name: str
    shape: tuple
    dtype: object = None

    def __post_init__(self):
        if self.shape is not None:
            object.__setattr__(self, 'shape', tuple(self.shape))
        if self.dtype is not None:
            object.__setattr__(self, 'dtype', np.dtype(self.dtype))

    @property
    def is_static(self):
        """Return True if every dimension is known before run time."""
        return self.shape is not None and not any(is_dynamic_dim(dim) for dim in self.shape)

    def describe(self):
        """Return 'name shape dtype' text for error messages and logs."""
        dtype = self.dtype.name if self.dtype is not None else 'any'
        return f'{self.name} {format_shape(self.shape)} {dtype}'


@dataclass(frozen=True)
class DeviceBuffer:
    """A dense, C-contiguous tensor in GPU memory, described by its address.

    ``keepalive`` holds the object that owns the memory (a DALI tensor list, an ONNX Runtime
    OrtValue, a CuPy array): the memory stays valid only while this buffer is referenced.
    ``stream`` is the CUDA stream handle the producer wrote it on (None if already complete);
    engines wait for that stream before reading.
    """

    data_ptr: int
    shape: tuple
    dtype: object
    device_id: int = 0
    stream: object = None
    keepalive: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, 'shape', tuple(int(dim) for dim in self.shape))
        object.__setattr__(self, 'dtype', np.dtype(self.dtype))
        object.__setattr__(self, 'data_ptr', int(self.data_ptr))

    @property
    def nbytes(self):
        """Return the size of the tensor in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def rows(self, start, stop):
        """Return rows ``start:stop`` of the first axis as a buffer over the same memory."""
        if not 0 <= start < stop <= self.shape[0]:
            raise IndexError(f'rows {start}:{stop} outside a batch of {self.shape[0]}')
        if (start, stop) == (0, self.shape[0]):
            return self
        row_bytes = self.nbytes // self.shape[0]
        return DeviceBuffer(self.data_ptr + start * row_bytes, (stop - start, *self.shape[1:]),
                            self.dtype, self.device_id, stream=self.stream,
                            keepalive=self.keepalive)

    @classmethod
    def from_cuda_array(cls, array, device_id=0):
        """Wrap any object with ``__cuda_array_interface__`` (CuPy, Numba, DALI TensorGPU)."""
        try:
            interface = array.__cuda_array_interface__
        except AttributeError:
            raise TypeError(
                f'{type(array).__name__} has no __cuda_array_interface__; pass a GPU array '
                '(CuPy, DALI TensorGPU) or build a DeviceBuffer from its address') from None
        shape = tuple(interface['shape'])
        dtype = np.dtype(interface['typestr'])
        strides = interface.get('strides')
        if strides is not None and tuple(strides) != _contiguous_strides(shape, dtype.itemsize):
            raise BindingMismatchError(
                f'GPU array of shape {shape} is not C-contiguous (strides {tuple(strides)}); '
                'make a contiguous copy before feeding it to an engine')
        return cls(interface['data'][0], shape, dtype, device_id,
                   stream=interface.get('stream'), keepalive=array)


def _contiguous_strides(shape, itemsize):
    strides = []
    step = itemsize
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def device_buffer_from_dali(tensor_list_gpu):
    """Wrap a DALI GPU output (TensorListGPU or TensorGPU) as a zero-copy DeviceBuffer.

    The returned buffer keeps the DALI object alive, but DALI reuses its output memory on the
    next ``pipe.run()``: run the engine before running the pipeline again.
    """
    tensor = tensor_list_gpu
    if hasattr(tensor_list_gpu, 'as_tensor'):
        if hasattr(tensor_list_gpu, 'is_dense_tensor') and not tensor_list_gpu.is_dense_tensor():
            raise BindingMismatchError(
                'the DALI batch has samples of different shapes, so it is not one dense tensor; '
                'resize every sample to the model input size in the pipeline')
        tensor = tensor_list_gpu.as_tensor()
    if not hasattr(tensor, 'data_ptr') or not hasattr(tensor, 'shape'):
        raise TypeError(f'expected a DALI TensorListGPU or TensorGPU, got {type(tensor).__name__}')
    from nvidia.dali import types as dali_types
    dtype = dali_types.to_numpy_type(tensor.dtype)
    device_id = tensor.device_id() if hasattr(tensor, 'device_id') else 0
    stream = getattr(tensor, 'stream', None)
    # Keep the list (the owner of the memory), not only the view.
    return DeviceBuffer(tensor.data_ptr(), tuple(tensor.shape()), dtype, device_id,
                        stream=stream, keepalive=(tensor_list_gpu, tensor))


class Engine(abc.ABC):
    """An inference engine with named, typed inputs and outputs.

    Use it as a context manager, or call :meth:`close` to free its device memory and streams.
    """

    # Backends fill these lists (of TensorInfo) when they load the model.
    _inputs = ()
    _outputs = ()

    @property
    def inputs(self):
        """Return the input tensors as a list of TensorInfo."""
        return list(self._inputs)

    @property
    def outputs(self):
        """Return the output tensors as a list of TensorInfo."""
        return list(self._outputs)

    @abc.abstractmethod
    def run(self, feeds, outputs_on_device=False):
        """Run once on ``feeds`` (name -> ndarray or DeviceBuffer) and return name -> output.

        Outputs are numpy arrays, or DeviceBuffers when ``outputs_on_device`` is true; a device
        output stays valid until the next run of this engine.
        """

    @property
    def accepts_device_input(self):
        """Whether run() takes DeviceBuffers (GPU memory) as inputs without a host copy."""
        return False

    def close(self):
        """Release the backend's resources; the engine cannot run afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
