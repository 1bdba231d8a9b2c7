"""Real ONNX models that misbehave on purpose, with their model descriptions (test fixtures).

``broken``: a valid model that ONNX Runtime loads, but every run raises (a Gather whose index
is computed from the pixels lands out of bounds), as a model with a run-time bug would.
``slow``: a valid model whose run takes about a second on a small CPU (chained 1024x1024
matrix products), to have a frame in flight while the node is asked to stop.
Both are single-channel "person probability" segmenters of a 64x64 input.
"""

import pathlib

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
SIDE = 64


def _graph_head():
    """Nodes shared by both models: the input and a (1,1,64,64) slice of it."""
    nodes = [
        helper.make_node('Slice', ['image', 'starts', 'ends', 'axes'], ['channel0']),
        helper.make_node('ReduceMean', ['image'], ['mean'], keepdims=0),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), 'starts'),
             numpy_helper.from_array(np.array([1], np.int64), 'ends'),
             numpy_helper.from_array(np.array([1], np.int64), 'axes')]
    return nodes, inits


def broken_model():
    """Every run fails inside ONNX Runtime: index 1000 + 1000 * mean is never in [0, 1)."""
    nodes, inits = _graph_head()
    nodes += [
        helper.make_node('Mul', ['mean', 'thousand'], ['scaled']),
        helper.make_node('Add', ['scaled', 'thousand'], ['shifted']),
        helper.make_node('Cast', ['shifted'], ['index'], to=TensorProto.INT64),
        helper.make_node('Gather', ['one_value', 'index'], ['picked']),
        helper.make_node('Mul', ['channel0', 'picked'], ['mask']),
    ]
    inits += [numpy_helper.from_array(np.array(1000.0, np.float32), 'thousand'),
              numpy_helper.from_array(np.array([1.0], np.float32), 'one_value')]
    return _model('broken', nodes, inits)


def slow_model(products=20, side=2048):
    """Chained side x side matrix products over a matrix that depends on the input."""
    nodes, inits = _graph_head()
    nodes += [helper.make_node('ConstantOfShape', ['matrix_shape'], ['ones'],
                               value=numpy_helper.from_array(np.array([1e-3], np.float32))),
              helper.make_node('Add', ['ones', 'mean'], ['m0'])]
    for k in range(products):
        nodes.append(helper.make_node('MatMul', [f'm{k}', 'm0'], [f'm{k + 1}']))
    nodes += [helper.make_node('ReduceMean', [f'm{products}'], ['total'], keepdims=0),
              helper.make_node('Mul', ['channel0', 'total'], ['scaled_mask']),
              helper.make_node('Sigmoid', ['scaled_mask'], ['mask'])]
    inits.append(numpy_helper.from_array(np.array([side, side], np.int64), 'matrix_shape'))
    return _model('slow', nodes, inits)


def _model(name, nodes, inits):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info('image', TensorProto.FLOAT,
                                                    [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info('mask', TensorProto.FLOAT, [1, 1, SIDE, SIDE])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_model(folder, kind):
    """Write <kind>.onnx and its description <kind>_model.yaml under folder; return the YAML."""
    folder = pathlib.Path(folder)
    model = {'broken': broken_model, 'slow': slow_model}[kind]()
    onnx_path = folder / f'{kind}.onnx'
    onnx.save(model, str(onnx_path))
    description = {
        'name': f'{kind}_segmenter',
        'description': f'test fixture: {kind} single-channel segmenter',
        'trained': False,
        'source': {'generator': 'test/fault_models.py'},
        'onnx': str(onnx_path),
        'labels': str(REPO / 'config' / 'labels' / 'selfie_segmentation.txt'),
        'input': {'name': 'image', 'width': SIDE, 'height': SIDE, 'resize': 'stretch',
                  'interpolation': 'linear', 'antialias': False, 'color': 'RGB',
                  'layout': 'NCHW', 'dtype': 'float32', 'mean': [0.0, 0.0, 0.0],
                  'std': [255.0, 255.0, 255.0]},
        'outputs': ['mask'],
        'decoder': {'type': 'segmentation', 'kind': 'probability', 'layout': 'NCHW',
                    'probability_threshold': 0.5, 'output': 'mask'},
    }
    path = folder / f'{kind}_model.yaml'
    path.write_text(yaml.safe_dump(description))
    return path
