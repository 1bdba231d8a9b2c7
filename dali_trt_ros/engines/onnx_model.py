"""Read an ONNX model's inputs and outputs without TensorRT (for planning and dry runs)."""

import os

import numpy as np

from dali_trt_ros.engines.base import TensorInfo
from dali_trt_ros.errors import ModelError


def _dims(value_info):
    dims = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField('dim_value'):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or None)
    return tuple(dims)


def read_model_io(model_path):
    """Return (inputs, outputs) of an ONNX model as TensorInfo lists.

    Uses the ``onnx`` package if present (no weights are run), else an ONNX Runtime CPU session.
    Graph inputs that are initializers (weights) are not inputs.
    """
    if not os.path.isfile(model_path):
        raise ModelError(f'model file {model_path!r} not found')
    try:
        import onnx
        from onnx import helper
    except ImportError:
        return _read_with_onnxruntime(model_path)
    try:
        model = onnx.load(model_path, load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others
        raise ModelError(f'{model_path!r} is not a readable ONNX model: {error}') from error
    weights = {init.name for init in model.graph.initializer}

    def infos(values):
        return [TensorInfo(v.name, _dims(v),
                           np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)))
                for v in values if v.name not in weights]
    return infos(model.graph.input), infos(model.graph.output)


def _read_with_onnxruntime(model_path):
    from dali_trt_ros.engines.onnxruntime_engine import numpy_dtype_of_ort_type
    import onnxruntime as ort
    try:
        session = ort.InferenceSession(model_path, providers=['CPUExecutionProvider'])
    except Exception as error:  # ORT raises its own exception types per failure
        raise ModelError(f'{model_path!r} is not a readable ONNX model: {error}') from error

    def infos(args):
        return [TensorInfo(a.name, tuple(a.shape), numpy_dtype_of_ort_type(a.type)) for a in args]
    return infos(session.get_inputs()), infos(session.get_outputs())
