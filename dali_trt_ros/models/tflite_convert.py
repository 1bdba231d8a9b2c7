"""TFLite -> ONNX conversion with tflite2onnx, plus the two operators MediaPipe models need.

tflite2onnx (pure Python, no TensorFlow) lacks ``HARD_SWISH`` and MediaPipe's custom
``Convolution2DTransposeBias``. Both are registered here as extra tflite2onnx operator
converters, so the selfie segmentation model converts without TensorFlow:

* ``HARD_SWISH`` becomes ``x * HardSigmoid(x; alpha=1/6, beta=0.5)``: the same function, kept at
  ONNX opset 11 (``HardSwish`` itself needs opset 14) and made of layers TensorRT runs everywhere.
* ``Convolution2DTransposeBias`` (inputs: x, weights (out, h, w, in), bias; custom options: three
  int32 padding, stride_h, stride_w) becomes ``ConvTranspose`` with weights (in, out, h, w).
"""

import logging

from dali_trt_ros.errors import ModelError

LOG = logging.getLogger(__name__)

TRANSPOSE_CONV_BIAS = b'Convolution2DTransposeBias'
TFLITE_PADDING_VALID = 1
HARD_SWISH_PLACEHOLDER = 'HardSwish'
_REGISTERED = []


def register_mediapipe_operators():
    """Teach tflite2onnx HARD_SWISH and Convolution2DTransposeBias (idempotent)."""
    if _REGISTERED:
        return
    import tflite
    from tflite2onnx.layout import Layout
    from tflite2onnx.op.common import OpFactory, Operator

    class HardSwishConverter(Operator):
        """Elementwise hard swish; expanded into HardSigmoid * x after conversion."""

        TypeMapping = {tflite.BuiltinOperator.HARD_SWISH: HARD_SWISH_PLACEHOLDER}

        def __init__(self, tensor_factory, index):
            super().__init__(tensor_factory, index)
            self.setInited()

        @property
        def type(self):
            return HARD_SWISH_PLACEHOLDER

        def parse(self):
            self.parseInput(0)
            self.parseOutput(0)
            self.setParsed()

        def propagatableTensors(self):
            # Elementwise: layouts flow through unchanged.
            return self.inputs + self.outputs

        def transform(self):
            pass

    class TransposeConvBiasConverter(Operator):
        """MediaPipe's transposed convolution with bias, as ONNX ConvTranspose."""

        TypeMapping = {tflite.BuiltinOperator.CUSTOM: 'ConvTranspose'}

        def __init__(self, tensor_factory, index):
            super().__init__(tensor_factory, index)
            self.setInited()

        @property
        def type(self):
            return 'ConvTranspose'

        def parse(self):
            import numpy as np
            operator = self.tflite
            custom_code = self.model.OperatorCodes(operator.OpcodeIndex()).CustomCode()
            if custom_code != TRANSPOSE_CONV_BIAS:
                raise ModelError(f'TFLite custom operator {custom_code!r} has no ONNX '
                                 'conversion here; only Convolution2DTransposeBias is supported')
            padding, stride_h, stride_w = operator.CustomOptionsAsNumpy().view(np.int32)[:3]
            if padding != TFLITE_PADDING_VALID:
                raise ModelError('Convolution2DTransposeBias with SAME padding is not supported '
                                 '(only VALID, as in the MediaPipe segmentation models)')
            self.parseInput(0, Layout('NHWC', 'NCHW'))
            weights = self.parseInput(1, Layout('OHWI', 'IOHW'))
            self.parseInput(2, is_bias=True)
            self.parseOutput(0, Layout('NHWC', 'NCHW'))
            self.attrs['kernel_shape'] = [int(size) for size in weights.shape[1:3]]
            self.attrs['strides'] = [int(stride_h), int(stride_w)]
            self.setParsed()

        def propagatableTensors(self):
            # Like Conv: the operator fixes its own layouts.
            return []

        def transform(self):
            pass

    for converter in (HardSwishConverter, TransposeConvBiasConverter):
        if not any(code in OpFactory.registry for code in converter.TypeMapping):
            OpFactory.register(converter)
    _REGISTERED.append(True)


def expand_hard_swish(graph):
    """Replace placeholder HardSwish nodes by HardSigmoid + Mul (valid at opset 11)."""
    from onnx import helper
    nodes = []
    for node in graph.node:
        if node.op_type != HARD_SWISH_PLACEHOLDER:
            nodes.append(node)
            continue
        gate = node.output[0] + '/hard_sigmoid'
        nodes.append(helper.make_node('HardSigmoid', [node.input[0]], [gate],
                                      name=node.name + '/hard_sigmoid', alpha=1.0 / 6.0, beta=0.5))
        nodes.append(helper.make_node('Mul', [node.input[0], gate], [node.output[0]],
                                      name=node.name))
    del graph.node[:]
    graph.node.extend(nodes)


def tflite_to_onnx(tflite_bytes, metadata):
    """Convert a TFLite flatbuffer to a checked ONNX ModelProto with ``metadata`` attached."""
    import onnx
    import tflite
    from tflite2onnx.model import Model

    register_mediapipe_operators()
    # tflite2onnx warns once per fp16 tensor; the fp16 weights are folded to fp32 correctly.
    logging.getLogger('tflite2onnx').setLevel(logging.ERROR)
    converter = Model(tflite.Model.GetRootAsModel(bytearray(tflite_bytes), 0))
    try:
        converter.convert({})
    except (NotImplementedError, ValueError, AssertionError) as error:
        raise ModelError(f'tflite2onnx could not convert the model: {error!r}; check that '
                         'tflite2onnx==0.4.1 is installed') from error
    model = converter.onnx
    expand_hard_swish(model.graph)
    sort_by_name(model.graph)
    model.producer_name = 'dali_trt_ros.prepare_models (tflite2onnx)'
    set_metadata(model, metadata)
    onnx.checker.check_model(model)
    return model


def sort_by_name(graph):
    """Order initializers and value_info by name so equal models serialize to equal bytes.

    tflite2onnx collects them in Python sets, whose order changes between runs.
    """
    for container in (graph.initializer, graph.value_info):
        ordered = sorted(container, key=lambda item: item.name)
        copies = [type(item)() for item in ordered]
        for copy, item in zip(copies, ordered):
            copy.CopyFrom(item)
        del container[:]
        container.extend(copies)


def set_metadata(model, metadata):
    """Store string key/value pairs as ONNX metadata_props, in a stable order."""
    del model.metadata_props[:]
    for key in sorted(metadata):
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = str(metadata[key])
