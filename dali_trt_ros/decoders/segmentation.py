"""Segmentation decoding: model output -> per-pixel class map at the original image size.

``kind`` says what the output holds: ``logits`` (C >= 2 channels, argmax taken here; softmax is
not needed for argmax), ``probability`` (one foreground channel, class 1 where it exceeds
``probability_threshold``) or ``argmax`` (class ids already). ``layout`` is NCHW or NHWC for
channelled outputs. The map is brought to the original size through the preprocessing geometry:
the center of each original pixel is projected into the output map (which crops letterbox
padding and handles outputs smaller than the input, e.g. output stride 8) and takes the nearest
class.

With ``device_postprocess`` on, the model graph already made both maps (see
``dali_trt_ros.models.variants``): ``device_feeds`` gives the row/column indices (the same
``source_indices`` as here) and the threshold that graph needs, and ``decode`` only reads them.
"""

import numpy as np

from dali_trt_ros import validation as check
from dali_trt_ros.decoders.device_outputs import (COLUMNS_INPUT, LABEL_MAP_OUTPUT, MASK_OUTPUT,
                                                  ROWS_INPUT, THRESHOLD_INPUT)
from dali_trt_ros.decoders.results import SegmentationResult
from dali_trt_ros.errors import BindingMismatchError, ConfigError

KINDS = ('logits', 'probability', 'argmax')
LAYOUTS = ('NCHW', 'NHWC')
MAX_CLASSES = 256  # label maps are uint8


def label_map_from_output(batch_output, kind, layout='NCHW', threshold=0.5):
    """Turn a batch output into (N, h, w) uint8 class ids at the output resolution."""
    array = np.asarray(batch_output)
    if kind == 'argmax':
        class_ids = _squeeze_channel(array, layout, 'argmax')
        if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= MAX_CLASSES):
            _too_many_classes(int(class_ids.max()) + 1)
        return class_ids.astype(np.uint8, copy=False)
    if kind == 'probability':
        probability = _squeeze_channel(array, layout, 'probability')
        return (probability > threshold).astype(np.uint8)
    if array.ndim != 4:
        raise BindingMismatchError(f'segmentation logits must be 4-D ({layout}), got shape '
                                   f'{array.shape}')
    channel_axis = 1 if layout == 'NCHW' else 3
    if array.shape[channel_axis] > MAX_CLASSES:
        _too_many_classes(array.shape[channel_axis])
    if array.shape[channel_axis] < 2:
        raise BindingMismatchError(
            f'segmentation logits have {array.shape[channel_axis]} channel(s) on the {layout} '
            'channel axis; a single channel is kind: probability, or check decoder.layout')
    return np.argmax(array, axis=channel_axis).astype(np.uint8)


def _too_many_classes(count):
    """Raise the error for maps that do not fit uint8."""
    raise BindingMismatchError(f'segmentation output has {count} classes (or ids out of range); '
                               f'label maps hold at most {MAX_CLASSES} classes')


def _squeeze_channel(array, layout, kind):
    """Return (N, H, W) from (N, H, W), (N, 1, H, W) or (N, H, W, 1)."""
    if array.ndim == 3:
        return array
    # A single channel is unambiguous, so accept it on either axis (TFLite conversions often
    # keep NHWC outputs even when the input was made NCHW).
    for channel_axis in ((1, 3) if layout == 'NCHW' else (3, 1)):
        if array.ndim == 4 and array.shape[channel_axis] == 1:
            return np.take(array, 0, axis=channel_axis)
    raise BindingMismatchError(
        f'a {kind} segmentation output must have one channel ({layout}) or none, got shape '
        f'{array.shape}; multi-channel outputs are kind: logits')


def source_indices(geometry, output_width, output_height):
    """Output-map column and row index for every original column and row (nearest sampling).

    Original pixel center (x + 0.5) maps to input x * scale_x + pad_left, then to the output map
    by output_width / input_width; indices are clipped to the map.
    """
    x = (np.arange(geometry.orig_width) + 0.5) * geometry.scale_x + geometry.pad_left
    y = (np.arange(geometry.orig_height) + 0.5) * geometry.scale_y + geometry.pad_top
    columns = np.floor(x * (output_width / geometry.input_width)).astype(np.intp)
    rows = np.floor(y * (output_height / geometry.input_height)).astype(np.intp)
    return columns.clip(0, output_width - 1), rows.clip(0, output_height - 1)


def upsample_to_original(label_map, geometry):
    """Resize an (h, w) output-resolution map to (orig_height, orig_width) via the geometry."""
    columns, rows = source_indices(geometry, label_map.shape[1], label_map.shape[0])
    # Two 1-D takes are much cheaper than one 2-D fancy index on large frames.
    return np.take(np.take(label_map, rows, axis=0), columns, axis=1)


def class_fractions(label_map, labels, pixel_weights=None):
    """Share of pixels per label (all labels listed, zeros included); sums to 1.

    ``pixel_weights`` (same shape as the map) counts how many original pixels each map pixel
    stands for, so fractions of the original image come from the small map directly.
    """
    flat = label_map.reshape(-1)
    num_labels = max(len(labels), int(flat.max()) + 1 if flat.size else 0)
    weights = None if pixel_weights is None else pixel_weights.reshape(-1)
    counts = np.bincount(flat, weights=weights, minlength=num_labels)
    total = float(counts.sum()) or 1.0
    names = list(labels) + [f'class_{i}' for i in range(len(labels), num_labels)]
    return {name: float(count) / total for name, count in zip(names, counts)}


def original_pixel_weights(geometry, output_width, output_height):
    """(h, w) count of original pixels that sample each output-map pixel (nearest sampling)."""
    columns, rows = source_indices(geometry, output_width, output_height)
    return np.outer(np.bincount(rows, minlength=output_height),
                    np.bincount(columns, minlength=output_width))


class SegmentationDecoder:
    """Turn a segmentation output of a batch into one SegmentationResult per frame."""

    def __init__(self, output, labels=None, kind='logits', layout='NCHW',
                 probability_threshold=0.5):
        self.output = output
        self.kind = check.choice(kind, KINDS, 'decoder.kind')
        self.layout = check.choice(layout, LAYOUTS, 'decoder.layout')
        self.probability_threshold = probability_threshold
        self.device_postprocess = False
        self.output_size = None  # (width, height) of the class map, set with device maps
        if labels:
            self.labels = [str(label) for label in labels]
        elif self.kind == 'probability':
            self.labels = ['background', 'foreground']
        else:
            self.labels = []

    @property
    def probability_threshold(self):
        """Foreground probability threshold for kind probability (0..1), settable at run time."""
        return self._probability_threshold

    @probability_threshold.setter
    def probability_threshold(self, value):
        self._probability_threshold = check.probability(value, 'decoder.probability_threshold')

    @classmethod
    def from_config(cls, mapping, labels=None, path='decoder'):
        """Build from the YAML ``decoder:`` mapping; ConfigError names the offending key."""
        check.mapping(mapping, path)
        if mapping.get('type', 'segmentation') != 'segmentation':
            raise ConfigError(f'{path}.type is {mapping.get("type")!r}; SegmentationDecoder '
                              'needs segmentation')
        check.known_keys(mapping, {'type', 'output', 'kind', 'layout', 'probability_threshold'},
                         path)
        output = check.text(check.required(mapping, 'output', path), f'{path}.output')
        return cls(output, labels,
                   kind=check.choice(mapping.get('kind', 'logits'), KINDS, f'{path}.kind'),
                   layout=check.choice(mapping.get('layout', 'NCHW'), LAYOUTS, f'{path}.layout'),
                   probability_threshold=check.probability(
                       mapping.get('probability_threshold', 0.5), f'{path}.probability_threshold'))

    @property
    def output_names(self):
        """Names of the model outputs this decoder reads."""
        if self.device_postprocess:
            return [LABEL_MAP_OUTPUT, MASK_OUTPUT]
        return [self.output]

    def device_feeds(self, geometry):
        """Extra inputs of the device post-processing graph for frames of this geometry."""
        if not self.device_postprocess:
            return {}
        columns, rows = source_indices(geometry, *self.output_size)
        feeds = {ROWS_INPUT: rows.astype(np.int32), COLUMNS_INPUT: columns.astype(np.int32)}
        if self.kind == 'probability':
            feeds[THRESHOLD_INPUT] = np.array([self._probability_threshold], np.float32)
        return feeds

    def use_device_postprocess(self, output_width, output_height):
        """Read maps made by the model graph, whose class map is output_width x output_height."""
        if self.kind not in ('logits', 'probability'):
            raise ConfigError(f'device post-processing supports decoder.kind logits and '
                              f'probability, not {self.kind!r}; use postprocess: host')
        self.device_postprocess = True
        self.output_size = (int(output_width), int(output_height))

    def decode(self, outputs, geometries):
        """Decode a batch: ``outputs`` maps output names to arrays (batch first)."""
        if self.device_postprocess:
            return self._decode_device_maps(outputs, geometries)
        try:
            array = outputs[self.output]
        except KeyError:
            raise BindingMismatchError(
                f'model output {self.output!r} is missing; the model produced '
                f'{sorted(outputs)}. Fix decoder.output') from None
        maps = label_map_from_output(array, self.kind, self.layout,
                                     self._probability_threshold)
        if len(geometries) > maps.shape[0]:
            raise BindingMismatchError(f'{len(geometries)} frames but the model output holds a '
                                       f'batch of {maps.shape[0]}; check the engine batch size')
        results = []
        for small_map, geometry in zip(maps, geometries):
            full_map = upsample_to_original(small_map, geometry)
            # Counting on the small map with per-pixel weights is exact and ~8x less work.
            weights = original_pixel_weights(geometry, small_map.shape[1], small_map.shape[0])
            results.append(SegmentationResult(
                full_map, class_fractions(small_map, self.labels, weights), self.labels))
        return results

    def _decode_device_maps(self, outputs, geometries):
        """Wrap the maps the graph made (all frames of the batch share one geometry)."""
        missing = [name for name in (LABEL_MAP_OUTPUT, MASK_OUTPUT) if name not in outputs]
        if missing:
            raise BindingMismatchError(
                f'device post-processing outputs {missing} are missing; the model produced '
                f'{sorted(outputs)}. Use the .devpost variant of the model (prepare_variant)')
        small_maps = np.asarray(outputs[LABEL_MAP_OUTPUT])
        full_maps = np.asarray(outputs[MASK_OUTPUT])
        if len(geometries) > small_maps.shape[0]:
            raise BindingMismatchError(f'{len(geometries)} frames but the model output holds a '
                                       f'batch of {small_maps.shape[0]}; check the engine batch')
        results = []
        for small_map, full_map, geometry in zip(small_maps, full_maps, geometries):
            weights = original_pixel_weights(geometry, small_map.shape[1], small_map.shape[0])
            results.append(SegmentationResult(
                full_map, class_fractions(small_map, self.labels, weights), self.labels))
        return results
