"""The ROS-free perception chain: one decode feeds several models, run at the same time.

    frames -> preprocessor (one decode, one resized/normalized tensor per model)
           -> engines, one thread each (their own CUDA streams: GPU and DLA overlap)
           -> decoders (boxes and masks in original-image pixels)

Post-processing runs on the host (NumPy) or, with ``postprocess='device'``, inside the model
graph (``models.variants``): then only the final masks and the SSD candidates leave the engine.

The ROS node is a thin layer over :class:`PerceptionPipeline`; tests and tools use it directly.
"""

import concurrent.futures
import dataclasses
import logging
import time

from dali_trt_ros import validation
from dali_trt_ros.decoders import decoder_from_config, SegmentationDecoder
from dali_trt_ros.decoders.device_outputs import COLUMNS_INPUT, ROWS_INPUT
from dali_trt_ros.engines import device_buffer_from_dali, load_engine
from dali_trt_ros.engines.base import is_dynamic_dim
from dali_trt_ros.errors import ConfigError, FrameError, InferenceError, PerceptionError
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.models import load_model_description
from dali_trt_ros.models.variants import prepare_variant, variant_metadata
from dali_trt_ros.preprocess import create_preprocessor, InputSpec, PreprocessSpec

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class PipelineModel:
    """One model: its description, engine and decoder."""

    description: object
    engine: object
    decoder: object

    @property
    def name(self):
        """Model name, also the key of its preprocessed tensor."""
        return self.description.name

    @property
    def is_segmentation(self):
        """Whether the decoder produces masks rather than boxes."""
        return isinstance(self.decoder, SegmentationDecoder)


@dataclasses.dataclass
class FrameResult:
    """What the models made of one input frame (or why the frame was rejected).

    ``error`` is set when the frame itself could not be preprocessed (no model ran on it).
    ``model_errors`` maps a model that failed on this frame's batch to its error; the other
    models' results are still present. ``timings_ms`` holds the wall-clock milliseconds of the
    batch this frame was part of: ``preprocess``, ``inference.<model>``, ``postprocess.<model>``
    (every frame of a batch shares them; ``batch_size`` says how many frames that was).
    """

    index: int
    detections: dict = dataclasses.field(default_factory=dict)     # model -> Detections
    segmentations: dict = dataclasses.field(default_factory=dict)  # model -> SegmentationResult
    error: FrameError = None
    model_errors: dict = dataclasses.field(default_factory=dict)   # model -> PerceptionError
    timings_ms: dict = dataclasses.field(default_factory=dict)
    batch_size: int = 0


def engine_config_for(description, backend, providers, device_id, overrides=None,
                      model_path=None, outputs=None, max_batch=1):
    """Engine configuration for a described model; `overrides` may set any engine key.

    ``model_path`` and ``outputs`` replace the description's for a model variant; for
    TensorRT its dynamic inputs get profiles (tensorrt_profiles).
    """
    config = {'model': str(model_path or description.onnx_path), 'backend': backend,
              'device_id': device_id, 'inputs': [{'name': description.input['name']}],
              'outputs': [{'name': name} for name in (outputs or description.outputs)]}
    if backend == 'tensorrt' and model_path is not None:
        config['inputs'] = tensorrt_profiles(model_path, description.input['name'], max_batch)
    if backend == 'onnxruntime':
        config['providers'] = list(providers)
    config.update(overrides or {})
    return config


# TensorRT needs a shape range for the per-frame row/column index inputs of a device
# post-processing graph (variants.append_segmentation_postprocess); it reserves activation memory
# for the largest, so the range stops at 4096 (4K frames) rather than the frame pixel budget.
# A larger frame fails in that model alone ("outside the optimization profile") and is counted.
DEVICE_POSTPROCESS_SIDES = {ROWS_INPUT: (1, 1080, 4096), COLUMNS_INPUT: (1, 1920, 4096)}


def tensorrt_profiles(model_path, image_input, max_batch=1):
    """Return TensorRT input specs for a model variant's inputs.

    The image input of a variant has a dynamic batch axis (any batch size on ONNX Runtime):
    TensorRT gets 1..max_batch (opt max_batch; fixed at 1 for a batch-1 pipeline). The per-frame
    index inputs of device post-processing get DEVICE_POSTPROCESS_SIDES.
    """
    from dali_trt_ros.engines.base import is_dynamic_dim
    from dali_trt_ros.engines.onnx_model import read_model_io
    inputs, _ = read_model_io(str(model_path))
    specs = []
    for tensor in inputs:
        if tensor.name in DEVICE_POSTPROCESS_SIDES:
            low, best, high = DEVICE_POSTPROCESS_SIDES[tensor.name]
            specs.append({'name': tensor.name, 'min_shape': [low], 'opt_shape': [best],
                          'max_shape': [high]})
        elif tensor.name == image_input and tensor.shape and is_dynamic_dim(tensor.shape[0]) \
                and not any(is_dynamic_dim(d) for d in tensor.shape[1:]):
            rest = [int(d) for d in tensor.shape[1:]]
            specs.append({'name': tensor.name, 'min_shape': [1, *rest],
                          'opt_shape': [max_batch, *rest], 'max_shape': [max_batch, *rest]})
        elif tensor.name == image_input:
            specs.append({'name': tensor.name})
    return specs


class PerceptionPipeline:
    """Preprocess once, run every model concurrently, decode to original pixels."""

    def __init__(self, models, preprocessor):
        if not models:
            raise ConfigError('models: at least one model is needed')
        self.models = list(models)
        self.preprocessor = preprocessor
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(self.models), thread_name_prefix='engine')

    @classmethod
    def from_models(cls, model_names, backend='onnxruntime', providers=('cpu',), device='auto',
                    device_id=0, max_batch=1, cache_dir=None, engine_overrides=None,
                    cpu_backend=None, max_pixels=DEFAULT_MAX_PIXELS, postprocess='auto',
                    precision='fp32'):
        """Build the chain for model descriptions (names in config/models or YAML paths).

        ``max_pixels``: frames declaring a larger width*height are refused before decoding.
        ``postprocess``: 'host', 'device' (in the model graph) or 'auto' (device on TensorRT
        and ONNX Runtime CUDA where the decoder supports it; TensorRT INT8 and DLA engines
        decode on the host); ``precision``: 'fp32' or 'fp16' (ONNX
        variant with FP16 weights, made at preparation time). Variants take any batch size.
        """
        descriptions = [load_model_description(name, cache_dir=cache_dir) for name in model_names]
        names = [d.name for d in descriptions]
        if len(set(names)) != len(names):
            raise ConfigError(f'models: each model may appear once, got {names}')
        specs = []
        for description in descriptions:
            # Tensors are keyed by model name so two models may share an input tensor name.
            specs.append(InputSpec.from_dict(dict(description.input, name=description.name)))
        if 'cuda' not in providers and backend == 'onnxruntime' and device == 'auto':
            device = 'cpu'  # no point decoding on the GPU to copy every tensor back for CPU
        preprocessor = create_preprocessor(
            PreprocessSpec(tuple(specs), max_batch=max_batch, device=device,
                           max_pixels=max_pixels),
            device_id=device_id, cpu_backend=cpu_backend)
        overrides = engine_overrides or {}
        # TensorRT gets min/opt/max profiles for the variants' dynamic inputs (frame size,
        # batch; tensorrt_profiles), so 'auto' puts post-processing in the graph there too.
        on_gpu = backend == 'tensorrt' or (backend == 'onnxruntime' and 'cuda' in providers)
        models = []
        for description in descriptions:
            decoder = decoder_from_config(description.decoder, description.labels)
            where = postprocess_for(description, postprocess, on_gpu)
            engine_settings = overrides.get(description.name) or {}
            if where == 'device' and backend == 'tensorrt' and postprocess == 'auto' and (
                    engine_settings.get('precision') == 'int8'
                    or engine_settings.get('dla_core') not in (None, -1)):
                # INT8 calibration feeds the one image input and would put scales on the
                # appended argmax/threshold/TopK too; DLA needs static shapes, and the frame-size
                # index inputs are not. Such engines decode on the host.
                where = 'host'
            path = prepare_variant(description, where, precision)
            if where == 'device':
                use_device_postprocess(decoder, variant_metadata(path))
            engine = load_engine(engine_config_for(
                description, backend, providers, device_id, engine_settings,
                model_path=path, outputs=decoder.output_names, max_batch=max_batch))
            models.append(PipelineModel(description, engine, decoder))
        return cls(models, preprocessor)

    @property
    def max_pixels(self):
        """The pixel budget frames are validated against (validate extra decodes with it)."""
        return self.preprocessor.spec.max_pixels

    def process(self, frames):
        """Return one FrameResult per input frame, in order; bad frames carry their error.

        A model that raises does not take the others down: its error is reported in every
        affected frame's ``model_errors`` and the other models' outputs are returned as usual.
        """
        start = time.perf_counter()
        pre = self.preprocessor.run(frames)
        timings = {'preprocess': (time.perf_counter() - start) * 1e3}
        results = [FrameResult(index=i, timings_ms=timings, batch_size=len(frames))
                   for i in range(len(frames))]
        for index, error in pre.errors.items():
            results[index].error = error
        if not pre.frame_indices:
            return results
        futures = [self._pool.submit(self._run_model_isolated, model, pre)
                   for model in self.models]
        for model, future in zip(self.models, futures):
            decoded, model_timings, error = future.result()
            timings.update(model_timings)
            if error is not None:
                for frame_index in pre.frame_indices:
                    results[frame_index].model_errors[model.name] = error
                continue
            for frame_index, item in zip(pre.frame_indices, decoded):
                target = (results[frame_index].segmentations if model.is_segmentation
                          else results[frame_index].detections)
                target[model.name] = item
        return results

    def _run_model_isolated(self, model, pre):
        """Run one model; return (decoded, timings, error) instead of raising."""
        timings = {f'inference.{model.name}': 0.0, f'postprocess.{model.name}': 0.0}
        try:
            return self._run_model(model, pre, timings), timings, None
        except Exception as error:  # noqa: B902 - one broken model must not stop the others
            if not isinstance(error, PerceptionError):
                LOG.debug('model %s failed', model.name, exc_info=True)
                error = InferenceError.from_exception(model.name, error)
            return None, timings, error

    def _run_model(self, model, pre, timings):
        """Run one model over the good frames of a batch and decode its outputs.

        Adds the milliseconds spent in the engine and in the decoder to ``timings``
        (``inference.<model>``, ``postprocess.<model>``), also when a step raises.
        """
        name = model.name
        input_name = model.description.input['name']
        geometries = pre.geometries[name]
        device = (pre.device_tensors or {}).get(name)
        if device is not None and getattr(model.engine, 'accepts_device_input', False):
            device = device_buffer_from_dali(device)  # zero copy: DALI's GPU memory in
        else:
            device = None
        decoded = [None] * len(geometries)
        for rows in engine_groups(model, geometries):
            if device is not None:
                feed = device.rows(rows[0], rows[-1] + 1)
            else:
                # Host copies only here, for engines that need host input.
                feed = pre.tensors[name][rows[0]:rows[-1] + 1]
            feeds = {input_name: feed, **model.decoder.device_feeds(geometries[rows[0]])}
            started = time.perf_counter()
            try:
                outputs = model.engine.run(feeds)
            finally:
                inferred = time.perf_counter()
                timings[f'inference.{name}'] += (inferred - started) * 1e3
            try:
                group = model.decoder.decode(outputs, [geometries[r] for r in rows])
            finally:
                timings[f'postprocess.{name}'] += (time.perf_counter() - inferred) * 1e3
            for row, item in zip(rows, group):
                decoded[row] = item
        return decoded

    def set_thresholds(self, score=None, nms_iou=None, mask=None):
        """Change decoding thresholds of every model they apply to (None leaves one unchanged).

        ``score`` and ``nms_iou`` go to the detection decoders, ``mask`` (the foreground
        probability of single-channel masks) to the segmentation decoders. All values are
        checked (0..1) before any is applied, so a bad call changes nothing.
        """
        checked = {name: validation.optional(validation.probability, value, parameter)
                   for name, value, parameter in (('score', score, 'score_threshold'),
                                                  ('nms_iou', nms_iou, 'nms_iou_threshold'),
                                                  ('mask', mask, 'mask_threshold'))}
        for model in self.models:
            if model.is_segmentation:
                if checked['mask'] is not None:
                    model.decoder.probability_threshold = checked['mask']
                continue
            if checked['score'] is not None:
                model.decoder.score_threshold = checked['score']
            if checked['nms_iou'] is not None:
                model.decoder.nms_iou_threshold = checked['nms_iou']

    def close(self):
        """Stop the worker threads, release the engines and the preprocessing pipeline."""
        self._pool.shutdown(wait=True)
        for model in self.models:
            model.engine.close()
        close_preprocessor = getattr(self.preprocessor, 'close', None)
        if close_preprocessor is not None:
            close_preprocessor()


def postprocess_for(description, postprocess, on_gpu):
    """Where a model's post-processing runs: 'host' or 'device' (see from_models)."""
    if postprocess not in ('auto', 'host', 'device'):
        raise ConfigError(f'postprocess must be auto, host or device, got {postprocess!r}')
    decoder = description.decoder
    supported = (decoder.get('type') == 'segmentation'
                 and decoder.get('kind', 'logits') in ('logits', 'probability')) or \
        (decoder.get('type') == 'ssd' and decoder.get('layout', 'raw') == 'raw')
    if postprocess == 'auto':
        return 'device' if on_gpu and supported else 'host'
    if postprocess == 'device' and not supported:
        raise ConfigError(f'{description.name}: its decoder has no device post-processing '
                          '(segmentation kind logits/probability and SSD layout raw have); '
                          'use postprocess host')
    return postprocess


def use_device_postprocess(decoder, metadata):
    """Point a decoder at the outputs of the graph a variant appended (its metadata)."""
    try:
        if isinstance(decoder, SegmentationDecoder):
            decoder.use_device_postprocess(int(metadata['dtr_map_width']),
                                           int(metadata['dtr_map_height']))
        else:
            decoder.use_device_candidates(int(metadata['dtr_candidates']),
                                          int(metadata['dtr_score_columns']))
    except KeyError as missing:
        raise ConfigError(f'the model variant lacks its metadata {missing}; delete the '
                          '.devpost.onnx file so prepare_variant rebuilds it') from None


def engine_groups(model, geometries):
    """Rows of a batch that go through the engine together, as lists of consecutive rows.

    A model built for a fixed batch other than this one runs frame by frame; a device
    post-processing graph takes one frame size per run, so rows are grouped by geometry.
    """
    rows = list(range(len(geometries)))
    model_batch = model.engine.inputs[0].shape[0] if model.engine.inputs else None
    if not (model_batch == len(rows) or is_dynamic_dim(model_batch)):
        return [[row] for row in rows]
    if not (model.is_segmentation and model.decoder.device_postprocess):
        return [rows] if rows else []
    groups = []
    for row in rows:
        if groups and geometries[groups[-1][-1]] == geometries[row]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups
