"""Post-processing in the model graph gives the host path's results, on real photos.

The same frames go through two chains that differ only in ``postprocess``: 'host' (NumPy
decoders) and 'device' (argmax/threshold/resize and SSD candidate selection appended to the ONNX
graph, see dali_trt_ros.models.variants). Here both run on ONNX Runtime CPU; on the GPU machine
the 'cuda' parameter runs both chains on DALI GPU + ONNX Runtime CUDA.

Tolerances: masks identical (the graph gathers with the host's own indices; a probability that
sits within float rounding of the threshold could flip one pixel, so 1e-4 of the pixels may
differ); detections identical in labels and boxes within 1e-3 px, scores within 1e-5 (sigmoid
computed by ONNX Runtime instead of NumPy).
"""

import cv2
import numpy as np
import pytest
from skimage import data

from dali_trt_ros.models import load_model_description
from dali_trt_ros.models.variants import prepare_variant, variant_metadata
from dali_trt_ros.perception import PerceptionPipeline
from dali_trt_ros.preprocess import EncodedFrame, RawFrame

SSD, SELFIE, DEEPLAB = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation',
                        'deeplabv3_mobilenetv2_untrained')
MODELS = [SSD, SELFIE, DEEPLAB]


def photo_frames():
    """Raw and JPEG frames of three photos of different sizes and aspect ratios."""
    frames = []
    for name in ('astronaut', 'chelsea', 'coffee'):
        rgb = getattr(data, name)()
        ok, jpeg = cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        frames += [RawFrame(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 'rgb8'),
                   EncodedFrame(jpeg.tobytes(), 'jpeg')]
    return frames


def _cuda_reason():
    import onnxruntime
    if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
        return 'this onnxruntime has no CUDA provider (GPU machine only)'
    return None


@pytest.fixture(scope='module')
def host_results():
    chain = PerceptionPipeline.from_models(MODELS, device='cpu', cpu_backend='opencv',
                                           postprocess='host', max_batch=2)
    try:
        yield chain.process(photo_frames())
    finally:
        chain.close()


# The two chains of a comparison share their preprocessing and execution provider and differ
# only in `postprocess`: DALI's resize and OpenCV's differ slightly, so comparing a DALI GPU device
# chain with an OpenCV host chain would measure the preprocessing, not the post-processing.
SETUPS = {'cpu': dict(device='cpu', cpu_backend='opencv'),
          'cuda': dict(device='auto', providers=('cuda',))}


@pytest.fixture(scope='module', params=sorted(SETUPS))
def paired_chains(request, host_results):
    """(host-path results, device-path chain) for one set-up, same preprocessing."""
    if request.param == 'cuda':
        reason = _cuda_reason()
        if reason:
            pytest.skip(reason)
        host = PerceptionPipeline.from_models(MODELS, postprocess='host', max_batch=2,
                                              **SETUPS['cuda'])
        try:
            reference = host.process(photo_frames())
        finally:
            host.close()
    else:
        reference = host_results
    chain = PerceptionPipeline.from_models(MODELS, postprocess='device', max_batch=2,
                                           **SETUPS[request.param])
    yield reference, chain
    chain.close()


@pytest.fixture(scope='module')
def device_chain(paired_chains):
    return paired_chains[1]


def test_device_chain_reads_only_the_small_outputs(device_chain):
    outputs = {runner.name: [t.name for t in runner.engine.outputs]
               for runner in device_chain.models}
    assert outputs[SSD] == ['raw_outputs/box_encodings', 'dtr_candidate_scores',
                            'dtr_candidate_indices']
    assert outputs[DEEPLAB] == ['dtr_label_map', 'dtr_mask']  # no 21x512x512 float logits
    assert outputs[SELFIE] == ['dtr_label_map', 'dtr_mask']


def test_masks_equal_the_host_masks(paired_chains):
    host_results, device_chain = paired_chains
    device_results = device_chain.process(photo_frames())
    for host, device in zip(host_results, device_results):
        assert host.error is None and device.error is None
        for model in (SELFIE, DEEPLAB):
            want, got = host.segmentations[model], device.segmentations[model]
            assert got.label_map.shape == want.label_map.shape
            assert got.label_map.dtype == np.uint8
            differing = np.count_nonzero(got.label_map != want.label_map)
            assert differing <= 1e-4 * want.label_map.size, (model, differing)
            for label, fraction in want.class_fractions.items():
                assert got.class_fractions[label] == pytest.approx(fraction, abs=1e-4)


def test_detections_equal_the_host_detections(paired_chains):
    host_results, device_chain = paired_chains
    device_results = device_chain.process(photo_frames())
    for host, device in zip(host_results, device_results):
        want, got = host.detections[SSD], device.detections[SSD]
        assert len(want) >= 1
        assert got.labels == want.labels
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_thresholds_still_change_at_run_time(device_chain):
    frames = photo_frames()[:1]  # astronaut: the person mask covers about half the picture
    try:
        device_chain.set_thresholds(mask=0.5)
        half = device_chain.process(frames)[0].segmentations[SELFIE].class_fractions['person']
        device_chain.set_thresholds(mask=0.999)
        strict = device_chain.process(frames)[0].segmentations[SELFIE].class_fractions['person']
        assert strict < half - 0.02  # measured 0.545 -> 0.510
        device_chain.set_thresholds(score=0.99)
        assert len(device_chain.process(frames)[0].detections[SSD]) == 0
    finally:
        device_chain.set_thresholds(score=0.4, mask=0.5)


def test_more_candidates_than_k_equal_the_host_path_with_pre_nms_top_k():
    """Every score passes a 0.0 threshold: the device keeps the K best, as pre_nms_top_k: K."""
    description = load_model_description(SSD)
    k = int(variant_metadata(prepare_variant(description, 'device'))['dtr_candidates'])
    chains = {where: PerceptionPipeline.from_models([SSD], device='cpu', cpu_backend='opencv',
                                                    postprocess=where)
              for where in ('host', 'device')}
    try:
        results = {}
        for where, chain in chains.items():
            decoder = chain.models[0].decoder
            decoder.score_threshold = 0.0
            decoder.top_k = None
            if where == 'host':
                decoder.pre_nms_top_k = k
            results[where] = chain.process(photo_frames()[:1])[0].detections[SSD]
    finally:
        for chain in chains.values():
            chain.close()
    want, got = results['host'], results['device']
    assert 100 < len(want) <= k
    assert got.labels == want.labels
    np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


@pytest.mark.parametrize('provider', ['cpu', 'cuda'])
def test_fp16_variant_stays_close_to_fp32(host_results, provider):
    """FP16 weights: same top detection on every photo, person mask within 1 % of the pixels."""
    if provider == 'cuda' and _cuda_reason():
        pytest.skip(_cuda_reason())
    try:
        chain = PerceptionPipeline.from_models([SSD, SELFIE], device='cpu',
                                               cpu_backend='opencv', postprocess='host',
                                               providers=(provider,), precision='fp16',
                                               max_batch=2)
    except Exception as error:  # ONNX Runtime CPU may lack float16 kernels for some ops
        pytest.skip(f'FP16 model does not load on this ONNX Runtime: {error}')
    try:
        results = chain.process(photo_frames())
    finally:
        chain.close()
    for host, fp16 in zip(host_results, results):
        want, got = host.detections[SSD], fp16.detections[SSD]
        assert got.labels[0] == want.labels[0]
        assert got.scores[0] == pytest.approx(want.scores[0], abs=0.02)
        np.testing.assert_allclose(got.boxes[0], want.boxes[0], atol=3.0)
        a, b = host.segmentations[SELFIE].label_map, fp16.segmentations[SELFIE].label_map
        assert np.count_nonzero(a != b) <= 0.01 * a.size


@pytest.mark.parametrize('model', MODELS)
def test_variants_take_a_batch_of_four_with_the_per_frame_results(model):
    """The base models are exported for batch 1; their variants run four cameras at once."""
    import onnxruntime as ort
    description = load_model_description(model)
    base = ort.InferenceSession(str(description.onnx_path), providers=['CPUExecutionProvider'])
    variant = ort.InferenceSession(str(prepare_variant(description, 'host', 'fp16')),
                                   providers=['CPUExecutionProvider'])
    batched_fp32 = _batch_dynamic_fp32(description)
    name = description.input['name']
    frames = np.random.default_rng(3).uniform(
        -1, 1, (4, 3, description.input['height'], description.input['width'])).astype(np.float32)
    per_frame = [base.run(None, {name: frames[i:i + 1]}) for i in range(4)]
    for session, atol in ((batched_fp32, 1e-5), (variant, None)):
        outputs = session.run(None, {name: frames})
        for index, output in enumerate(outputs):
            assert output.shape[0] == 4
            want = np.concatenate([p[index] for p in per_frame])
            if atol is not None:
                np.testing.assert_allclose(output, want, atol=atol)
            else:  # FP16 weights: the batch of four equals the same variant run frame by frame
                single = np.concatenate([session.run(None, {name: frames[i:i + 1]})[index]
                                         for i in range(4)])
                np.testing.assert_allclose(output, single, atol=1e-5)


def _batch_dynamic_fp32(description):
    import onnx
    import onnxruntime as ort

    from dali_trt_ros.models.variants import make_batch_dynamic
    model = make_batch_dynamic(onnx.load(str(description.onnx_path)))
    return ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
