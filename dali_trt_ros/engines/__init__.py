"""Inference engines: one interface over ONNX Runtime (CPU/CUDA) and TensorRT (GPU/DLA).

``load_engine(EngineConfig.from_dict({...}))`` returns an :class:`Engine`; heavy libraries are
imported only by the backend that is chosen.
"""

from dali_trt_ros.engines.base import (DeviceBuffer, Engine, TensorInfo,
                                       device_buffer_from_dali)
from dali_trt_ros.engines.config import EngineConfig
from dali_trt_ros.engines.factory import load_engine

__all__ = ['DeviceBuffer', 'Engine', 'EngineConfig', 'TensorInfo', 'device_buffer_from_dali',
           'load_engine']
