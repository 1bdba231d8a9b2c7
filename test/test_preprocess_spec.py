"""InputSpec / PreprocessSpec validation and the scale/offset form."""

import numpy as np
import pytest

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec

SSD = {'name': 'normalized_input_image_tensor', 'width': 300, 'height': 300, 'resize': 'stretch',
       'interpolation': 'linear', 'antialias': True, 'color': 'RGB', 'layout': 'NCHW',
       'dtype': 'float32', 'mean': 127.5, 'std': 127.5, 'pad_value': 0}
SELFIE = {'name': 'input_1', 'width': 256, 'height': 256, 'layout': 'NHWC',
          'mean': [0, 0, 0], 'std': [255, 255, 255]}


def test_model_yaml_examples_parse():
    ssd = InputSpec.from_dict(SSD)
    assert ssd.mean == (127.5,) * 3 and ssd.std == (127.5,) * 3
    assert ssd.sample_shape() == (3, 300, 300)
    selfie = InputSpec.from_dict(SELFIE)
    assert selfie.sample_shape() == (256, 256, 3) and selfie.resize == 'stretch'


def test_scale_offset_equals_mean_std():
    by_scale = InputSpec.from_dict({'name': 'x', 'width': 8, 'height': 8,
                                    'scale': 1 / 127.5, 'offset': -1.0})
    pixels = np.array([0.0, 63.0, 127.5, 255.0])
    expected = pixels / 127.5 - 1.0
    got = (pixels - by_scale.mean[0]) / by_scale.std[0]
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize('key, value', [
    ('width', 0), ('height', 100000), ('width', 3.5), ('resize', 'crop'),
    ('interpolation', 'area'), ('color', 'YUV'), ('layout', 'CHW'), ('dtype', 'int8'),
    ('std', [1, 0, 1]), ('mean', [1, 2]), ('pad_value', 300), ('antialias', 'yes'),
    ('name', ''), ('scale', 0), ('colour', 'RGB'),
])
def test_bad_value_names_the_key(key, value):
    config = dict(SSD, **{key: value})
    if key == 'scale':
        del config['mean'], config['std']
    with pytest.raises(ConfigError, match=key):
        InputSpec.from_dict(config)


def test_mean_std_and_scale_together_rejected():
    with pytest.raises(ConfigError, match='not both'):
        InputSpec.from_dict(dict(SSD, scale=1.0))


def test_preprocess_spec_from_dict_and_checks():
    spec = PreprocessSpec.from_dict({'inputs': [SSD, SELFIE], 'max_batch': 4, 'device': 'cpu'})
    assert [i.name for i in spec.inputs] == ['normalized_input_image_tensor', 'input_1']
    assert spec.input('input_1').width == 256
    with pytest.raises(ConfigError, match='duplicate'):
        PreprocessSpec.from_dict({'inputs': [SSD, SSD]})
    with pytest.raises(ConfigError, match='max_batch'):
        PreprocessSpec.from_dict({'inputs': [SSD], 'max_batch': 0})
    with pytest.raises(ConfigError, match='device'):
        PreprocessSpec.from_dict({'inputs': [SSD], 'device': 'tpu'})
    with pytest.raises(ConfigError, match='inputs'):
        PreprocessSpec.from_dict({'inputs': []})
