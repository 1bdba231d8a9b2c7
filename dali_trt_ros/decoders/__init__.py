"""Model output decoders: SSD detection and semantic segmentation, plus drawing helpers.

Decoders take the engine's ``{output_name: array}`` dict of a batch and one FrameGeometry per
frame, and return results in original-image pixels. No ROS, TensorRT or DALI imports here.
"""

from dali_trt_ros import validation as check
from dali_trt_ros.decoders.drawing import (cityscapes_palette, draw_detections, overlay,
                                           palette_by_name, voc_palette)
from dali_trt_ros.decoders.results import Detections, SegmentationResult
from dali_trt_ros.decoders.segmentation import SegmentationDecoder
from dali_trt_ros.decoders.ssd import SsdDecoder

DECODER_TYPES = {'ssd': SsdDecoder, 'segmentation': SegmentationDecoder}


def decoder_from_config(mapping, labels=None, path='decoder'):
    """Build the decoder named by ``mapping['type']`` (ssd or segmentation)."""
    check.mapping(mapping, path)
    decoder_type = check.choice(mapping.get('type'), sorted(DECODER_TYPES), f'{path}.type')
    return DECODER_TYPES[decoder_type].from_config(mapping, labels, path)


__all__ = ['Detections', 'SegmentationResult', 'SsdDecoder', 'SegmentationDecoder',
           'decoder_from_config', 'overlay', 'draw_detections', 'voc_palette',
           'cityscapes_palette', 'palette_by_name']
