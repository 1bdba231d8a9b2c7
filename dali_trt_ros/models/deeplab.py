"""A DeepLabV3-style segmentation network with UNTRAINED, seeded weights, built with onnx.helper.

It exists for shape, layer-placement (DLA) and speed work: its logits carry no meaning. The
network is a MobileNetV2 backbone at output stride 16 (the last stages dilated instead of
strided), an atrous spatial pyramid pooling (ASPP) head and a bilinear upsampling of the
per-class logits to the input size. Only static shapes and layers DLA can run are used: Conv
(plain, depthwise, dilated), Relu, Add, Concat, AveragePool and Resize with integer scales. The
image-level ASPP branch pools 8x8 windows (DLA's largest pooling window) rather than globally.

The same arguments always give the same bytes: weights come from a seeded generator, names come
from a counter, and metadata is written in a fixed order.
"""

from dali_trt_ros.errors import ConfigError

OPSET = 13
IR_VERSION = 7
INPUT_NAME = 'image'
OUTPUT_NAME = 'logits'
OUTPUT_STRIDE = 16
POOL_WINDOW = 8
ASPP_RATES = (6, 12, 18)
ASPP_CHANNELS = 256
# MobileNetV2 inverted-residual stages: (expansion, channels, repeats, stride, dilation).
# The two last stages are dilated rather than strided so the features stay at 1/16.
BACKBONE_STAGES = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 2, 1),
    (6, 96, 3, 1, 1),
    (6, 160, 3, 1, 2),
    (6, 320, 1, 1, 2),
)
STEM_CHANNELS = 32
UNTRAINED_NOTICE = ('UNTRAINED: random seeded weights for shape, DLA and speed work; '
                    'the outputs are meaningless')


class _GraphBuilder:
    """Accumulates nodes and seeded initializers under deterministic names."""

    def __init__(self, seed):
        import numpy as np
        self.np = np
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.initializers = []
        self.counter = 0

    def unique(self, kind):
        self.counter += 1
        return f'{kind}_{self.counter}'

    def constant(self, name, array):
        from onnx import numpy_helper
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def conv(self, tensor, in_channels, out_channels, kernel=1, stride=1, dilation=1,
             groups=1, relu=True):
        from onnx import helper
        np = self.np
        name = self.unique('conv')
        fan_in = in_channels // groups * kernel * kernel
        # He initialisation keeps activations in a sane range through the ReLU stack.
        weights = (self.rng.standard_normal(
            (out_channels, in_channels // groups, kernel, kernel), dtype=np.float32)
            * np.float32((2.0 / fan_in) ** 0.5))
        bias = np.zeros(out_channels, np.float32)
        pad = dilation * (kernel - 1) // 2
        self.nodes.append(helper.make_node(
            'Conv', [tensor, self.constant(name + '/weight', weights),
                     self.constant(name + '/bias', bias)], [name],
            name=name, kernel_shape=[kernel, kernel], strides=[stride, stride],
            dilations=[dilation, dilation], pads=[pad, pad, pad, pad], group=groups))
        return self.relu(name) if relu else name

    def relu(self, tensor):
        from onnx import helper
        name = self.unique('relu')
        self.nodes.append(helper.make_node('Relu', [tensor], [name], name=name))
        return name

    def add(self, first, second):
        from onnx import helper
        name = self.unique('add')
        self.nodes.append(helper.make_node('Add', [first, second], [name], name=name))
        return name

    def concat(self, tensors):
        from onnx import helper
        name = self.unique('concat')
        self.nodes.append(helper.make_node('Concat', list(tensors), [name], name=name, axis=1))
        return name

    def average_pool(self, tensor, window):
        from onnx import helper
        name = self.unique('avgpool')
        self.nodes.append(helper.make_node('AveragePool', [tensor], [name], name=name,
                                           kernel_shape=[window, window],
                                           strides=[window, window]))
        return name

    def upsample(self, tensor, factor, mode, output_name=None):
        from onnx import helper
        name = output_name or self.unique('resize')
        scales = self.constant(name + '/scales',
                               self.np.array([1, 1, factor, factor], self.np.float32))
        if mode == 'linear':
            attributes = {'mode': 'linear', 'coordinate_transformation_mode': 'half_pixel'}
        else:
            attributes = {'mode': 'nearest', 'coordinate_transformation_mode': 'asymmetric',
                          'nearest_mode': 'floor'}
        self.nodes.append(helper.make_node('Resize', [tensor, '', scales], [name], name=name,
                                           **attributes))
        return name


def _inverted_residual(builder, tensor, in_channels, expansion, out_channels, stride,
                       dilation):
    hidden = in_channels * expansion
    branch = tensor
    if expansion != 1:
        branch = builder.conv(branch, in_channels, hidden)
    branch = builder.conv(branch, hidden, hidden, kernel=3, stride=stride, dilation=dilation,
                          groups=hidden)
    branch = builder.conv(branch, hidden, out_channels, relu=False)
    if stride == 1 and in_channels == out_channels:
        return builder.add(tensor, branch)
    return branch


def _backbone(builder, tensor):
    tensor = builder.conv(tensor, 3, STEM_CHANNELS, kernel=3, stride=2)
    channels = STEM_CHANNELS
    for expansion, out_channels, repeats, stride, dilation in BACKBONE_STAGES:
        for repeat in range(repeats):
            tensor = _inverted_residual(builder, tensor, channels, expansion, out_channels,
                                        stride if repeat == 0 else 1, dilation)
            channels = out_channels
    return tensor, channels


def _aspp(builder, tensor, channels):
    branches = [builder.conv(tensor, channels, ASPP_CHANNELS)]
    for rate in ASPP_RATES:
        branches.append(builder.conv(tensor, channels, ASPP_CHANNELS, kernel=3, dilation=rate))
    pooled = builder.average_pool(tensor, POOL_WINDOW)
    pooled = builder.conv(pooled, channels, ASPP_CHANNELS)
    branches.append(builder.upsample(pooled, POOL_WINDOW, mode='nearest'))
    merged = builder.concat(branches)
    return builder.conv(merged, ASPP_CHANNELS * len(branches), ASPP_CHANNELS)


def check_input_size(height, width):
    """Raise ConfigError unless the input divides into the 8x8-pooled 1/16 feature map."""
    multiple = OUTPUT_STRIDE * POOL_WINDOW
    for key, value in (('height', height), ('width', width)):
        if not isinstance(value, int) or value <= 0 or value % multiple:
            raise ConfigError(f'deeplab {key} must be a positive multiple of {multiple}, '
                              f'got {value!r}')


def build_deeplabv3(num_classes=21, height=512, width=512, seed=0, metadata=None):
    """Return the untrained DeepLabV3-style ONNX ModelProto: 'image' NCHW -> 'logits' NCHW."""
    import onnx
    from onnx import TensorProto, helper

    from dali_trt_ros.models.tflite_convert import set_metadata

    check_input_size(height, width)
    builder = _GraphBuilder(seed)
    features, channels = _backbone(builder, INPUT_NAME)
    head = _aspp(builder, features, channels)
    head = builder.conv(head, ASPP_CHANNELS, ASPP_CHANNELS, kernel=3)
    class_logits = builder.conv(head, ASPP_CHANNELS, num_classes, relu=False)
    builder.upsample(class_logits, OUTPUT_STRIDE, mode='linear', output_name=OUTPUT_NAME)

    graph = helper.make_graph(
        builder.nodes, 'deeplabv3_mobilenetv2_untrained',
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT,
                                       [1, num_classes, height, width])],
        initializer=builder.initializers)
    graph.doc_string = UNTRAINED_NOTICE
    model = helper.make_model(graph, producer_name='dali_trt_ros.prepare_models (generated)',
                              opset_imports=[helper.make_opsetid('', OPSET)],
                              ir_version=IR_VERSION)
    model.doc_string = UNTRAINED_NOTICE
    properties = {'trained': 'false', 'notice': UNTRAINED_NOTICE, 'seed': str(seed),
                  'architecture': 'DeepLabV3-style: MobileNetV2 backbone (output stride 16), '
                                  f'ASPP rates {list(ASPP_RATES)}, bilinear x{OUTPUT_STRIDE}'}
    properties.update(metadata or {})
    set_metadata(model, properties)
    onnx.checker.check_model(model)
    return model
