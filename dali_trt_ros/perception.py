"""The ROS-free perception chain: one decode feeds several models, run at the same time.

    frames -> preprocessor (one decode, one resized/normalized tensor per model)
           -> engines, one thread each (their own CUDA streams: GPU and DLA overlap)
           -> decoders (boxes and masks in original-image pixels)

The ROS node is a thin layer over :class:`PerceptionPipeline`; tests and tools use it directly.
"""

import concurrent.futures
import dataclasses
import logging

import numpy as np

from dali_trt_ros import validation
from dali_trt_ros.decoders import decoder_from_config, SegmentationDecoder
from dali_trt_ros.engines import device_buffer_from_dali, load_engine
from dali_trt_ros.engines.base import is_dynamic_dim
from dali_trt_ros.errors import ConfigError, FrameError
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.models import load_model_description
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
    """What the models made of one input frame (or why the frame was rejected)."""

    index: int
    detections: dict = dataclasses.field(default_factory=dict)     # model -> Detections
    segmentations: dict = dataclasses.field(default_factory=dict)  # model -> SegmentationResult
    error: FrameError = None


def engine_config_for(description, backend, providers, device_id, overrides=None):
    """Engine configuration for a described model; `overrides` may set any engine key."""
    config = {'model': str(description.onnx_path), 'backend': backend, 'device_id': device_id,
              'inputs': [{'name': description.input['name']}],
              'outputs': [{'name': name} for name in description.outputs]}
    if backend == 'onnxruntime':
        config['providers'] = list(providers)
    config.update(overrides or {})
    return config


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
                    cpu_backend=None, max_pixels=DEFAULT_MAX_PIXELS):
        """Build the chain for model descriptions (names in config/models or YAML paths).

        ``max_pixels``: frames declaring a larger width*height are refused before decoding.
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
        models = []
        for description in descriptions:
            engine = load_engine(engine_config_for(description, backend, providers, device_id,
                                                   overrides.get(description.name)))
            decoder = decoder_from_config(description.decoder, description.labels)
            models.append(PipelineModel(description, engine, decoder))
        return cls(models, preprocessor)

    @property
    def max_pixels(self):
        """The pixel budget frames are validated against (validate extra decodes with it)."""
        return self.preprocessor.spec.max_pixels

    def process(self, frames):
        """Return one FrameResult per input frame, in order; bad frames carry their error."""
        pre = self.preprocessor.run(frames)
        results = [FrameResult(index=i) for i in range(len(frames))]
        for index, error in pre.errors.items():
            results[index].error = error
        if not pre.frame_indices:
            return results
        futures = [self._pool.submit(self._run_model, model, pre) for model in self.models]
        for model, future in zip(self.models, futures):
            decoded = future.result()
            for frame_index, item in zip(pre.frame_indices, decoded):
                target = (results[frame_index].segmentations if model.is_segmentation
                          else results[frame_index].detections)
                target[model.name] = item
        return results

    def _run_model(self, model, pre):
        """Run one model over the good frames of a batch and decode its outputs."""
        name = model.name
        input_name = model.description.input['name']
        host = pre.tensors[name]
        batch = host.shape[0]
        model_batch = model.engine.inputs[0].shape[0] if model.engine.inputs else None
        device = (pre.device_tensors or {}).get(name)
        if model_batch == batch or is_dynamic_dim(model_batch):
            feed = host
            if device is not None and getattr(model.engine, 'accepts_device_input', False):
                feed = device_buffer_from_dali(device)  # zero copy: DALI's GPU memory in
            outputs = model.engine.run({input_name: feed})
        else:
            # A model built for batch 1: run it frame by frame and stack the outputs.
            per_frame = [model.engine.run({input_name: host[i:i + 1]}) for i in range(batch)]
            outputs = {key: np.concatenate([out[key] for out in per_frame])
                       for key in per_frame[0]}
        return model.decoder.decode(outputs, pre.geometries[name])

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
        """Stop the worker threads and release the engines."""
        self._pool.shutdown(wait=True)
        for model in self.models:
            model.engine.close()
