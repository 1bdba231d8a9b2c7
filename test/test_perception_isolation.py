"""PerceptionPipeline: one model failing at run time leaves the others running; stage timings."""

import cv2
import pytest
from skimage import data

from dali_trt_ros.errors import InferenceError
from dali_trt_ros.perception import PerceptionPipeline
from dali_trt_ros.preprocess import EncodedFrame, RawFrame

import fault_models
from golden_photos import detection, SSD


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    broken = fault_models.write_model(tmp_path_factory.mktemp('models'), 'broken')
    chain = PerceptionPipeline.from_models([SSD, str(broken)], device='cpu')
    yield chain
    chain.close()


def test_a_model_raising_does_not_take_the_other_down(pipeline):
    rgb = data.astronaut()
    ok, jpeg = cv2.imencode('.jpg', rgb[:, :, ::-1])
    frames = [RawFrame(rgb.tobytes(), 512, 512, 'rgb8'), EncodedFrame(b'not an image', 'jpeg'),
              EncodedFrame(jpeg.tobytes(), 'jpeg')]
    for _ in range(2):  # and again: the failing model stays usable for the next batch
        results = pipeline.process(frames)
        assert results[1].error is not None and not results[1].model_errors
        for result in (results[0], results[2]):
            assert result.error is None
            assert result.detections[SSD].labels[0] == detection('astronaut')['label']
            assert result.segmentations == {}
            error = result.model_errors['broken_segmenter']
            assert isinstance(error, InferenceError) and error.reason == 'inference_failed'
            assert 'Gather' in str(error) and len(str(error)) < 400


def test_stage_timings_per_model(pipeline):
    rgb = data.chelsea()
    [result] = pipeline.process([RawFrame(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 'rgb8')])
    timings = result.timings_ms
    assert result.batch_size == 1
    assert {'preprocess', f'inference.{SSD}', f'postprocess.{SSD}',
            'inference.broken_segmenter'} <= set(timings)
    assert timings['postprocess.broken_segmenter'] == 0.0  # it failed before decoding
    assert timings['inference.broken_segmenter'] > 0.0  # the time until it failed counts
    assert all(timings[key] > 0.0 for key in ('preprocess', f'inference.{SSD}',
                                              f'postprocess.{SSD}'))


def test_long_errors_are_bounded():
    error = InferenceError.from_exception('m', ValueError('x\n' * 100000))
    assert len(str(error)) < 400 and '\n' not in str(error)
