"""Model preparation: pinned registry sources, ONNX conversion, model cache and descriptions.

Typical use::

    from dali_trt_ros.models import prepare_model, load_model_description
    prepare_model('ssd_mobilenetv2_oidv4')            # cached after the first call
    description = load_model_description('ssd_mobilenetv2_oidv4')
    description.onnx_path, description.labels, description.input['mean']
"""

from dali_trt_ros.models.cache import default_cache_dir, sha256_of_file
from dali_trt_ros.models.description import (
    ModelDescription, config_dir, load_model_description, model_description_path)
from dali_trt_ros.models.prepare import PreparedModel, prepare_model, verify_model
from dali_trt_ros.models.registry import MODELS, SOURCES, model_recipe

__all__ = [
    'MODELS', 'SOURCES', 'ModelDescription', 'PreparedModel', 'config_dir', 'default_cache_dir',
    'load_model_description', 'model_description_path', 'model_recipe', 'prepare_model',
    'sha256_of_file', 'verify_model',
]
