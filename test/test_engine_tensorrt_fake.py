"""The TensorRT backend's call sequence, against a fake ``tensorrt`` (test/fake_tensorrt.py).

Each test names the defect of issue 9 it covers; the fake enforces the documented signatures and
return values of TensorRT 8.5 / 8.6 / 10.x, and runs the engine's ONNX model with ONNX Runtime,
so outputs are compared with the ONNX Runtime backend. The real thing runs on the GPU machine
(tools/verify_tensorrt.py).
"""

import json
import logging
import os
import threading

import numpy as np
import pytest

from dali_trt_ros.engines import DeviceBuffer, EngineConfig, load_engine
from dali_trt_ros.engines import tensorrt_engine
from dali_trt_ros.errors import ConfigError, ModelError
from fake_tensorrt import FakeCuda, make_tensorrt
from sample_model import write_conv_relu_model


@pytest.fixture
def fake(monkeypatch):
    """Install a fake TensorRT; call it with version/num_dla_cores to get (trt, cuda)."""
    def install(version='8.6.1', num_dla_cores=0, **options):
        cuda = FakeCuda()
        trt = make_tensorrt(version, num_dla_cores, cuda=cuda, **options)
        monkeypatch.setitem(__import__('sys').modules, 'tensorrt', trt)
        monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', lambda: cuda)
        # One logger per process: a fresh one per fake module (each test is a new "process").
        monkeypatch.setattr(tensorrt_engine, '_logger', None)
        monkeypatch.setattr(tensorrt_engine, '_builtin_plugins_loaded', False)
        return trt, cuda
    return install


@pytest.fixture
def model(tmp_path):
    return write_conv_relu_model(tmp_path / 'net.onnx')[0]


def trt_config(model, tmp_path, **values):
    return EngineConfig.from_dict({'model': model, 'backend': 'tensorrt',
                                   'engine_cache_dir': str(tmp_path / 'engines'), **values})


def images(batch=1):
    return np.random.default_rng(1).random((batch, 3, 8, 8), np.float32)


@pytest.mark.parametrize('version', ['8.5.2.2', '8.6.1', '10.3.0'])
def test_build_cache_and_run_match_onnxruntime(fake, model, tmp_path, version):
    """Builds, stores, reloads from the cache and runs like ONNX Runtime on 8.5, 8.6 and 10.x.

    Defect 1: on 8.5, trt.nptype raises with NumPy >= 1.24, so this failed on every load.
    """
    trt, cuda = fake(version)
    cfg = trt_config(model, tmp_path)
    with load_engine({'model': model}) as reference:
        expected = reference.run({'images': images()})
    with load_engine(cfg) as engine:
        assert engine.built
        assert [t.dtype for t in engine.inputs + engine.outputs] == [np.float32] * 3
        result = engine.run({'images': images()})
    for name in expected:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-6)
    builders = trt.state.builders
    with load_engine(cfg) as engine:
        assert not engine.built
        np.testing.assert_allclose(engine.run({'images': images()})['pooled'],
                                   expected['pooled'], rtol=1e-6)
    assert trt.state.builders == builders, 'a cache hit must not create a Builder'
    assert cuda.memory == {} and cuda.streams == set() and cuda.events == set()


def test_cache_hit_makes_no_builder_and_no_layer_report(fake, model, tmp_path):
    """Also-list: a Builder and the inspector report were created even on a cache hit (15 s)."""
    trt, _ = fake()
    cfg = trt_config(model, tmp_path)
    load_engine(cfg).close()
    assert (trt.state.builders, trt.state.inspector_calls) == (1, 1)
    trt.state.calls.clear()
    load_engine(cfg).close()
    assert (trt.state.builders, trt.state.inspector_calls) == (1, 1)
    assert [call[0] for call in trt.state.calls] == ['Runtime', 'deserialize_cuda_engine']


def test_layer_report_with_control_characters_and_failing_inspector_keep_the_engine(
        fake, model, tmp_path):
    """The first real run crashed in json.loads of the inspector output and lost the engine."""
    trt, _ = fake()
    cfg = trt_config(model, tmp_path)
    load_engine(cfg).close()
    record = json.loads((tmp_path / 'engines' / 'net.fp32.gpu.engine.json').read_text())
    assert 'layer: Conv_0\x01\x1f' in record['notes']
    trt, _ = fake(inspector_error=RuntimeError('inspector broke'))
    other = trt_config(model, tmp_path, engine_cache_dir=str(tmp_path / 'second'))
    with load_engine(other) as engine:
        assert engine.built
    path = tmp_path / 'second' / 'net.fp32.gpu.engine'
    assert path.is_file()
    notes = json.loads(path.with_name(path.name + '.json').read_text())['notes']
    assert 'layer report unavailable: RuntimeError: inspector broke' in notes
    with load_engine(other) as engine:
        assert not engine.built


def test_one_logger_per_process_filtering_before_formatting(
        fake, model, tmp_path, monkeypatch):
    """Also-list: a logger per engine; every verbose message went through Python logging."""
    trt, _ = fake(verbose_messages=500)
    forwarded = []
    monkeypatch.setattr(tensorrt_engine.LOG, 'log', lambda *args: forwarded.append(args))
    tensorrt_engine.LOG.setLevel(logging.INFO)
    try:
        load_engine(trt_config(model, tmp_path)).close()
        load_engine(trt_config(model, tmp_path, precision='fp16')).close()
    finally:
        tensorrt_engine.LOG.setLevel(logging.NOTSET)
    assert len(trt.state.loggers) == 1 and trt.state.logger_warnings == []
    # 2 builds x (500 verbose + 1 info) reached the logger; none was below INFO's threshold.
    assert forwarded == []


def test_calibration_uses_the_node_preprocessing_choice(fake, model, tmp_path, monkeypatch,
                                                        photo_folder):
    """Defect 2: calibration built the DALI 'mixed' Preprocessor directly (absent on Jetson)."""
    from dali_trt_ros.preprocess import factory
    seen = []
    real = factory.create_preprocessor

    def spy(spec, device=None, device_id=0, **kwargs):
        seen.append((device, device_id))
        return real(spec, device='cpu', device_id=device_id, **kwargs)
    monkeypatch.setattr(factory, 'create_preprocessor', spy)
    trt, cuda = fake()
    cfg = trt_config(model, tmp_path, precision='int8', calibration={
        'images': str(photo_folder), 'preprocess': PREPROCESS})
    load_engine(cfg).close()
    assert seen == [('auto', 0)]
    assert cuda.memory == {} and cuda.streams == set()


PREPROCESS = {'inputs': [{'name': 'images', 'width': 8, 'height': 8, 'mean': [127.5] * 3,
                          'std': [127.5] * 3}]}


@pytest.fixture
def photo_folder(tmp_path):
    """Five real photographs (scikit-image) as JPEG files."""
    import cv2
    from skimage import data
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left'):
        image = getattr(data, name)() if name != 'motorcycle_left' else data.stereo_motorcycle()[0]
        cv2.imwrite(str(folder / f'{name}.jpg'), np.ascontiguousarray(image[:, :, ::-1]))
    return folder


def test_calibration_reads_every_image_at_the_opt_batch(fake, tmp_path, photo_folder):
    """Defect 3: a batch-1 model read 1 row of each 8-image batch; opt > batch read past it."""
    trt, _ = fake()
    model = write_conv_relu_model(tmp_path / 'net.onnx')[0]
    cfg = trt_config(model, tmp_path, precision='int8', calibration={
        'images': str(photo_folder), 'preprocess': PREPROCESS})
    load_engine(cfg).close()
    assert trt.state.calibration_rows == [1] * 5
    dynamic = write_conv_relu_model(tmp_path / 'dyn.onnx', batch='N')[0]
    trt, _ = fake()
    cfg = trt_config(dynamic, tmp_path, precision='int8', inputs=[{
        'name': 'images', 'min_shape': [1, 3, 8, 8], 'opt_shape': [2, 3, 8, 8],
        'max_shape': [4, 3, 8, 8]}], calibration={'images': str(photo_folder),
                                                  'preprocess': PREPROCESS})
    load_engine(cfg).close()
    assert trt.state.calibration_rows == [2, 2]  # 5 photos -> 2 full batches of the opt shape
    batches = [call for call in trt.state.calls if call[0] == 'calibration batch']
    assert all(call[3] > 0 for call in batches), 'calibration batches held real data'


def test_calibration_exception_fails_the_build_loudly(fake, model, tmp_path, photo_folder,
                                                      monkeypatch):
    """Defect 4: get_batch exceptions are swallowed by the 8.5 trampoline; calibration ended."""
    from dali_trt_ros.engines import calibration
    calls = []

    def broken(self, encoded):
        calls.append(len(encoded))
        if len(calls) == 2:
            raise RuntimeError('decoder crashed')
        return np.zeros((len(encoded), 3, 8, 8), np.float32)
    monkeypatch.setattr(calibration.CalibrationPreprocessing, '__call__', broken)
    trt, cuda = fake('8.5.2.2')
    cfg = trt_config(model, tmp_path, precision='int8', calibration={
        'images': str(photo_folder), 'preprocess': PREPROCESS})
    with pytest.raises(ModelError, match='INT8 calibration failed: decoder crashed'):
        load_engine(cfg)
    assert not (tmp_path / 'engines' / 'net.int8.gpu.engine').exists()
    assert cuda.memory == {} and cuda.streams == set(), 'calibrator buffer and stream freed'


def test_dla_core_is_set_on_the_runtime_before_deserializing(fake, model, tmp_path):
    """Defect 5: runtime.DLA_core was never set, so dla_core: 1 ran on core 0."""
    trt, _ = fake('8.5.2.2', num_dla_cores=2)
    cfg = trt_config(model, tmp_path, precision='fp16', dla_core=1)
    for _ in range(2):  # built, then from the cache
        trt.state.calls.clear()
        with load_engine(cfg) as engine:
            engine.run({'images': images()})
        names = [call[0] for call in trt.state.calls]
        assert ('Runtime.DLA_core', 1) in trt.state.calls
        assert names.index('Runtime.DLA_core') < names.index('deserialize_cuda_engine')
        assert ('deserialize_cuda_engine', 1) in trt.state.calls
    assert trt.state.executions == [1, 1]
    record = json.loads((tmp_path / 'engines' / 'net.fp16.dla1.engine.json').read_text())
    # The builder's own answer (can_run_on_DLA) is kept: the fake's DLA has no ReduceMean.
    assert '2 of 3 layers can run on DLA' in record['notes']
    assert 'on GPU: ReduceMean_2 (ReduceMean)' in record['notes']


def test_no_dla_here_falls_back_or_fails_as_configured(fake, model, tmp_path, caplog):
    trt, _ = fake(num_dla_cores=0)
    with caplog.at_level(logging.WARNING):
        with load_engine(trt_config(model, tmp_path, precision='fp16', dla_core=0)) as engine:
            engine.run({'images': images()})
    assert 'has no DLA cores; building for the GPU' in caplog.text
    assert trt.state.executions == [None]
    with pytest.raises(ConfigError, match='gpu_fallback false, but Fake GPU has no DLA cores'):
        load_engine(trt_config(model, tmp_path, precision='fp16', dla_core=0,
                               gpu_fallback=False))


def test_refused_tensor_address_and_shape_raise(fake, model, tmp_path):
    """Defect 6: set_tensor_address / set_input_shape returning False was ignored."""
    _, cuda = fake()
    with load_engine(trt_config(model, tmp_path)) as engine:
        host = images()
        pointer = cuda.upload(np.zeros(host.size + 64, np.float32))
        misaligned = DeviceBuffer(pointer + 4, host.shape, np.float32)
        with pytest.raises(ModelError, match="refused the address of tensor 'images'"):
            engine.run({'images': misaligned})
        aligned = DeviceBuffer(cuda.upload(host), host.shape, np.float32)
        assert engine.run({'images': aligned})['pooled'].shape == (1, 4)
        cuda.free(pointer)
        cuda.free(aligned.data_ptr)
    dynamic = write_conv_relu_model(tmp_path / 'dyn.onnx', batch='N')[0]
    with load_engine(trt_config(dynamic, tmp_path, inputs=[{
            'name': 'images', 'min_shape': [1, 3, 8, 8], 'max_shape': [2, 3, 8, 8]}])) as engine:
        assert engine.run({'images': images(2)})['pooled'].shape == (2, 4)
        with pytest.raises(ModelError, match='outside the optimization profile'):
            engine.run({'images': images(3)})


def test_run_sets_the_device_on_the_calling_thread(fake, model, tmp_path):
    """Also-list: the CUDA device was set only on the constructing thread."""
    fake()
    with load_engine(trt_config(model, tmp_path, device_id=1)) as engine:
        outcome = []
        worker = threading.Thread(target=lambda: outcome.append(
            engine.run({'images': images()})['pooled'].shape))
        worker.start()
        worker.join()
        assert outcome == [(1, 4)]


def test_changed_key_rebuilds_and_timing_cache_is_reused(fake, model, tmp_path):
    """Defect 7 (key) and deliverable 4 (timing cache reused between builds of one model)."""
    trt, _ = fake()
    load_engine(trt_config(model, tmp_path)).close()
    load_engine(trt_config(model, tmp_path, workspace_mib=64)).close()
    load_engine(trt_config(model, tmp_path, tactic_sources=['JIT_CONVOLUTIONS'])).close()
    load_engine(trt_config(model, tmp_path, builder_optimization_level=0)).close()
    assert trt.state.builders == 4
    # Every build after the first started from the timings of the ones before.
    assert [len(entries) for entries in trt.state.timing_cache_loaded] == [0, 1, 2, 3]
    assert trt.state.timing_cache_rejected == []
    timing = [name for name in os.listdir(tmp_path / 'engines') if name.startswith('timing.')]
    assert len(timing) == 1 and timing[0].endswith('.fp32.gpu.8.6.1_Fake_GPU.cache')


def test_timing_cache_is_per_model_and_precision(fake, tmp_path, caplog):
    """GPU run 1: one cache shared by all models was rejected by TensorRT 8.6 on every build
    after the first (Myelin graphs of another network), with two ERROR lines each time.

    Each model and precision now has its own cache, so no build is given another network's
    cache, nothing is logged at ERROR, and a rebuild of the same model reuses its timings.
    """
    trt, _ = fake()
    first = write_conv_relu_model(tmp_path / 'first.onnx')[0]
    second = write_conv_relu_model(tmp_path / 'second.onnx', seed=1)[0]
    with caplog.at_level(logging.INFO, logger='dali_trt_ros'):
        for path, precision in ((first, 'fp32'), (first, 'fp16'), (second, 'fp32')):
            load_engine(trt_config(path, tmp_path, precision=precision)).close()
        load_engine(trt_config(first, tmp_path, workspace_mib=64)).close()
    assert trt.state.timing_cache_rejected == []
    assert [len(entries) for entries in trt.state.timing_cache_loaded] == [0, 0, 0, 1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    timing = [n for n in os.listdir(tmp_path / 'engines') if n.startswith('timing.')]
    assert len(timing) == 3


def test_a_rejected_timing_cache_is_a_warning_and_is_replaced(fake, tmp_path, caplog):
    """A timing cache TensorRT refuses (here: one shared file set by ``timing_cache``) costs a
    warning, never an ERROR line of ours; the file is deleted so the next build starts afresh
    and then reuses its own timings."""
    trt, _ = fake()
    shared = str(tmp_path / 'shared.cache')
    first = write_conv_relu_model(tmp_path / 'first.onnx')[0]
    second = write_conv_relu_model(tmp_path / 'second.onnx', seed=1)[0]
    with caplog.at_level(logging.INFO, logger='dali_trt_ros'):
        load_engine(trt_config(first, tmp_path, timing_cache=shared)).close()
        load_engine(trt_config(second, tmp_path, timing_cache=shared)).close()
        assert len(trt.state.timing_cache_rejected) == 1
        assert not os.path.exists(shared)
        load_engine(trt_config(second, tmp_path, timing_cache=shared,
                               workspace_mib=64)).close()
        load_engine(trt_config(second, tmp_path, timing_cache=shared,
                               workspace_mib=32)).close()
    assert len(trt.state.timing_cache_rejected) == 1
    assert [len(entries) for entries in trt.state.timing_cache_loaded] == [0, 0, 1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    handled = [r.getMessage() for r in caplog.records if 'handled' in r.getMessage()]
    assert len(handled) == 2 and all(r.startswith('TensorRT: ') for r in handled)
    record = json.load(open(tmp_path / 'engines' / 'second.fp32.gpu.engine.json'))
    assert any('timing cache' in note and '(reused)' in note for note in record['notes'])


def test_builder_settings_reach_tensorrt(fake, model, tmp_path, monkeypatch):
    trt, _ = fake()
    configs = []
    real = trt.Builder.build_serialized_network

    def spy(self, network, config):
        configs.append(config)
        return real(self, network, config)
    monkeypatch.setattr(trt.Builder, 'build_serialized_network', spy)
    load_engine(trt_config(model, tmp_path, precision='fp16', builder_optimization_level=1,
                           tactic_sources=['EDGE_MASK_CONVOLUTIONS', 'JIT_CONVOLUTIONS'],
                           workspace_mib=256)).close()
    [config] = configs
    assert config.builder_optimization_level == 1
    assert config.get_tactic_sources() == 0b11000
    assert config.pools[trt.MemoryPoolType.WORKSPACE] == 256 << 20
    assert config.get_flag(trt.BuilderFlag.FP16) and not config.get_flag(trt.BuilderFlag.INT8)
    assert not config.get_flag(trt.BuilderFlag.TF32), 'TF32 off unless cuda_tf32 is set'
    configs.clear()
    load_engine(trt_config(model, tmp_path, cuda_tf32=True)).close()
    assert configs[0].get_flag(trt.BuilderFlag.TF32)
    fake('8.5.2.2')  # no builder_optimization_level before 8.6: skipped with a plan warning
    load_engine(trt_config(model, tmp_path, builder_optimization_level=1)).close()


def test_stale_or_swapped_engine_is_not_loaded(fake, model, tmp_path):
    """Security: an engine is loaded only when its record matches the key and its bytes."""
    trt, _ = fake()
    cfg = trt_config(model, tmp_path)
    load_engine(cfg).close()
    path = tmp_path / 'engines' / 'net.fp32.gpu.engine'
    path.write_bytes(path.read_bytes().replace(b'"device": "gpu"', b'"device": "dla"'))
    with load_engine(cfg) as engine:
        assert engine.built, 'a changed engine file is rebuilt, not run'
    assert oct(os.stat(tmp_path / 'engines').st_mode & 0o777) == '0o700'


def test_cuda_failure_at_run_time_is_counted_as_a_cuda_error(fake, tmp_path, monkeypatch):
    """Issue 8: CUDA failures were ModelErrors, so diagnostics counted them as model errors."""
    from dali_trt_ros.errors import CudaError
    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import EncodedFrame
    from dali_trt_ros.tools.verify_tensorrt import write_photos
    from dali_trt_ros.models import load_model_description
    if not load_model_description('selfie_segmentation').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    _, cuda = fake()
    pipeline = PerceptionPipeline.from_models(
        ['selfie_segmentation'], backend='tensorrt', device='cpu', postprocess='host',
        engine_overrides={'selfie_segmentation': {'engine_cache_dir': str(tmp_path / 'e')}})
    try:
        write_photos(str(tmp_path))
        photo = (tmp_path / 'photos' / 'golden' / 'astronaut.jpg').read_bytes()
        [good] = pipeline.process([EncodedFrame(photo)])
        assert not good.model_errors and 'selfie_segmentation' in good.segmentations

        def out_of_memory(*args):
            raise CudaError('CUDA cudaMemcpyAsync failed: cudaErrorIllegalAddress (700)')
        monkeypatch.setattr(cuda, 'memcpy_async', out_of_memory)
        [bad] = pipeline.process([EncodedFrame(photo)])
        # Counted per model under its own reason (errors.cuda_error in /diagnostics).
        assert bad.model_errors['selfie_segmentation'].reason == 'cuda_error'
    finally:
        monkeypatch.undo()
        pipeline.close()


def test_tensorrt_chain_uses_the_device_postprocessing_variants(fake, tmp_path):
    """GPU run 1: the TensorRT chain decoded masks on the host (29-35 ms for three models vs
    8.85 ms for ONNX Runtime CUDA with device post-processing); with postprocess auto, a
    TensorRT pipeline chose the *.devpost.onnx variant but could not build it (its per-frame
    row/column index inputs are dynamic and had no optimization profile).

    Now the variants build with a min/opt/max range for those inputs, and the chain's results
    equal the host-decoding chain's; INT8 engines keep host decoding.
    """
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import EncodedFrame
    from dali_trt_ros.tools.verify_tensorrt import write_photos
    models = ['ssd_mobilenetv2_oidv4', 'selfie_segmentation']
    if not all(load_model_description(m).onnx_path.is_file() for m in models):
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    fake()
    write_photos(str(tmp_path))
    photo = (tmp_path / 'photos' / 'golden' / 'astronaut.jpg').read_bytes()
    overrides = {m: {'engine_cache_dir': str(tmp_path / 'e')} for m in models}
    results = {}
    for postprocess in ('auto', 'host'):
        pipeline = PerceptionPipeline.from_models(
            models, backend='tensorrt', device='cpu', cpu_backend='opencv',
            postprocess=postprocess, engine_overrides=overrides)
        try:
            [results[postprocess]] = pipeline.process([EncodedFrame(photo)])
        finally:
            pipeline.close()
    device, host = results['auto'], results['host']
    assert not device.model_errors and not host.model_errors
    engines = sorted(os.listdir(tmp_path / 'e'))
    assert 'selfie_segmentation.devpost.fp32.gpu.engine' in engines
    assert 'ssd_mobilenetv2_oidv4.devpost.fp32.gpu.engine' in engines
    mask, expected = (r.segmentations['selfie_segmentation'] for r in (device, host))
    assert mask.label_map.shape == expected.label_map.shape == (512, 512)
    assert np.mean(mask.label_map == expected.label_map) > 0.999
    boxes, expected_boxes = (r.detections['ssd_mobilenetv2_oidv4'] for r in (device, host))
    assert list(boxes.labels[:3]) == list(expected_boxes.labels[:3])
    np.testing.assert_allclose(boxes.boxes[:3], expected_boxes.boxes[:3], atol=1e-3)


def test_int8_remedy_keeps_the_last_float_layers_in_fp16(fake, model, tmp_path, photo_folder):
    """INT8 remedy for models whose output layers do not survive quantization (GPU run 1: the
    selfie mask inverted at INT8): ``int8_fp16_tail_layers: N`` constrains the last N float
    layers to FP16 with PREFER_PRECISION_CONSTRAINTS, is part of the cache key (changing it
    rebuilds) and is noted in the engine record."""
    trt, _ = fake()
    calibration = {'images': str(photo_folder), 'preprocess': PREPROCESS,
                   'cache': str(tmp_path / 'cal.cache')}
    load_engine(trt_config(model, tmp_path, precision='int8', calibration=calibration)).close()
    path = tmp_path / 'engines' / 'net.int8.gpu.engine'

    def built_with():
        return json.loads(path.read_bytes()[len(b'FAKETRT1'):])
    assert built_with()['fp16_layers'] == []
    with load_engine(trt_config(model, tmp_path, precision='int8', calibration=calibration,
                                int8_fp16_tail_layers=2)) as engine:
        assert engine.built, 'a changed remedy is a changed key'
    every_layer = [name[:-2] for name in built_with()['layers']]
    assert built_with()['fp16_layers'] == every_layer[-2:] and len(every_layer) > 2
    record = json.loads((tmp_path / 'engines' / 'net.int8.gpu.engine.json').read_text())
    assert record['key']['int8_fp16_tail_layers'] == 2
    assert any('constrained to fp16' in note for note in record['notes'])
    # Not an INT8 build: the setting changes nothing (same key as without it).
    load_engine(trt_config(model, tmp_path)).close()
    with load_engine(trt_config(model, tmp_path, int8_fp16_tail_layers=2)) as engine:
        assert not engine.built


def test_dla_models_keep_host_decoding(fake, tmp_path):
    """A device post-processing graph has frame-size inputs (dynamic shapes), which DLA cannot
    take: with dla_core set, postprocess auto keeps the plain model (host decoding) instead of
    failing with "DLA needs static input shapes"."""
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.perception import PerceptionPipeline
    if not load_model_description('selfie_segmentation').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    fake(num_dla_cores=2)
    PerceptionPipeline.from_models(
        ['selfie_segmentation'], backend='tensorrt', device='cpu', cpu_backend='opencv',
        engine_overrides={'selfie_segmentation': {'engine_cache_dir': str(tmp_path / 'e'),
                                                  'precision': 'fp16', 'dla_core': 1}}).close()
    assert [n for n in os.listdir(tmp_path / 'e') if n.endswith('.engine')] == [
        'selfie_segmentation.fp16.dla1.engine']


def test_dla_to_gpu_fallback_is_reported_by_the_engine(fake, model, tmp_path):
    """GPU_FALLBACK is silent in TensorRT: the engine says what fell back, built or cached."""
    trt, _ = fake('8.5.2.2', num_dla_cores=2)
    cfg = trt_config(model, tmp_path, precision='fp16', dla_core=1)
    for built in (True, False):  # built, then from the cache (the record's notes)
        with load_engine(cfg) as engine:
            assert engine.built is built
            assert (engine.device, engine.dla_core) == ('dla', 1)
            assert engine.dla_gpu_fallback == '1 layer(s) on the GPU'  # the fake's ReduceMean


def test_dla_request_on_a_machine_without_dla_is_reported_as_fallback(fake, model, tmp_path):
    fake(num_dla_cores=0)
    with load_engine(trt_config(model, tmp_path, precision='fp16', dla_core=0)) as engine:
        assert engine.device == 'gpu'
        assert engine.dla_gpu_fallback == 'whole model on the GPU (this device has no DLA core)'
    with load_engine(trt_config(model, tmp_path, precision='fp16')) as engine:
        assert engine.dla_gpu_fallback is None  # no DLA asked for: nothing fell back
