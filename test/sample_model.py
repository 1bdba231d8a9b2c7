"""Test fixture: a small real ONNX model (conv + relu + mean), built with ``onnx.helper``."""

import numpy as np


def write_conv_relu_model(path, batch=1, channels=3, size=8, filters=4, seed=0):
    """Write a conv(3x3, pad 1) + relu + global-average model; return (path, weight, bias).

    Input 'images' (batch, channels, size, size) float32; outputs 'features'
    (batch, filters, size, size) and 'pooled' (batch, filters). ``batch`` may be a str for a
    dynamic batch dimension.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((filters, channels, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['images', 'weight', 'bias'], ['conv'], pads=[1, 1, 1, 1]),
         helper.make_node('Relu', ['conv'], ['features']),
         helper.make_node('ReduceMean', ['features'], ['pooled'], axes=[2, 3], keepdims=0)],
        'conv_relu',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT,
                                       [batch, channels, size, size])],
        [helper.make_tensor_value_info('features', TensorProto.FLOAT,
                                       [batch, filters, size, size]),
         helper.make_tensor_value_info('pooled', TensorProto.FLOAT, [batch, filters])],
        [numpy_helper.from_array(weight, 'weight'), numpy_helper.from_array(bias, 'bias')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path), weight, bias
