"""Preprocessing: decode, resize and normalize camera frames into model input tensors.

Entry points: ``create_preprocessor(spec)`` picks DALI on the GPU when it works, else the
measured-faster CPU path; ``DaliPreprocessor`` (DALI) and ``OpenCVPreprocessor`` (OpenCV) share
``run(frames) -> PreprocessResult``. Heavy libraries (DALI, OpenCV) load on first use.
"""

from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
from dali_trt_ros.preprocess.factory import create_preprocessor, detect_dali_mode
from dali_trt_ros.preprocess.geometry import FrameGeometry
from dali_trt_ros.preprocess.inputs import EncodedFrame, frame_from_message, RawFrame
from dali_trt_ros.preprocess.opencv_backend import OpenCVPreprocessor
from dali_trt_ros.preprocess.result import PreprocessResult
from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec

__all__ = ['create_preprocessor', 'detect_dali_mode', 'EncodedFrame', 'FrameGeometry',
           'frame_from_message', 'InputSpec', 'DaliPreprocessor', 'PreprocessResult',
           'PreprocessSpec', 'RawFrame', 'OpenCVPreprocessor']
