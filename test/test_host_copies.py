"""Host copies of preprocessed tensors are made only when read (no hidden device->host copies).

The GPU test runs on the GPU machine: DALI GPU feeding ONNX Runtime CUDA must leave every
preprocessed tensor on the device. Before this change ``DaliPreprocessor._assemble`` copied every
DALI GPU output to the host on every run, whether or not an engine needed it.
"""

import numpy as np
import pytest

from dali_trt_ros.preprocess.result import HostCopies
from golden_photos import detection, SSD


def test_copies_are_made_once_and_only_when_read():
    calls = []

    def copy():
        calls.append(1)
        return np.arange(3)

    tensors = HostCopies({'ssd': copy, 'selfie': copy}, valid=lambda: True)
    assert sorted(tensors) == ['selfie', 'ssd'] and len(tensors) == 2
    assert calls == [] and tensors.copied == []
    np.testing.assert_array_equal(tensors['ssd'], [0, 1, 2])
    tensors['ssd']
    assert calls == [1] and tensors.copied == ['ssd']
    with pytest.raises(KeyError):
        tensors['missing']


def test_a_copy_first_read_after_the_next_run_raises_instead_of_returning_new_data():
    state = {'generation': 1}
    tensors = HostCopies({'ssd': lambda: np.zeros(2)}, valid=lambda: state['generation'] == 1)
    state['generation'] = 2  # the preprocessor ran again and reused its device memory
    with pytest.raises(RuntimeError, match='before the next run'):
        tensors['ssd']


def test_gpu_chain_leaves_preprocessed_tensors_on_the_device():
    import onnxruntime

    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import detect_dali_mode, EncodedFrame
    if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime has no CUDA provider (GPU machine only)')
    if detect_dali_mode(0)[0] not in ('gpu', 'gpu-cpudecode'):
        pytest.skip('no DALI GPU mode here (GPU machine only)')
    import cv2
    from skimage import data
    jpeg = cv2.imencode('.jpg', data.astronaut()[:, :, ::-1])[1].tobytes()
    chain = PerceptionPipeline.from_models(
        ['ssd_mobilenetv2_oidv4', 'selfie_segmentation'], device='gpu', providers=('cuda',))
    try:
        results = []
        run = chain.preprocessor.run
        chain.preprocessor.run = lambda frames: results.append(run(frames)) or results[-1]
        [frame] = chain.process([EncodedFrame(jpeg, 'jpeg')])
        assert frame.detections[SSD].labels[0] == detection('astronaut')['label']
        assert results[0].device_tensors is not None
        assert results[0].tensors.copied == []
    finally:
        chain.close()
