"""Golden outputs on real photos through the whole chain: preprocess -> engine -> decode.

Each photo goes in as a raw rgb8 frame and as a JPEG (as a CompressedImage would carry it),
through both CPU preprocessing paths (the OpenCV one chosen here by measurement, and DALI's CPU
pipeline), ONNX Runtime, and the decoders. Expectations live in test/golden/photos.json.
"""

import cv2
import numpy as np
import pytest
from skimage import data

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.perception import PerceptionPipeline
from dali_trt_ros.preprocess import EncodedFrame, RawFrame

from golden_photos import DETECTOR_PHOTOS as PHOTOS, GOLDEN, SELFIE, SSD

DEEPLAB = 'deeplabv3_mobilenetv2_untrained'


def frames_for(photo):
    rgb = getattr(data, photo)()
    ok, jpeg = cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return [RawFrame(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 'rgb8'),
            EncodedFrame(jpeg.tobytes(), 'jpeg')]


def _gpu_reason():
    import onnxruntime

    from dali_trt_ros.preprocess import detect_dali_mode
    if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
        return 'this onnxruntime has no CUDA provider (GPU machine only)'
    mode, why = detect_dali_mode(0)
    return None if mode in ('gpu', 'gpu-cpudecode') else f'no DALI GPU mode: {why}'


@pytest.fixture(scope='module', params=['opencv', 'dali', 'gpu'])
def pipeline(request):
    if request.param == 'gpu':
        reason = _gpu_reason()
        if reason:
            pytest.skip(reason)
        # DALI on the GPU feeding ONNX Runtime CUDA by device pointer (zero copy).
        chain = PerceptionPipeline.from_models([SSD, SELFIE, DEEPLAB], device='gpu',
                                               providers=('cuda',), max_batch=2)
    else:
        chain = PerceptionPipeline.from_models([SSD, SELFIE, DEEPLAB], device='cpu',
                                               cpu_backend=request.param, max_batch=2)
    yield chain
    chain.close()


@pytest.mark.parametrize('photo', PHOTOS)
def test_detector_finds_the_golden_object(pipeline, photo):
    expected, tol = GOLDEN[SSD][photo], GOLDEN['tolerances']
    for result in pipeline.process(frames_for(photo)):
        assert result.error is None
        detections = result.detections[SSD]
        assert len(detections) >= 1
        assert detections.labels[0] == expected['label']
        assert detections.scores[0] == pytest.approx(expected['score'], abs=tol['score'])
        np.testing.assert_allclose(detections.boxes[0], expected['box'], atol=tol['box_px'])


def test_person_mask_fraction_and_alignment(pipeline):
    expected = GOLDEN[SELFIE]['astronaut']
    low, high = expected['fraction_band']
    for result in pipeline.process(frames_for('astronaut')):
        mask = result.segmentations[SELFIE]
        assert mask.label_map.shape == (512, 512)  # original size, not the model's 256x256
        assert low <= mask.class_fractions[expected['label']] <= high
    # Alignment: the mask of a crop must match the same crop of the full-frame mask. The crop
    # has another size and aspect, so a mapping error shows up as a shift (a 20-pixel shift
    # gives IoU ~0.89 here; aligned masks measured 0.99).
    rgb = data.astronaut()
    full = pipeline.process([RawFrame(rgb.tobytes(), 512, 512, 'rgb8')])[0]
    crop = np.ascontiguousarray(rgb[:, 96:])
    cropped = pipeline.process([RawFrame(crop.tobytes(), 416, 512, 'rgb8')])[0]
    a = cropped.segmentations[SELFIE].label_map == 1
    b = full.segmentations[SELFIE].label_map[:, 96:] == 1
    assert (a & b).sum() / (a | b).sum() > 0.95


def test_untrained_deeplab_has_the_right_shape_and_says_so(pipeline):
    [result, _] = pipeline.process(frames_for('coffee'))
    seg = result.segmentations[DEEPLAB]
    assert seg.label_map.shape == (400, 600)
    assert abs(sum(seg.class_fractions.values()) - 1.0) < 1e-6
    model = next(m for m in pipeline.models if m.name == DEEPLAB)
    assert model.description.trained is False


def test_a_corrupt_frame_in_the_batch_spares_the_others(pipeline):
    good = frames_for('chelsea')[1]
    results = pipeline.process([EncodedFrame(good.data[:400], 'jpeg'), good])
    assert results[0].error is not None and results[0].error.reason == 'corrupt_image'
    assert results[0].detections == {}
    assert results[1].error is None and results[1].detections[SSD].labels[0] == 'Cat'


def test_set_thresholds_reaches_the_right_decoders_and_checks_first(pipeline):
    detector = next(m for m in pipeline.models if m.name == SSD).decoder
    person = next(m for m in pipeline.models if m.name == SELFIE).decoder
    before = (detector.score_threshold, detector.nms_iou_threshold, person.probability_threshold)
    try:
        with pytest.raises(ConfigError, match='mask_threshold'):
            pipeline.set_thresholds(score=0.9, mask=1.5)
        assert detector.score_threshold == before[0]  # a bad call changes nothing
        pipeline.set_thresholds(score=0.99, nms_iou=0.3, mask=0.999)
        assert (detector.score_threshold, detector.nms_iou_threshold) == (0.99, 0.3)
        assert person.probability_threshold == 0.999
        [raw, _] = pipeline.process(frames_for('astronaut'))
        assert len(raw.detections[SSD]) == 0  # best score is ~0.58
        fraction = raw.segmentations[SELFIE].class_fractions['person']
        assert fraction < GOLDEN[SELFIE]['astronaut']['fraction_band'][0]
        pipeline.set_thresholds(score=before[0])
        assert detector.nms_iou_threshold == 0.3  # None leaves a threshold as it is
    finally:
        pipeline.set_thresholds(*before)
