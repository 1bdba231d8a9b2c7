"""TensorRT decisions made without TensorRT: build plan, engine cache key and reuse, ranges.

The TensorRT calls themselves (tensorrt_engine.py) need TensorRT and a GPU; see the skipped test.
"""

import dataclasses
import importlib.util
import json
import os
import stat

import pytest

from dali_trt_ros.engines import EngineConfig, TensorInfo
from dali_trt_ros.engines.build_plan import DeviceFacts, parse_version, plan_build
from dali_trt_ros.engines.dynamic_ranges import (load_dynamic_ranges, parse_dynamic_ranges,
                                                 unmatched_ranges)
from dali_trt_ros.engines import engine_cache
from dali_trt_ros.engines.engine_cache import (check_cached_engine, default_engine_path,
                                               make_private_dir, store_engine)
from sample_model import write_conv_relu_model
from dali_trt_ros.errors import ConfigError, EngineCacheError

XAVIER = DeviceFacts('8.5.2.2', 'Xavier', (7, 2), num_dla_cores=2)
ORIN_JP6 = DeviceFacts('10.3.0', 'Orin', (8, 7), num_dla_cores=2)
DESKTOP = DeviceFacts('10.9.0', 'NVIDIA H100', (9, 0), num_dla_cores=0)
STATIC = [TensorInfo('images', (1, 3, 300, 300), 'float32')]
DYNAMIC = [TensorInfo('images', ('N', 3, 300, 300), 'float32')]


def config(**values):
    return EngineConfig.from_dict({'model': 'm.onnx', 'backend': 'tensorrt', **values})


def test_gpu_plan_keeps_precision_and_static_shapes():
    plan = plan_build(config(precision='fp16'), STATIC, DESKTOP)
    assert (plan.precision, plan.device, plan.dla_core, plan.gpu_fallback) == \
        ('fp16', 'gpu', None, False)
    assert plan.profiles == {'images': ((1, 3, 300, 300),) * 3}
    assert plan.warnings == ()
    assert 'device: GPU' in plan.describe()


def test_dla_plan_on_xavier_with_fallback():
    plan = plan_build(config(precision='int8', dla_core=1, dynamic_ranges=None,
                             calibration={'cache': __file__}), STATIC, XAVIER)
    assert (plan.device, plan.dla_core, plan.gpu_fallback) == ('dla', 1, True)
    assert 'device: DLA core 1 with GPU fallback' in plan.describe()
    assert plan.int8_source.startswith('calibration cache')
    no_fallback = plan_build(config(precision='fp16', dla_core=0, gpu_fallback=False), STATIC,
                             XAVIER)
    assert not no_fallback.gpu_fallback
    assert any('fails if a layer cannot run on DLA' in r for r in no_fallback.reasons)


def test_no_dla_cores_means_gpu_with_warning_or_error_without_fallback():
    no_dla = dataclasses.replace(ORIN_JP6, num_dla_cores=0)
    plan = plan_build(config(precision='fp16', dla_core=0), STATIC, no_dla)
    assert plan.device == 'gpu' and plan.dla_core is None
    assert plan.warnings == ('dla_core 0 requested but Orin has no DLA cores; building for the '
                             'GPU (gpu_fallback is true)',)
    with pytest.raises(ConfigError, match='gpu_fallback false, but Orin has no DLA cores'):
        plan_build(config(precision='fp16', dla_core=0, gpu_fallback=False), STATIC, no_dla)


def test_dla_is_decided_by_the_core_count_not_the_version():
    # 10.8+ headers still declare the DLA API; only num_DLA_cores says whether DLA exists.
    plan = plan_build(config(precision='fp16', dla_core=0), STATIC,
                      dataclasses.replace(DESKTOP, tensorrt_version='10.9.0', num_dla_cores=2))
    assert plan.device == 'dla' and plan.warnings == ()


def test_fp32_on_dla_becomes_fp16_with_warning():
    plan = plan_build(config(precision='fp32', dla_core=0), STATIC, ORIN_JP6)
    assert plan.precision == 'fp16' and plan.device == 'dla'
    assert 'building fp16 instead of fp32' in plan.warnings[0]


def test_dla_core_out_of_range_and_dynamic_shapes_are_errors():
    with pytest.raises(ConfigError, match='has 2 DLA core'):
        plan_build(config(precision='fp16', dla_core=2), STATIC, XAVIER)
    dynamic = config(precision='fp16', dla_core=0, inputs=[{
        'name': 'images', 'min_shape': [1, 3, 300, 300], 'max_shape': [4, 3, 300, 300]}])
    with pytest.raises(ConfigError, match='DLA needs static input shapes'):
        plan_build(dynamic, DYNAMIC, XAVIER)
    fixed = config(precision='fp16', dla_core=0, inputs=[{'name': 'images',
                                                          'shape': [2, 3, 300, 300]}])
    assert plan_build(fixed, DYNAMIC, XAVIER).profiles['images'][0] == (2, 3, 300, 300)


def test_dynamic_input_needs_sizes_and_profile_is_used():
    with pytest.raises(ConfigError, match=r"'images' has dynamic axes \[0\]"):
        plan_build(config(), DYNAMIC, DESKTOP)
    plan = plan_build(config(inputs=[{'name': 'images', 'min_shape': [1, 3, 300, 300],
                                      'opt_shape': [2, 3, 300, 300],
                                      'max_shape': [8, 3, 300, 300]}]), DYNAMIC, DESKTOP)
    assert plan.profiles['images'] == ((1, 3, 300, 300), (2, 3, 300, 300), (8, 3, 300, 300))
    assert any('min (1, 3, 300, 300) opt (2, 3, 300, 300) max (8, 3, 300, 300)' in line
               for line in plan.describe())


def test_int8_needs_a_source_of_scales(tmp_path):
    with pytest.raises(ConfigError, match='precision int8 needs scales'):
        plan_build(config(precision='int8'), STATIC, XAVIER)
    with pytest.raises(ConfigError, match='not found'):
        plan_build(config(precision='int8', calibration={'images': str(tmp_path / 'no')}),
                   STATIC, XAVIER)
    plan = plan_build(config(precision='int8', calibration={'images': str(tmp_path)}),
                      STATIC, ORIN_JP6)
    assert plan.int8_source.startswith('entropy calibration (IInt8EntropyCalibrator2)')
    assert any('calibration.cache not set' in w for w in plan.warnings)
    assert any('TensorRT 10 deprecates implicit int8' in w for w in plan.warnings)
    ranges = tmp_path / 'ranges.txt'
    ranges.write_text('images 1.0\n')
    plan = plan_build(config(precision='int8', dynamic_ranges=str(ranges)), STATIC, XAVIER)
    assert plan.int8_source == 'dynamic ranges file ' + str(ranges)


def test_int8_calibrates_at_the_opt_shape(tmp_path):
    """Defect 3: batches must have the calibration profile's kOPT shape, which TensorRT reads."""
    images = str(tmp_path)
    plan = plan_build(config(precision='int8', calibration={'images': images}), STATIC, DESKTOP)
    assert plan.calibration_shape == (1, 3, 300, 300)
    assert 'calibration batches: (1, 3, 300, 300)' in ' '.join(plan.describe())
    with pytest.raises(ConfigError, match='calibration.batch_size is 8, but TensorRT calibrates'):
        plan_build(config(precision='int8', calibration={'images': images, 'batch_size': 8}),
                   STATIC, DESKTOP)
    dynamic = config(precision='int8', calibration={'images': images}, inputs=[{
        'name': 'images', 'min_shape': [1, 3, 300, 300], 'opt_shape': [4, 3, 300, 300],
        'max_shape': [8, 3, 300, 300]}])
    assert plan_build(dynamic, DYNAMIC, DESKTOP).calibration_shape == (4, 3, 300, 300)


def test_builder_optimization_level_needs_8_6():
    plan = plan_build(config(builder_optimization_level=0), STATIC, XAVIER)
    assert plan.warnings == ('builder_optimization_level needs TensorRT 8.6+; ignored by 8.5.2.2',)
    assert plan_build(config(builder_optimization_level=0), STATIC, DESKTOP).warnings == ()


def test_engine_cache_folder_is_private(tmp_path, model):
    """Security: the cache folder is created 0700; a folder others can write to is reported."""
    folder = tmp_path / 'engines'
    assert make_private_dir(str(folder)) == ''
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    nested = tmp_path / 'new' / 'cache' / 'net.engine'
    store_engine(str(nested), b'engine', key_for(model))
    assert stat.S_IMODE(nested.parent.stat().st_mode) == 0o700
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    assert 'writable by other users (mode 777)' in make_private_dir(str(shared))


def test_parse_version():
    assert parse_version('8.5.2.2') == (8, 5, 2, 2)
    assert parse_version('10.3.0.post1') == (10, 3, 0)
    with pytest.raises(ConfigError):
        parse_version('unknown')


@pytest.fixture
def model(tmp_path):
    return write_conv_relu_model(tmp_path / 'net.onnx')[0]


def key_for(model_path, facts=XAVIER, **values):
    """The cache key of a model planned on ``facts`` with config ``values`` (dla_core 0)."""
    values = {'model': model_path, 'precision': 'fp16', 'dla_core': 0, **values}
    cfg = config(**values)
    from dali_trt_ros.engines.engine_request import resolve_engine
    return resolve_engine(cfg, facts).key


def test_every_build_input_changes_the_key(model, tmp_path):
    """Each input a built engine depends on, changed alone, changes the key (and only its field).

    The expected field names are written here by hand, not read from the key class, so a field
    that stops following its input fails this test.
    """
    base = key_for(model)
    other_model = write_conv_relu_model(tmp_path / 'other.onnx', seed=5)[0]
    ranges = tmp_path / 'r.txt'
    ranges.write_text('images 2\n')
    plugin = tmp_path / 'libplugin.so'
    plugin.write_bytes(b'\x7fELF')
    calibration_cache = tmp_path / 'calib.cache'
    calibration_cache.write_bytes(b'scales')
    int8 = {'precision': 'int8', 'calibration': {'cache': str(calibration_cache)}}
    changes = [
        ('model', {'model': other_model}, 'model_sha256'),
        ('TensorRT version', {'facts': dataclasses.replace(XAVIER, tensorrt_version='8.6.1')},
         'tensorrt_version'),
        ('GPU', {'facts': dataclasses.replace(XAVIER, device_name='Orin')}, 'device_name'),
        ('compute capability',
         {'facts': dataclasses.replace(XAVIER, compute_capability=(8, 7))}, 'compute_capability'),
        ('dla_core', {'dla_core': 1}, 'dla_core'),
        ('gpu_fallback', {'gpu_fallback': False}, 'gpu_fallback'),
        ('workspace', {'workspace_mib': 2048}, 'workspace_mib'),
        ('tactic sources', {'tactic_sources': ['JIT_CONVOLUTIONS']}, 'tactic_sources'),
        ('optimization level', {'builder_optimization_level': 1},
         'builder_optimization_level'),
        ('plugins', {'plugins': [str(plugin)]}, 'plugins_sha256'),
        ('TF32', {'cuda_tf32': True}, 'tf32'),
    ]
    for what, values, field in changes:
        variant = key_for(model, **values)
        assert variant.digest() != base.digest(), what
        if field is not None:
            assert [line.split(':')[0] for line in variant.differences(base)] == [field], what
    dynamic = write_conv_relu_model(tmp_path / 'dyn.onnx', batch='N')[0]
    one, two = ({'inputs': [{'name': 'images', 'shape': [batch, 3, 8, 8]}]} for batch in (1, 2))
    assert [line.split(':')[0] for line in key_for(dynamic, **two).differences(
        key_for(dynamic, **one))] == ['input_shapes']
    base8 = key_for(model, **int8)
    assert base8.precision == 'int8' and base8 != base
    calibration_cache.write_bytes(b'other scales')
    assert [line.split(':')[0] for line in key_for(model, **int8).differences(base8)] == \
        ['calibration_sha256']
    with_ranges = key_for(model, precision='int8', dynamic_ranges=str(ranges))
    ranges.write_text('images 3\n')
    assert [line.split(':')[0] for line in key_for(
        model, precision='int8', dynamic_ranges=str(ranges)).differences(with_ranges)] == \
        ['dynamic_ranges_sha256']
    assert key_for(model).digest() == base.digest()
    assert key_for(model, dla_core=None).dla_core == -1
    # Settings that decide nothing about the engine leave the key alone.
    assert key_for(model, timing_cache=str(tmp_path / 't.cache')) == base
    assert key_for(model, engine_cache_dir=str(tmp_path / 'elsewhere')) == base


def test_calibration_images_change_the_key(model, tmp_path):
    """Calibration data, preprocessing and the number of batches all reach the key."""
    folder = tmp_path / 'calib'
    folder.mkdir()
    import cv2
    import numpy as np
    for index in range(3):
        cv2.imwrite(str(folder / f'{index}.png'), np.full((8, 8, 3), index * 40, np.uint8))
    preprocess = {'inputs': [{'name': 'images', 'width': 8, 'height': 8}]}
    int8 = {'precision': 'int8', 'calibration': {'images': str(folder), 'preprocess': preprocess}}
    base = key_for(model, **int8)
    assert base.calibration_sha256
    cv2.imwrite(str(folder / '0.png'), np.full((8, 8, 3), 7, np.uint8))
    changed = key_for(model, **int8)
    assert [line.split(':')[0] for line in changed.differences(base)] == ['calibration_sha256']
    fewer = key_for(model, precision='int8', calibration={
        'images': str(folder), 'preprocess': preprocess, 'max_batches': 1})
    assert fewer.calibration_sha256 != changed.calibration_sha256
    other_preprocess = key_for(model, precision='int8', calibration={
        'images': str(folder), 'preprocess': {'inputs': [{'name': 'images', 'width': 8,
                                                          'height': 8, 'mean': [1, 2, 3]}]}})
    assert other_preprocess.calibration_sha256 != changed.calibration_sha256


def test_cached_engine_reuse_and_stale_reasons(model, tmp_path):
    key = key_for(model)
    path = default_engine_path(str(tmp_path / 'cache'), model, 'fp16', 0)
    assert path.endswith('cache/net.fp16.dla0.engine')
    assert check_cached_engine(path, key).reason == f'no cached engine at {path}'
    store_engine(path, b'serialized-engine', key, ['precision: fp16'])
    decision = check_cached_engine(path, key)
    assert decision.reuse and 'matches' in decision.reason
    record = json.loads(open(path + '.json').read())
    assert record['notes'] == ['precision: fp16'] and record['key']['dla_core'] == 0
    newer = key_for(model, facts=dataclasses.replace(XAVIER, tensorrt_version='8.6.1'))
    decision = check_cached_engine(path, newer)
    assert not decision.reuse
    assert decision.reason == f'{path} is stale: tensorrt_version: 8.5.2.2 -> 8.6.1'
    with open(path, 'wb') as stream:
        stream.write(b'serialized-engi')  # truncated
    assert 'does not match its record' in check_cached_engine(path, key).reason
    os.unlink(path + '.json')
    assert 'foreign or interrupted' in check_cached_engine(path, key).reason
    with open(path + '.json', 'w') as stream:
        stream.write('{not json')
    assert 'unreadable' in check_cached_engine(path, key).reason


def test_write_atomically_replaces_whole_file_and_cleans_up(tmp_path, monkeypatch):
    """The one atomic writer (models, engines, records, caches); the engine cache's wrapper
    turns its OSError into an EngineCacheError that says what to do."""
    from dali_trt_ros.atomic_files import write_atomically
    target = tmp_path / 'sub' / 'engine.bin'
    write_atomically(str(target), b'old')
    assert target.read_bytes() == b'old'
    seen = []
    real_replace = os.replace

    def spy_replace(src, dst):
        # At rename time the full data is in a temporary file in the same folder.
        seen.append((os.path.dirname(src), open(src, 'rb').read(), open(dst, 'rb').read()))
        real_replace(src, dst)
    monkeypatch.setattr(os, 'replace', spy_replace)
    write_atomically(str(target), b'new contents')
    assert seen == [(str(tmp_path / 'sub'), b'new contents', b'old')]
    assert target.read_bytes() == b'new contents'

    def failing_replace(src, dst):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(OSError):
        write_atomically(str(target), b'partial')
    with pytest.raises(EngineCacheError, match='engine_cache_dir'):
        engine_cache.write_atomically(str(target), b'partial')
    assert target.read_bytes() == b'new contents'
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['engine.bin']


def test_dynamic_ranges_text_and_json(tmp_path):
    text = '# scales\nimages: 2.5\ninput:0 -1 3\nconv out 0.5  # name with a space\n'
    assert parse_dynamic_ranges(text) == {'images': (-2.5, 2.5), 'input:0': (-1.0, 3.0),
                                          'conv out': (-0.5, 0.5)}
    assert parse_dynamic_ranges('{"a": 1, "b": [-2, 4], "c": {"min": -1, "max": 1}}') == {
        'a': (-1.0, 1.0), 'b': (-2.0, 4.0), 'c': (-1.0, 1.0)}
    path = tmp_path / 'ranges.txt'
    path.write_text('x 1\nbad line\n')
    with pytest.raises(ConfigError, match=r'ranges.txt:2: expected "tensor_name amax"'):
        load_dynamic_ranges(str(path))
    for bad in ('x 0\n', 'x 3 1\n', 'x 1\nx 2\n', '', '{"x": "big"}', '{"x": [1]}', '{bad'):
        with pytest.raises(ConfigError):
            parse_dynamic_ranges(bad)
    with pytest.raises(ConfigError, match='cannot read'):
        load_dynamic_ranges(str(tmp_path / 'absent.txt'))
    assert unmatched_ranges({'a': (0, 1), 'zz': (0, 1)}, ['a', 'b']) == ['zz']


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is None,
                    reason='TensorRT is not installed (not installable on this machine); the '
                           'TensorRT build/run code has not run here')
def test_tensorrt_builds_and_runs_the_sample_model(model, tmp_path):
    import numpy as np
    from dali_trt_ros.engines import load_engine
    cfg = {'model': model, 'backend': 'tensorrt', 'engine_cache_dir': str(tmp_path)}
    images = np.random.default_rng(0).random((1, 3, 8, 8), np.float32)
    with load_engine({'model': model}) as reference, load_engine(cfg) as engine:
        expected = reference.run({'images': images})
        result = engine.run({'images': images})
    np.testing.assert_allclose(result['pooled'], expected['pooled'], atol=1e-4)
