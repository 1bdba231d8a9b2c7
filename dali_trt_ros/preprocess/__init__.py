"""Preprocessing: decode, resize and normalize camera frames into model input tensors.

Entry points: ``create_preprocessor(spec)`` picks DALI on the GPU when it works, else the
measured-faster CPU path; ``Preprocessor`` (DALI) and ``ReferencePreprocessor`` (OpenCV) share
``run(frames) -> PreprocessResult``. Heavy libraries (DALI, OpenCV) load on first use.
"""

from dali_trt_ros.preprocess.dali_backend import Preprocessor
from dali_trt_ros.preprocess.factory import create_preprocessor, detect_dali_mode
from dali_trt_ros.preprocess.geometry import FrameGeometry
from dali_trt_ros.preprocess.inputs import EncodedFrame, frame_from_message, RawFrame
from dali_trt_ros.preprocess.reference import ReferencePreprocessor
from dali_trt_ros.preprocess.result import PreprocessResult
from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec

__all__ = ['create_preprocessor', 'detect_dali_mode', 'EncodedFrame', 'FrameGeometry',
           'frame_from_message', 'InputSpec', 'Preprocessor', 'PreprocessResult',
           'PreprocessSpec', 'RawFrame', 'ReferencePreprocessor']
