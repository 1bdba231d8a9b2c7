"""Choose and load the backend an EngineConfig asks for."""

from dali_trt_ros.engines.config import EngineConfig
from dali_trt_ros.errors import ConfigError


def load_engine(config):
    """Load the engine for ``config`` (an EngineConfig or a dict for EngineConfig.from_dict).

    'onnxruntime' runs the ONNX model directly; 'tensorrt' reuses a cached engine whose key
    matches, else builds one from the ONNX model and caches it.
    """
    if isinstance(config, dict):
        config = EngineConfig.from_dict(config)
    if config.backend == 'onnxruntime':
        from dali_trt_ros.engines.onnxruntime_engine import OnnxRuntimeEngine
        return OnnxRuntimeEngine(config)
    if config.backend == 'tensorrt':
        from dali_trt_ros.engines.tensorrt_engine import load_tensorrt_engine
        return load_tensorrt_engine(config)
    raise ConfigError(f"engine config: backend {config.backend!r} is not 'onnxruntime' or "
                      "'tensorrt'")
