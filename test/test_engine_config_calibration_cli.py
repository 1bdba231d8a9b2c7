"""Engine config parsing, INT8 calibration batches from real images, build_engine --dry-run."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from dali_trt_ros.engines import EngineConfig
from dali_trt_ros.engines.calibration import (calibration_batches, calibration_data_sha256,
                                              list_calibration_images, preprocessor_batch_fn)
from sample_model import write_conv_relu_model
from dali_trt_ros.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_defaults_and_full_dict():
    assert EngineConfig.from_dict({'model': 'm.onnx'}).providers == ('cpu',)
    config = EngineConfig.from_dict({
        'model': '~/m.onnx', 'backend': 'TensorRT', 'precision': 'int8', 'dla_core': -1,
        'providers': 'cuda', 'inputs': [{'name': 'x', 'shape': [-1, 3, 'h', None],
                                         'dtype': 'float32'}],
        'calibration': {'images': '/data/cal', 'batch_size': 4},
        'tactic_sources': ['jit_convolutions', 'EDGE_MASK_CONVOLUTIONS'],
        'builder_optimization_level': 0})
    assert config.model == os.path.expanduser('~/m.onnx')
    assert (config.backend, config.precision, config.dla_core) == ('tensorrt', 'int8', None)
    assert config.providers == ('cuda',)
    assert config.inputs[0].shape == (-1, 3, 'h', None)
    assert config.inputs[0].dtype == np.float32
    assert (config.calibration.images, config.calibration.batch_size) == ('/data/cal', 4)
    assert config.tactic_sources == ('EDGE_MASK_CONVOLUTIONS', 'JIT_CONVOLUTIONS')
    assert config.builder_optimization_level == 0
    assert EngineConfig.from_dict({'model': 'm'}).calibration.batch_size is None


@pytest.mark.parametrize('data, named', [
    ({'model': 'm', 'precison': 'fp16'}, 'engine config: unknown key(s) precison; known keys:'),
    ({}, 'engine config: model: required but missing'),
    ({'model': 'm', 'precision': 'fp64'},
     "engine config: precision: expected one of fp32, fp16, int8, got 'fp64'"),
    ({'model': 'm', 'dla_core': 'zero'}, "engine config: dla_core: expected an integer"),
    ({'model': 'm', 'dla_core': -2}, 'engine config: dla_core: expected a value >= 0, got -2'),
    ({'model': 'm', 'providers': ['tpu']}, "engine config: providers[0]: expected one of cpu"),
    ({'model': 'm', 'gpu_fallback': 'yes'}, "engine config: gpu_fallback: expected true or false"),
    ({'model': 'm', 'workspace_mib': 0}, 'engine config: workspace_mib: expected a value >= 1'),
    ({'model': 'm', 'inputs': [{'shape': [1]}]}, 'engine config: inputs[0].name: required'),
    ({'model': 'm', 'inputs': [{'name': 'x', 'shap': [1]}]},
     'engine config: inputs[0]: unknown key(s) shap'),
    ({'model': 'm', 'inputs': [{'name': 'x', 'dtype': 'floaty'}]},
     'engine config: inputs[0].dtype: expected a numpy dtype name'),
    ({'model': 'm', 'inputs': [{'name': 'x', 'min_shape': [1]}]},
     'engine config: inputs[0].max_shape: required but missing'),
    ({'model': 'm', 'inputs': [{'name': 'x', 'min_shape': [4], 'max_shape': [2]}]},
     'min_shape <= opt_shape <= max_shape'),
    ({'model': 'm', 'calibration': {'image': 'x'}},
     'engine config: calibration: unknown key(s) image'),
    ({'model': 'm', 'calibration': {'batch_size': 0}},
     'engine config: calibration.batch_size: expected a value >= 1, got 0'),
    ({'model': 3}, "engine config: model: expected a file path, got 3"),
    ({'model': 'm', 'tactic_sources': ['CUBLASS']},
     "engine config: tactic_sources[0]: expected one of CUBLAS"),
    ({'model': 'm', 'builder_optimization_level': 6},
     'engine config: builder_optimization_level: expected a value 0..5, got 6'),
    ('m', "engine config: expected a mapping, got 'm'"),
])
def test_config_errors_name_the_key(data, named):
    with pytest.raises(ConfigError) as caught:
        EngineConfig.from_dict(data)
    assert named in str(caught.value)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """Real photographs from scikit-image written as JPEG and PNG, plus one corrupt file."""
    import cv2
    from skimage import data
    folder = tmp_path_factory.mktemp('calib')
    for name in ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera'):
        image = getattr(data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        extension = '.png' if name == 'camera' else '.jpg'
        cv2.imwrite(str(folder / (name + extension)), image[:, :, ::-1])
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    (folder / 'notes.txt').write_text('not an image')
    return folder


def decode_and_resize(encoded):
    """A stand-in preprocessing with OpenCV: skip undecodable images, 32x32 CHW float32."""
    import cv2
    rows = []
    for data in encoded:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            rows.append(cv2.resize(image, (32, 32)).transpose(2, 0, 1).astype(np.float32) / 255)
    return np.array(rows, np.float32).reshape(-1, 3, 32, 32)


def test_calibration_batches_are_full_and_skip_bad_images(image_folder):
    paths = list_calibration_images(str(image_folder))
    assert [os.path.basename(p) for p in paths] == [
        'astronaut.jpg', 'broken.jpg', 'camera.png', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg']
    batches = list(calibration_batches(paths, decode_and_resize, (2, 3, 32, 32)))
    # 5 decodable images -> 2 full batches; the corrupt one is skipped, the odd one dropped.
    assert len(batches) == 2
    assert all(b.shape == (2, 3, 32, 32) and b.dtype == np.float32 for b in batches)
    assert all(b.flags.c_contiguous for b in batches)
    assert len({float(b.mean()) for b in batches}) == 2
    assert len(list(calibration_batches(paths, decode_and_resize, (2, 3, 32, 32),
                                        max_batches=1))) == 1
    with pytest.raises(ConfigError, match='no full batch of 8'):
        list(calibration_batches(paths, decode_and_resize, (8, 3, 32, 32)))
    with pytest.raises(ConfigError, match=r'makes rows of shape \(3, 32, 32\), but the engine '
                       r'calibrates at \(2, 3, 64, 64\)'):
        list(calibration_batches(paths, decode_and_resize, (2, 3, 64, 64)))


def test_calibration_hash_follows_images_and_settings(image_folder, tmp_path):
    paths = list_calibration_images(str(image_folder))
    shape = (2, 3, 32, 32)
    base = calibration_data_sha256(paths, {'a': 1}, shape, 4)
    assert calibration_data_sha256(paths, {'a': 1}, shape, 4) == base
    assert calibration_data_sha256(paths[:-1], {'a': 1}, shape, 4) != base
    assert calibration_data_sha256(paths, {'a': 2}, shape, 4) != base
    assert calibration_data_sha256(paths, {'a': 1}, (4, 3, 32, 32), 4) != base
    assert calibration_data_sha256(paths, {'a': 1}, shape, 5) != base
    with pytest.raises(ConfigError, match='no .jpg'):
        list_calibration_images(str(tmp_path))
    with pytest.raises(ConfigError, match='not found'):
        list_calibration_images(str(tmp_path / 'absent'))


def test_calibration_with_the_package_dali_preprocessing(image_folder):
    pytest.importorskip('nvidia.dali', reason='DALI is not installed')
    preprocess = {'inputs': [{'name': 'images', 'width': 64, 'height': 48,
                              'mean': [127.5] * 3, 'std': [127.5] * 3}], 'max_batch': 4}
    make_batch = preprocessor_batch_fn(preprocess, 'images', device_id=None)
    paths = list_calibration_images(str(image_folder))
    batches = list(calibration_batches(paths, make_batch, (2, 3, 48, 64)))
    assert len(batches) == 2
    assert batches[0].shape == (2, 3, 48, 64) and batches[0].dtype == np.float32
    assert -1.0 <= batches[0].min() < 0 < batches[0].max() <= 1.0
    with pytest.raises(ConfigError, match="no input 'other'"):
        preprocessor_batch_fn(preprocess, 'other', device_id=None)
    with pytest.raises(ConfigError, match='calibration.preprocess is required'):
        preprocessor_batch_fn(None, 'images')


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, '-m', 'dali_trt_ros.tools.build_engine', *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_build_engine_dry_run_prints_plan(tmp_path):
    model = write_conv_relu_model(tmp_path / 'det.onnx', batch='N')[0]
    done = run_cli(model, '--dry-run', '--tensorrt-version', '8.5.2', '--dla-cores', '2',
                   '--dla-core', '1', '--shape', 'images:1x3x8x8', '--device-name', 'Xavier',
                   '--compute-capability', '7.2', '--cache-dir', str(tmp_path / 'engines'))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert 'precision: fp16' in lines
    assert 'device: DLA core 1 with GPU fallback' in lines
    assert 'input images: (1, 3, 8, 8)' in lines
    assert 'WARNING: DLA runs fp16 or int8 only; building fp16 instead of fp32' in lines
    engine = str(tmp_path / 'engines' / 'det.fp16.dla1.engine')
    assert f'cache: build (no cached engine at {engine})' in lines


def test_build_engine_dry_run_errors_and_desktop_plan(tmp_path):
    model = write_conv_relu_model(tmp_path / 'seg.onnx')[0]
    done = run_cli(model, '--dry-run', '--tensorrt-version', '10.9', '--dla-core', '0',
                   '--precision', 'int8')
    assert done.returncode == 1
    assert 'precision int8 needs scales' in done.stderr
    config = tmp_path / 'engine.yaml'
    config.write_text('precision: fp16\ndla_core: 0\n')
    done = run_cli(model, '--dry-run', '--tensorrt-version', '10.9', '--config', str(config),
                   '-o', str(tmp_path / 'seg.engine'))
    assert done.returncode == 0, done.stderr
    assert 'device: GPU' in done.stdout
    assert 'dla_core 0 requested but unknown GPU has no DLA cores; building for the GPU' \
        in done.stdout


def test_build_engine_without_tensorrt_says_so(tmp_path):
    if importlib.util.find_spec('tensorrt') is not None:
        pytest.skip('TensorRT is installed here')
    model = write_conv_relu_model(tmp_path / 'm.onnx')[0]
    done = run_cli(model, '--cache-dir', str(tmp_path))
    assert done.returncode == 1
    assert 'TensorRT (python module tensorrt) is not installed' in done.stderr
    assert done.stdout == ''


def test_dla_gpu_fallback_summary():
    from dali_trt_ros.engines.build_plan import BuildPlan, dla_gpu_fallback
    dla = BuildPlan(precision='fp16', device='dla', dla_core=0, gpu_fallback=True, profiles={})
    gpu = BuildPlan(precision='fp16', device='gpu', dla_core=None, gpu_fallback=True, profiles={})
    assert dla_gpu_fallback(None, gpu) is None
    assert dla_gpu_fallback(-1, gpu) is None
    assert dla_gpu_fallback(0, gpu) == 'whole model on the GPU (this device has no DLA core)'
    assert dla_gpu_fallback(0, dla, ['12 of 12 layers can run on DLA']) is None
    assert dla_gpu_fallback(0, dla, ['10 of 12 layers can run on DLA', 'on GPU: a (Softmax)',
                                     'on GPU: b (ReduceMean)']) == '2 layer(s) on the GPU'
