"""Decoders on real model outputs (ONNX Runtime, CPU) for scikit-image photos.

Skipped when the converted models are not in the model cache (``prepare_models`` creates them).
"""

import pathlib

import numpy as np
import pytest

from dali_trt_ros.decoders import SegmentationDecoder, SsdDecoder
from dali_trt_ros.models.cache import default_cache_dir
from dali_trt_ros.preprocess.geometry import FrameGeometry
from golden_photos import DETECTOR_PHOTOS, detection, SAME_PATH_TOLERANCES

REPO = pathlib.Path(__file__).resolve().parents[1]
ort = pytest.importorskip('onnxruntime')
cv2 = pytest.importorskip('cv2')
yaml = pytest.importorskip('yaml')
skimage_data = pytest.importorskip('skimage.data')


def model_and_decoder(name, decoder_class):
    config = yaml.safe_load((REPO / 'config' / 'models' / f'{name}.yaml').read_text())
    path = pathlib.Path(default_cache_dir()) / config['onnx']
    if not path.is_file():
        pytest.skip(f'{path} is missing; run prepare_models {name} first')
    labels = [line.strip() for line in
              (REPO / 'config' / config['labels']).read_text().splitlines() if line.strip()]
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return config, session, decoder_class.from_config(config['decoder'], labels)


def run(session, tensor):
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: tensor})))


def model_input(image, geometry, mean, std):
    """Resize into the content window of a zero canvas, normalize, NCHW float32."""
    canvas = np.zeros((geometry.input_height, geometry.input_width, 3), np.float32)
    x0, y0, x1, y1 = geometry.content_window()
    canvas[y0:y1, x0:x1] = cv2.resize(image, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    normalized = (canvas - np.float32(mean)) / np.float32(std)
    return normalized.transpose(2, 0, 1)[None].astype(np.float32)


@pytest.mark.parametrize('photo', DETECTOR_PHOTOS)
def test_ssd_on_photos(photo):
    config, session, decoder = model_and_decoder('ssd_mobilenetv2_oidv4', SsdDecoder)
    image = getattr(skimage_data, photo)()
    geometry = FrameGeometry.stretch(image.shape[1], image.shape[0], 300, 300)
    outputs = run(session, model_input(image, geometry, [127.5] * 3, [127.5] * 3))
    [detections] = decoder.decode(outputs, [geometry])
    expected, tolerance = detection(photo), SAME_PATH_TOLERANCES
    assert detections.labels[0] == expected['label']
    assert detections.scores[0] == pytest.approx(expected['score'], abs=tolerance['score'])
    # The recording path itself: a few pixels of slack for other ONNX Runtime builds.
    np.testing.assert_allclose(detections.boxes[0], expected['box'], atol=tolerance['box_px'])


def test_selfie_segmentation_letterbox_agrees_with_stretch():
    config, session, decoder = model_and_decoder('selfie_segmentation', SegmentationDecoder)
    image = np.ascontiguousarray(skimage_data.astronaut()[:, 40:400])  # 360 x 512, portrait
    masks = {}
    for mode in ('stretch', 'letterbox'):
        geometry = getattr(FrameGeometry, mode)(360, 512, 256, 256)
        outputs = run(session, model_input(image, geometry, [0.0] * 3, [255.0] * 3))
        [result] = decoder.decode(outputs, [geometry])
        assert result.label_map.shape == (512, 360)
        assert 0.45 < result.class_fractions['person'] < 0.65
        masks[mode] = result.label_map.astype(bool)
    overlap = (masks['stretch'] & masks['letterbox']).sum() / (masks['stretch']
                                                               | masks['letterbox']).sum()
    # Measured 0.91; a mask misplaced by the letterbox padding (20 px) drops to about 0.75.
    assert overlap > 0.85
