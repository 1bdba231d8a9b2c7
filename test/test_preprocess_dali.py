"""DALI graph serialization, backend selection, and the GPU paths (skipped without a GPU)."""

import logging

import numpy as np
import pytest

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
from dali_trt_ros.preprocess.factory import create_preprocessor, detect_dali_mode
from dali_trt_ros.preprocess.inputs import EncodedFrame, RawFrame
from dali_trt_ros.preprocess.opencv_backend import OpenCVPreprocessor
from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec


def _cuda_devices():
    try:
        import nvidia.dali.backend as dali_backend
        return dali_backend.GetCUDADeviceCount()
    except Exception:
        return 0


HAS_GPU = _cuda_devices() > 0
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason='no CUDA device visible to DALI; run this '
                               'file on the GPU machine to cover the GPU paths')

SPEC = PreprocessSpec((
    InputSpec('ssd', 300, 300, mean=127.5, std=127.5),
    InputSpec('seg', 256, 256, resize='letterbox', pad_value=127.5, layout='NHWC',
              dtype='float16', std=255.0),
    InputSpec('big', 512, 384, resize='letterbox', interpolation='cubic', color='BGR'),
), max_batch=4)


@pytest.fixture(scope='module')
def frames():
    import cv2
    from skimage import data

    coffee, astronaut = data.coffee(), data.astronaut()
    return [EncodedFrame(cv2.imencode('.jpg', astronaut[:, :, ::-1])[1].tobytes(), 'jpeg'),
            RawFrame(coffee.tobytes(), 600, 400, 'rgb8'),
            EncodedFrame(cv2.imencode('.png', coffee[:, :, ::-1])[1].tobytes(), 'png')]


def test_serialized_graphs_give_identical_outputs(tmp_path, frames):
    built = DaliPreprocessor(SPEC, device_id=None)
    paths = built.save(str(tmp_path))
    assert sorted(paths) == ['encoded', 'raw'] and all(tmp_path.joinpath(p).stat().st_size
                                                       for p in ('encoded.dali', 'raw.dali'))
    loaded = DaliPreprocessor.load(str(tmp_path), SPEC, device_id=None)
    first, second = built.run(frames), loaded.run(frames)
    for name in ('ssd', 'seg', 'big'):
        assert first.tensors[name].shape[0] == 3
        np.testing.assert_array_equal(first.tensors[name], second.tensors[name])
    # A loaded graph also recovers from a decode failure (it is re-deserialized).
    broken = EncodedFrame(frames[0].data[:200] + bytes([7]) * 3000 + b'\xff\xd9', 'jpeg')
    assert 0 in loaded.run([broken]).errors
    np.testing.assert_array_equal(loaded.run(frames).tensors['ssd'], first.tensors['ssd'])


def test_load_without_files_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match='DaliPreprocessor.save'):
        DaliPreprocessor.load(str(tmp_path), SPEC, device_id=None)


def test_one_decode_feeds_inputs_of_different_sizes(frames):
    result = DaliPreprocessor(SPEC, device_id=None).run(frames)
    assert result.tensors['ssd'].shape == (3, 3, 300, 300)
    assert result.tensors['seg'].shape == (3, 256, 256, 3)
    assert result.tensors['seg'].dtype == np.float16
    assert result.tensors['big'].shape == (3, 3, 384, 512)
    assert [g.orig_width for g in result.geometries['big']] == [512, 600, 600]


@pytest.mark.skipif(HAS_GPU, reason='checks the behaviour of machines without a GPU')
def test_cpu_only_machine_selection_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger='dali_trt_ros.preprocess.factory'):
        preprocessor = create_preprocessor(SPEC)
    assert preprocessor.backend == 'opencv'
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and 'opencv' in lines[0] and 'no CUDA device' in lines[0]
    assert create_preprocessor(SPEC, device='cpu', cpu_backend='dali').backend == 'dali-cpu'
    with pytest.raises(ConfigError, match='device=gpu'):
        create_preprocessor(SPEC, device='gpu')
    assert detect_dali_mode(0)[0] == 'cpu'


@needs_gpu
@pytest.mark.parametrize('mode', ['gpu', 'gpu-cpudecode'])
def test_gpu_modes_match_reference(frames, mode):
    if mode == 'gpu' and detect_dali_mode(0)[0] != 'gpu':
        pytest.skip('this DALI build has no usable nvJPEG (mixed) decoder')
    ours = DaliPreprocessor(SPEC, device_id=0, mode=mode).run(frames)
    reference = OpenCVPreprocessor(SPEC).run(frames)
    assert ours.errors == {} and ours.backend == f'dali-{mode}'
    for spec in SPEC.inputs:
        std = np.asarray(spec.std).reshape((3, 1, 1) if spec.chw else (3,))
        levels = np.abs(ours.tensors[spec.name].astype(np.float64)
                        - reference.tensors[spec.name].astype(np.float64)) * std
        # nvJPEG's IDCT/upsampling differs from libjpeg-turbo a little more than the CPU path.
        assert levels.mean() <= 1.0 and levels.max() <= 40.0, spec.name
    # Mixed raw + encoded frames take two pipeline runs, so there is no single device batch.
    assert ours.device_tensors is None
    encoded = DaliPreprocessor(SPEC, device_id=0, mode=mode).run([frames[0], frames[2]])
    device = encoded.device_tensors['ssd']
    tensor = device.as_tensor()
    assert tuple(tensor.shape()) == (2, 3, 300, 300) and tensor.data_ptr() != 0
    np.testing.assert_array_equal(device.as_cpu().as_array(), encoded.tensors['ssd'])


@needs_gpu
def test_gpu_auto_selection_and_recovery(frames):
    preprocessor = create_preprocessor(SPEC, device='auto')
    assert preprocessor.backend in ('dali-gpu', 'dali-gpu-cpudecode')
    broken = EncodedFrame(frames[0].data[:200] + bytes([7]) * 3000 + b'\xff\xd9', 'jpeg')
    assert 1 in preprocessor.run([frames[0], broken]).errors
    assert preprocessor.run(frames).errors == {}
