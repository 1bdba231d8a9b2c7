"""Model variants made at preparation time: FP16 weights and post-processing inside the graph.

Post-processing is appended to the ONNX graph rather than written with CuPy or DALI on the
engine's output because the graph runs wherever the model runs: ONNX Runtime (CPU or CUDA),
TensorRT on an x86 GPU and TensorRT on Jetson (where CuPy is often absent and DALI has no
operator for an argmax over channels). So only small results cross to the host:

* segmentation: the class map (ArgMax for logits, ``probability > threshold`` for a single
  probability channel) at output resolution, and the same map brought to the original frame size
  by two Gathers with per-frame row/column indices fed as extra inputs. The indices are computed
  on the host by ``decoders.segmentation.source_indices``, the function the host path uses, so
  the device mask equals the host mask by construction (letterbox crops included). The
  threshold is an input too, so it stays adjustable at run time.
* SSD: class scores activated (sigmoid/softmax) on the device, the background column dropped,
  and the K best (anchor, class) scores selected by TopK; the host applies the score threshold to
  those K, decodes their boxes and runs NMS. Identical to the host path whenever at most K
  candidates pass the threshold (otherwise equal to it with ``pre_nms_top_k: K``).

Every variant also takes any batch size (the base models are exported for batch 1): the batch
axis of inputs and outputs becomes dynamic, Reshape targets copy it (0 instead of 1) and Resize
by constant ``sizes`` becomes Resize by scales, so four cameras' frames run as one batch.

Variants are written next to the base model (``<stem>.<variant>.onnx``) and rebuilt when the base
file changes (its sha256 is recorded in the variant's metadata).
"""

import logging
import warnings
from pathlib import Path

import numpy as np

from dali_trt_ros import validation as check
from dali_trt_ros.decoders.device_outputs import (
    CANDIDATE_INDICES, CANDIDATE_SCORES, COLUMNS_INPUT, DEFAULT_CANDIDATES, LABEL_MAP_OUTPUT,
    MASK_OUTPUT, ROWS_INPUT, THRESHOLD_INPUT)
from dali_trt_ros.errors import ConfigError, ModelError

LOG = logging.getLogger(__name__)
POSTPROCESS = ('host', 'device')
PRECISIONS = ('fp32', 'fp16')
RECIPE_VERSION = '3'


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModelError('the onnx package is needed to make model variants; pip install '
                         'onnx') from None
    return onnx


def _output_info(model, name):
    """Return (elem_type, [dims]) of graph output ``name``."""
    for output in model.graph.output:
        if output.name == name:
            tensor_type = output.type.tensor_type
            dims = [d.dim_value if d.HasField('dim_value') else (d.dim_param or None)
                    for d in tensor_type.shape.dim]
            return tensor_type.elem_type, dims
    known = [o.name for o in model.graph.output]
    raise ModelError(f'the model has no output {name!r} (it has {known}); fix decoder.output')


def _replace_outputs(model, removed, added):
    """Drop graph outputs named in ``removed``; append value infos ``added``."""
    kept = [o for o in model.graph.output if o.name not in removed]
    del model.graph.output[:]
    model.graph.output.extend(kept + list(added))
    # A stale type annotation of a former output would contradict the new consumers' types.
    infos = [v for v in model.graph.value_info if v.name not in removed]
    del model.graph.value_info[:]
    model.graph.value_info.extend(infos)


def _channel_axis(dims, layout, kind):
    """Channel axis of a 4-D segmentation output, by the host decoder's rules."""
    if kind == 'logits':
        return 1 if layout == 'NCHW' else 3
    if len(dims) == 3:
        return None
    for axis in ((1, 3) if layout == 'NCHW' else (3, 1)):
        if dims[axis] == 1:
            return axis
    raise ModelError(f'a {kind} segmentation output must have one channel, got {dims}')


def append_segmentation_postprocess(model, output, kind='logits', layout='NCHW'):
    """Append class map + resize-to-original to ``model`` (an onnx ModelProto, changed in place).

    Adds inputs ROWS_INPUT, COLUMNS_INPUT (and THRESHOLD_INPUT for kind probability) and replaces
    output ``output`` with LABEL_MAP_OUTPUT and MASK_OUTPUT.
    """
    onnx = _onnx()
    helper, tp = onnx.helper, onnx.TensorProto
    elem_type, dims = _output_info(model, output)
    nodes, inputs = [], [
        helper.make_tensor_value_info(ROWS_INPUT, tp.INT32, ['orig_height']),
        helper.make_tensor_value_info(COLUMNS_INPUT, tp.INT32, ['orig_width'])]
    axis = _channel_axis(dims, layout, kind)
    if kind == 'logits':
        nodes.append(helper.make_node('ArgMax', [output], ['dtr_argmax'], axis=axis,
                                      keepdims=0))
        nodes.append(helper.make_node('Cast', ['dtr_argmax'], ['dtr_classes'], to=tp.INT32))
        spatial = [d for i, d in enumerate(dims) if i not in (0, axis)]
    elif kind == 'probability':
        inputs.append(helper.make_tensor_value_info(THRESHOLD_INPUT, tp.FLOAT, [1]))
        squeezed = output
        if axis is not None:
            squeezed = 'dtr_probability'
            nodes.append(helper.make_node('Squeeze', [output], [squeezed], axes=[axis]))
        threshold = THRESHOLD_INPUT
        if elem_type != tp.FLOAT:
            threshold = 'dtr_threshold_cast'
            nodes.append(helper.make_node('Cast', [THRESHOLD_INPUT], [threshold], to=elem_type))
        nodes.append(helper.make_node('Greater', [squeezed, threshold], ['dtr_foreground']))
        nodes.append(helper.make_node('Cast', ['dtr_foreground'], ['dtr_classes'], to=tp.INT32))
        spatial = [d for i, d in enumerate(dims) if i not in (0, axis)]
    else:
        raise ConfigError(f'device post-processing supports decoder.kind logits and probability, '
                          f'not {kind!r}; use postprocess: host')
    # Gather on int32 (uint8 gathers are not supported by every TensorRT version), cast last.
    nodes += [
        helper.make_node('Cast', ['dtr_classes'], [LABEL_MAP_OUTPUT], to=tp.UINT8),
        helper.make_node('Gather', ['dtr_classes', ROWS_INPUT], ['dtr_rows_taken'], axis=1),
        helper.make_node('Gather', ['dtr_rows_taken', COLUMNS_INPUT], ['dtr_mask_i32'], axis=2),
        helper.make_node('Cast', ['dtr_mask_i32'], [MASK_OUTPUT], to=tp.UINT8)]
    model.graph.node.extend(nodes)
    model.graph.input.extend(inputs)
    batch = dims[0]
    _replace_outputs(model, {output}, [
        helper.make_tensor_value_info(LABEL_MAP_OUTPUT, tp.UINT8, [batch, *spatial]),
        helper.make_tensor_value_info(MASK_OUTPUT, tp.UINT8,
                                      [batch, 'orig_height', 'orig_width'])])
    return model


def append_ssd_candidates(model, score_output, activation='sigmoid', background_index=0,
                          candidates=DEFAULT_CANDIDATES):
    """Replace ``score_output`` (N, A, C) by the K best activated foreground scores and indices.

    Returns (K actually used, at most A * foreground classes; C).
    """
    onnx = _onnx()
    helper, tp, numpy_helper = onnx.helper, onnx.TensorProto, onnx.numpy_helper
    elem_type, dims = _output_info(model, score_output)
    if len(dims) != 3 or not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise ModelError(f'SSD score output {score_output!r} must be (N, anchors, classes) with '
                         f'static anchors and classes for device candidates, got {dims}')
    anchors, classes = dims[1], dims[2]
    foreground = [c for c in range(classes) if c != background_index]
    k = int(min(candidates, anchors * len(foreground)))
    nodes = []
    source = score_output
    if elem_type != tp.FLOAT:
        nodes.append(helper.make_node('Cast', [source], ['dtr_scores_f32'], to=tp.FLOAT))
        source = 'dtr_scores_f32'
    if activation == 'sigmoid':
        nodes.append(helper.make_node('Sigmoid', [source], ['dtr_scores']))
    elif activation == 'softmax':
        nodes.append(helper.make_node('Softmax', [source], ['dtr_scores'], axis=2))
    elif activation == 'none':
        nodes.append(helper.make_node('Identity', [source], ['dtr_scores']))
    else:
        raise ConfigError(f'unknown score activation {activation!r}')
    initializers = [
        numpy_helper.from_array(np.asarray(foreground, np.int64), 'dtr_foreground_columns'),
        numpy_helper.from_array(np.asarray([0, -1], np.int64), 'dtr_flat_shape'),
        numpy_helper.from_array(np.asarray([k], np.int64), 'dtr_k')]
    nodes += [
        helper.make_node('Gather', ['dtr_scores', 'dtr_foreground_columns'],
                         ['dtr_foreground_scores'], axis=2),
        helper.make_node('Reshape', ['dtr_foreground_scores', 'dtr_flat_shape'],
                         ['dtr_flat_scores']),
        helper.make_node('TopK', ['dtr_flat_scores', 'dtr_k'],
                         [CANDIDATE_SCORES, CANDIDATE_INDICES], axis=1, largest=1, sorted=1)]
    model.graph.initializer.extend(initializers)
    model.graph.node.extend(nodes)
    _replace_outputs(model, {score_output}, [
        helper.make_tensor_value_info(CANDIDATE_SCORES, tp.FLOAT, [dims[0], k]),
        helper.make_tensor_value_info(CANDIDATE_INDICES, tp.INT64, [dims[0], k])])
    return k, classes


def make_batch_dynamic(model):
    """Let a batch-1 model take any batch: inputs/outputs, Reshape targets, Resize sizes.

    Changes ``model`` in place and returns it. Raises ModelError where a Resize's input shape
    cannot be inferred (its ``sizes`` would pin the batch).
    """
    onnx = _onnx()
    numpy_helper = onnx.numpy_helper
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Reshape' and node.input[1] in initializers \
                and node.input[0] not in initializers:
            target = numpy_helper.to_array(initializers[node.input[1]]).copy()
            if target.size and target[0] == 1:
                target[0] = 0  # 0: take the batch from the input
                initializers[node.input[1]].CopyFrom(
                    numpy_helper.from_array(target, node.input[1]))
        elif node.op_type == 'Resize' and len(node.input) >= 4 and node.input[3]:
            sizes = initializers.get(node.input[3])
            source = shapes.get(node.input[0])
            if sizes is None or not source or not all(source):
                raise ModelError(f'Resize {node.name!r}: cannot make its sizes batch-free '
                                 f'(input shape {source}); keep batch 1')
            scales = (numpy_helper.to_array(sizes).astype(np.float64)
                      / np.asarray(source, np.float64)).astype(np.float32)
            name = f'{node.name}_dtr_scales'
            model.graph.initializer.append(numpy_helper.from_array(scales, name))
            node.input[2], node.input[3] = name, ''
            if not any(sizes.name in n.input for n in model.graph.node):
                model.graph.initializer.remove(sizes)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField('dim_value') and dims[0].dim_value == 1:
            dims[0].dim_param = 'batch'
    del model.graph.value_info[:]  # batch-1 annotations of intermediate tensors
    return model


def convert_to_fp16(model):
    """FP16 weights and arithmetic, float32 inputs and outputs (casts at the edges)."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ModelError('FP16 variants need onnxconverter-common; pip install '
                         'onnxconverter-common') from None
    onnx = _onnx()
    float_outputs = {o.name for o in model.graph.output
                     if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    with warnings.catch_warnings():
        # It warns for every weight below float16's range (truncated to 1e-7): expected here.
        warnings.filterwarnings('ignore', message='the float32 number', category=UserWarning)
        model = float16.convert_float_to_float16(model, keep_io_types=True)
    # keep_io_types misses outputs produced by ops the converter keeps in float16 (e.g. the
    # DeepLab Resize): cast those back so every variant has the base model's output types.
    for output in model.graph.output:
        tensor_type = output.type.tensor_type
        if output.name in float_outputs and tensor_type.elem_type != onnx.TensorProto.FLOAT:
            inner = output.name + '_dtr_fp16'
            for node in model.graph.node:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            model.graph.node.append(onnx.helper.make_node(
                'Cast', [inner], [output.name], to=onnx.TensorProto.FLOAT))
            tensor_type.elem_type = onnx.TensorProto.FLOAT
    return model


def variant_name(postprocess='host', precision='fp32'):
    """Return the file-name tag of a variant ('' for the base model)."""
    check.choice(postprocess, POSTPROCESS, 'postprocess')
    check.choice(precision, PRECISIONS, 'precision')
    parts = [p for p, base in ((precision, 'fp32'), (postprocess, 'host')) if p != base]
    return '.'.join(parts).replace('device', 'devpost')


def candidate_count(decoder_config):
    """K of the SSD device candidates: the decoder's pre_nms_top_k, else DEFAULT_CANDIDATES."""
    return int(decoder_config.get('pre_nms_top_k') or DEFAULT_CANDIDATES)


def make_variant(model, decoder_config, postprocess, precision):
    """Return (variant of an onnx ModelProto for one decoder configuration, metadata dict).

    The metadata says what a decoder needs to know about the appended graph.
    """
    metadata = {}
    make_batch_dynamic(model)
    if precision == 'fp16':
        model = convert_to_fp16(model)
    if postprocess == 'device':
        kind = decoder_config.get('type')
        if kind == 'segmentation':
            append_segmentation_postprocess(model, decoder_config['output'],
                                            decoder_config.get('kind', 'logits'),
                                            decoder_config.get('layout', 'NCHW'))
            height, width = _output_info(model, LABEL_MAP_OUTPUT)[1][1:]
            metadata.update(dtr_map_width=str(width), dtr_map_height=str(height))
        elif kind == 'ssd' and decoder_config.get('layout', 'raw') == 'raw':
            score = decoder_config.get('score') or {}
            count, columns = append_ssd_candidates(
                model, decoder_config.get('score_output', 'raw_outputs/class_predictions'),
                score.get('activation', 'sigmoid'), score.get('background_index', 0),
                candidate_count(decoder_config))
            metadata.update(dtr_candidates=str(count), dtr_score_columns=str(columns))
        else:
            raise ConfigError(f'device post-processing is not available for decoder type '
                              f'{kind!r} layout {decoder_config.get("layout")!r}')
    return model, metadata


def variant_metadata(path):
    """Return the dtr_* metadata a variant file recorded (name -> text)."""
    model = _onnx().load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props if p.key.startswith('dtr_')}


def prepare_variant(description, postprocess='host', precision='fp32'):
    """Return the path of a model variant, writing it next to the base model when needed.

    The base model must be prepared (``prepare_models``); the variant is rebuilt when the
    base's sha256 or this module's recipe version differ from what the variant recorded.
    """
    tag = variant_name(postprocess, precision)
    base = Path(description.onnx_path)
    if not tag:
        return base
    if not base.is_file():
        raise ModelError(f'{base} is missing; run "prepare_models {description.name}" first')
    from dali_trt_ros.models.cache import sha256_of_file, write_atomically
    path = base.with_name(f'{base.stem}.{tag}.onnx')
    stamp = f'{sha256_of_file(base)}:{RECIPE_VERSION}'
    onnx = _onnx()
    if path.is_file():
        if variant_metadata(path).get('dtr_variant_of') == stamp:
            return path
        LOG.info('%s was made from another base model or recipe; rebuilding it', path)
    model, metadata = make_variant(onnx.load(str(base)), description.decoder, postprocess,
                                   precision)
    for key, value in dict(metadata, dtr_variant_of=stamp).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    write_atomically(path, model.SerializeToString())
    LOG.info('%s: wrote variant %s', description.name, path)
    return path
