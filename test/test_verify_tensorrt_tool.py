"""The GPU-machine scripts, run here as far as they can: --help, photos, the build step.

The build step runs with the fake TensorRT (test/fake_tensorrt.py) on the real selfie model and
real photos, so the device session does not fail on a typo in engine settings, calibration
mapping or result writing. The zero-copy check needs DALI on a GPU: GPU machine only.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dali_trt_ros.engines import tensorrt_engine
from fake_tensorrt import FakeCuda, make_tensorrt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('tool', ['verify_tensorrt', 'bench_chain'])
def test_help(tool):
    done = subprocess.run([sys.executable, '-m', f'dali_trt_ros.tools.{tool}', '--help'],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'trt' in done.stdout.lower()


@pytest.fixture(scope='module')
def data_folder(tmp_path_factory):
    from dali_trt_ros.tools.verify_tensorrt import main
    folder = tmp_path_factory.mktemp('data')
    assert main(['photos', '--out', str(folder)]) == 0
    return folder


def test_photos_are_real_jpegs(data_folder):
    golden = sorted(os.listdir(data_folder / 'photos' / 'golden'))
    assert golden == ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg']
    calibration = os.listdir(data_folder / 'photos' / 'calibration')
    assert len(calibration) >= 16 and not set(calibration) & set(golden)
    assert (data_folder / 'photos' / 'frame_1080p.jpg').read_bytes()[:2] == b'\xff\xd8'


@pytest.fixture
def fake_trt(monkeypatch):
    """The fake TensorRT 8.6 and CUDA runtime in place of the real ones: (trt, cuda)."""
    from dali_trt_ros.engines import cuda_runtime as cuda_module
    cuda = FakeCuda()
    trt = make_tensorrt('8.6.1', cuda=cuda, verbose_messages=0)
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    monkeypatch.setattr(tensorrt_engine, 'cuda_runtime', lambda: cuda)
    monkeypatch.setattr(cuda_module, 'cuda_runtime', lambda: cuda)
    monkeypatch.setattr(tensorrt_engine, '_logger', None)
    return trt, cuda


def test_build_step_with_fake_tensorrt(data_folder, tmp_path, fake_trt):
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.tools.verify_tensorrt import main
    if not load_model_description('selfie_segmentation').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    trt, _ = fake_trt
    out, work = tmp_path / 'out', tmp_path / 'work'
    argv = ['build', '--data', str(data_folder), '--work', str(work), '--out', str(out),
            '--models', 'selfie_segmentation', '--precisions', 'fp32,int8', '--opt-level', '0',
            '--variants', 'plain,devpost']
    assert main(argv) == 0
    results = json.loads((out / 'verify_tensorrt.json').read_text())
    rows = results['build']
    assert rows['selfie_segmentation.fp32']['built'] and rows['selfie_segmentation.int8']['built']
    # The device post-processing variant the TensorRT chain runs; INT8 decodes on the host.
    assert rows['selfie_segmentation.fp32.devpost']['built']
    assert 'selfie_segmentation.int8.devpost' not in rows
    assert rows['selfie_segmentation.fp32']['timing_cache'].endswith('(new)')
    assert results['environment']['gpu'] == 'Fake GPU'
    # 16 calibration batches of the opt shape (1, 3, 256, 256) from the real photos.
    assert trt.state.calibration_rows == [1] * 16
    assert (work / 'calibration' / 'selfie_segmentation.cache').is_file()
    assert '| selfie_segmentation.int8 | True |' in (out / 'verify_tensorrt.md').read_text()
    assert main(argv) == 0  # a second start: every engine from the cache
    rows = json.loads((out / 'verify_tensorrt.json').read_text())['build']
    assert not rows['selfie_segmentation.fp32']['built']
    assert not rows['selfie_segmentation.int8']['built']
    assert not rows['selfie_segmentation.fp32.devpost']['built']
    # The chain (configured as bench_chain's trt-fp32 set-up, CPU preprocessing here) loads
    # that engine from the cache instead of building it in the timed run.
    import argparse
    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.tools.verify_tensorrt import engine_overrides, model_description
    bench_args = argparse.Namespace(data=str(data_folder), work=str(work), opt_level=0,
                                    workspace_mib=2048, calibration_batches=16,
                                    tactic_sources='EDGE_MASK_CONVOLUTIONS,JIT_CONVOLUTIONS')
    overrides = {'selfie_segmentation': engine_overrides(
        bench_args, model_description(bench_args, 'selfie_segmentation'), 'fp32')}
    builders = trt.state.builders
    PerceptionPipeline.from_models(['selfie_segmentation'], backend='tensorrt', device='cpu',
                                   engine_overrides=overrides).close()
    assert trt.state.builders == builders


def test_build_step_stops_starting_builds_after_its_time_budget(
        data_folder, tmp_path, fake_trt):
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.tools.verify_tensorrt import main
    if not load_model_description('selfie_segmentation').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    argv = ['build', '--data', str(data_folder), '--work', str(tmp_path / 'work'), '--out',
            str(tmp_path / 'out'), '--models', 'selfie_segmentation', '--precisions', 'fp32']
    assert main(argv + ['--max-seconds', '0']) == 1
    row = json.loads((tmp_path / 'out' / 'verify_tensorrt.json').read_text())['build']
    assert 'run the same command again' in row['selfie_segmentation.fp32']['error']
    assert main(argv) == 0


def test_check_step_with_fake_tensorrt_and_cpu_preprocessing(data_folder, tmp_path,
                                                             fake_trt):
    """The whole check step (cache reload, compare, chain, rekey, DLA) with CPU preprocessing.

    On the GPU machine the same step binds DALI's GPU output by pointer; here the fake engine
    runs the ONNX model with ONNX Runtime, so every comparison must agree exactly.
    """
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.tools.verify_tensorrt import main
    if not load_model_description('ssd_mobilenetv2_oidv4').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    _, cuda = fake_trt
    common = ['--data', str(data_folder), '--work', str(tmp_path / 'work'), '--out',
              str(tmp_path / 'out'), '--models', 'ssd_mobilenetv2_oidv4,selfie_segmentation',
              '--precisions', 'fp32,int8', '--calibration-batches', '2']
    assert main(['build', *common]) == 0
    assert main(['check', *common, '--runs', '2', '--preprocess-device', 'cpu',
                 '--reference-device', 'cpu']) == 0
    results = json.loads((tmp_path / 'out' / 'verify_tensorrt.json').read_text())
    engines = results['engines']
    assert sorted(engines) == ['selfie_segmentation.fp32', 'selfie_segmentation.int8',
                               'ssd_mobilenetv2_oidv4.fp32', 'ssd_mobilenetv2_oidv4.int8']
    assert all(row['from_cache'] and row['ok'] for row in engines.values())
    assert engines['ssd_mobilenetv2_oidv4.fp32']['worst_relative'] == 0.0
    chain = results['chain']['fp32']
    assert {row['photo'] for row in chain} == {'astronaut', 'chelsea', 'coffee'}
    assert all(row['ok'] for row in chain)
    rekey = results['rekey']['selfie_segmentation']
    assert rekey['ok'] and rekey['replaced_in_place'] and len(rekey['engines_in_folder']) == 1
    assert 'has no DLA cores' in results['dla']['with gpu_fallback: true']
    assert results['dla']['with gpu_fallback: false'].startswith('ConfigError')
    assert cuda.memory == {}, 'every engine closed'


def _description(decoder):
    from types import SimpleNamespace
    return SimpleNamespace(decoder=decoder)


def test_probability_output_is_judged_by_probabilities_and_masks():
    """GPU run 1: selfie fp16 failed 'worst rel 0.067 > 2e-2' while its masks agreed 0.9997, and
    its 'agreement' (0.898 even at fp32) was an argmax over the image width of a (1, 1, H, W)
    probability map. Now: mean |diff| of the probabilities and thresholded-mask agreement."""
    from dali_trt_ros.tools.verify_tensorrt import compare_outputs, output_kinds
    kinds = output_kinds(_description({'type': 'segmentation', 'kind': 'probability',
                                       'layout': 'NCHW', 'output': 'p'}))
    rng = np.random.default_rng(0)
    reference = rng.random((1, 1, 64, 64)).astype(np.float32)
    rows, ok = compare_outputs({'p': reference}, {'p': reference.copy()}, 'fp32', kinds)
    assert ok and rows['p']['agreement'] == 1.0 and rows['p']['kind'] == 'probability'
    drift = reference.copy()  # five pixels off by as much as on the H100 (fp16)
    drift.flat[:5] = np.where(drift.flat[:5] > 0.5, drift.flat[:5] + 0.067, drift.flat[:5] - 0.067)
    drift = np.clip(drift, 0, 1)
    rows, ok = compare_outputs({'p': reference}, {'p': drift}, 'fp16', kinds)
    assert ok and rows['p']['relative'] > 2e-2
    broken = 1.0 - reference  # what the selfie int8 engine did: the mask inverted
    rows, ok = compare_outputs({'p': reference}, {'p': broken}, 'int8', kinds)
    assert not ok and rows['p']['agreement'] < 0.6


def test_logits_agreement_uses_the_class_axis():
    """DeepLab (1, 21, H, W): best class per pixel over axis 1, not the last axis (fp32 showed
    0.93 'agreement' with a worst relative diff of 2e-6)."""
    from dali_trt_ros.tools.verify_tensorrt import compare_outputs, output_kinds
    kinds = output_kinds(_description({'type': 'segmentation', 'kind': 'logits',
                                       'layout': 'NCHW', 'output': 'logits'}))
    reference = np.random.default_rng(1).random((1, 21, 16, 16)).astype(np.float32)
    close = reference + np.float32(1e-7)
    rows, ok = compare_outputs({'logits': reference}, {'logits': close}, 'fp32', kinds)
    assert ok and rows['logits']['agreement'] == 1.0
    ssd = output_kinds(_description({'type': 'ssd', 'score_output': 's', 'box_output': 'b'}))
    scores = np.random.default_rng(2).random((1, 100, 5)).astype(np.float32)
    shuffled = scores[:, :, ::-1].copy()
    rows, ok = compare_outputs({'s': scores, 'b': scores}, {'s': shuffled, 'b': scores}, 'int8',
                               ssd)
    assert not ok and rows['s']['agreement'] < 0.5 and rows['b']['ok']


def test_bench_chain_prints_a_stage_breakdown(tmp_path, capsys):
    """GPU run 1: the TensorRT FP16 chain took 3.29 ms against a 0.645 ms engine, and nothing
    said where the rest went. Each row now carries stage medians (preprocess, inference and
    decode per model) and where post-processing ran; the table prints them."""
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.tools.bench_chain import main, stage_breakdown
    if not load_model_description('ssd_mobilenetv2_oidv4').onnx_path.is_file():
        pytest.skip('models not prepared (python -m dali_trt_ros.tools.prepare_models)')
    assert main(['--setups', 'opencv+ort-cpu', '--models', 'ssd_mobilenetv2_oidv4',
                 '--runs', '3', '--out', str(tmp_path)]) == 0
    [row] = json.loads((tmp_path / 'chain.json').read_text())
    stages = row['stages_ms']
    assert set(stages) == {'preprocess', 'inference.ssd_mobilenetv2_oidv4',
                           'postprocess.ssd_mobilenetv2_oidv4'}
    assert all(value > 0 for value in stages.values())
    assert row['postprocess'] == {'ssd_mobilenetv2_oidv4': 'host'}
    pre, inference, decode, overhead = stage_breakdown(row)
    assert pre + inference + decode + overhead == pytest.approx(row['median_ms'])
    table = capsys.readouterr().out
    assert '| preprocess ms | inference ms | decode ms | overhead ms |' in table
    assert f'{inference:.2f} | {decode:.2f}' in table
