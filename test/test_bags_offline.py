"""Bag tools without a ROS graph: make_bag, process_bag, evaluate_bag, bad input, Ctrl-C, Ray.

Real bags (rosbags, mcap and sqlite3), the real models through the node's PerceptionPipeline
(ONNX Runtime CPU), and the checked-in golden outputs of the sample bag. Budget: ~60 s on 2
cores, most of it the Ray test and the process pool.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('rosbags', reason='rosbags (bag I/O) is not installed for this Python')

from bag_helpers import GOLDEN, make_sample, SAMPLE_TOPICS  # noqa: E402
from dali_trt_ros.bags import messages  # noqa: E402
from dali_trt_ros.bags.evaluate import evaluate  # noqa: E402
from dali_trt_ros.bags.io import (bag_status, deserialize, open_reader,  # noqa: E402
                                  select_connections)
from dali_trt_ros.bags.outputs import read_outputs  # noqa: E402
from dali_trt_ros.bags.process import summary_path  # noqa: E402
from dali_trt_ros.tools import evaluate_bag, make_bag, process_bag  # noqa: E402


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('bags') / 'sample')


@pytest.fixture(scope='module')
def processed(sample, tmp_path_factory):
    """process_bag's output of the sample (batch 8), made once by the console script's main."""
    output = tmp_path_factory.mktemp('out') / 'sample_perception'
    assert process_bag.main([str(sample), '-o', str(output), '--no-progress']) == 0
    return output


def _messages(path):
    reader = open_reader(path)
    try:
        return [(c.topic, c.msgtype, t, bytes(d)) for c, t, d in reader.messages()]
    finally:
        reader.close()


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_make_bag_is_a_deterministic_30hz_camera_sequence(tmp_path, storage):
    first = make_sample(tmp_path / 'a', storage=storage)
    second = make_sample(tmp_path / 'b', storage=storage)
    assert _messages(first) == _messages(second)  # same bytes, stamps and order
    reader = open_reader(first)
    try:
        assert reader.storage.metadata if hasattr(reader.storage, 'metadata') else True
        by_topic = {c.topic: c.msgtype for c in reader.connections}
        assert by_topic == {'/cam_front/image_raw': 'sensor_msgs/msg/Image',
                            '/cam_left/image_raw/compressed': 'sensor_msgs/msg/CompressedImage'}
        stamps = {topic: [] for topic in by_topic}
        pixels = []
        for connection, timestamp, data in reader.messages():
            msg = deserialize(connection, data, reader.path, timestamp)
            assert messages.stamp_ns(msg.header) == timestamp
            assert msg.header.frame_id == connection.topic.split('/')[1] + '_optical_frame'
            stamps[connection.topic].append(timestamp)
            if connection.msgtype.endswith('/Image'):
                assert (msg.encoding, msg.width, msg.height) == ('bgr8', 640, 480)
                pixels.append(np.asarray(msg.data))
    finally:
        reader.close()
    for topic, values in stamps.items():
        assert len(values) == 45
        assert np.allclose(np.diff(values), 1e9 / 30, atol=1)
    # Motion: every consecutive pair of frames differs.
    assert all(np.any(a != b) for a, b in zip(pixels, pixels[1:]))
    assert (tmp_path / 'a' / 'metadata.yaml').read_text().count('storage_identifier: '
                                                                + storage) == 1


def test_make_bag_console_script_rejects_a_bad_camera(tmp_path, capsys):
    assert make_bag.main([str(tmp_path / 'x'), '--camera', '/cam/image_raw:jpeg']) == 2
    assert 'compressed' in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_process_bag_matches_the_checked_in_golden(processed):
    summary = json.loads(summary_path(processed).read_text())
    assert summary['complete'] and summary['frames_in'] == summary['frames_out'] == 90
    assert bag_status(processed) == ('complete', '')
    metrics, _ = evaluate(read_outputs(GOLDEN), read_outputs(processed), iou_threshold=0.9)
    assert metrics['coverage'] == 1.0
    assert metrics['f1'] == 1.0 and metrics['tp'] == 91
    assert metrics['max_score_diff'] < 1e-4
    assert metrics['mask_iou_min'] > 0.999
    # The golden frames really hold the photos' objects.
    labels = {label for label in metrics['per_class']}
    assert {'4', '8', '13'} <= labels
    assert [metrics['labels'][k] for k in ('4', '8', '13')] == ['Person', 'Cat', 'Coffee cup']


def test_output_bag_carries_the_input_headers_and_node_message_layout(sample, processed):
    reader = open_reader(processed)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        for ns in ('/cam_front', '/cam_left'):
            assert topics.pop(f'{ns}/detections') == 'vision_msgs/msg/Detection2DArray'
            assert topics.pop(f'{ns}/segmentation') == 'sensor_msgs/msg/Image'
            assert topics.pop(f'{ns}/label_info') == 'vision_msgs/msg/LabelInfo'
            assert topics.pop(f'{ns}/segmentation/label_info') == 'vision_msgs/msg/LabelInfo'
        assert not topics
        out = {}
        for connection, timestamp, data in reader.messages():
            msg = deserialize(connection, data, reader.path, timestamp)
            out[(connection.topic, timestamp)] = msg
    finally:
        reader.close()
    inputs = _messages(sample)
    for topic, _, timestamp, _ in inputs:
        namespace = topic.split('/image_raw')[0]
        if (namespace + '/label_info', timestamp) in out:  # written with the first frame
            labels = messages.label_names(out[(namespace + '/label_info', timestamp)])
            assert labels['4'] == 'Person' and labels['8'] == 'Cat'
        detections = out[(namespace + '/detections', timestamp)]
        mask = out[(namespace + '/segmentation', timestamp)]
        assert messages.stamp_ns(detections.header) == messages.stamp_ns(mask.header) == timestamp
        assert detections.header.frame_id == namespace.strip('/') + '_optical_frame'
        assert (mask.encoding, mask.width, mask.height) == ('mono8', 640, 480)


def test_batched_and_unbatched_processing_agree(sample, processed, tmp_path):
    unbatched = tmp_path / 'unbatched'
    assert process_bag.main([str(sample), '-o', str(unbatched), '--batch', '1',
                             '--no-progress', '--storage', 'sqlite3']) == 0
    report = tmp_path / 'report'
    assert evaluate_bag.main([str(unbatched), str(processed), '--report-dir', str(report),
                              '--iou', '0.999', '--max-score-diff', '1e-5', '--min-f1', '1',
                              '--min-mask-iou', '0.999', '--min-coverage', '1']) == 0
    assert '**PASS**' in (report / 'report.md').read_text()


def test_evaluate_bag_writes_report_plots_and_fails_naming_the_tolerance(
        sample, processed, tmp_path, capsys):
    report = tmp_path / 'report'
    assert evaluate_bag.main([str(processed), str(GOLDEN), '--report-dir', str(report),
                              '--inputs', str(sample), '--overlays', '2']) == 0
    names = sorted(p.name for p in report.iterdir())
    assert 'per_class.png' in names and 'report.md' in names and 'metrics.json' in names
    assert len([n for n in names if n.startswith('overlay_')]) == 2
    assert (report / 'per_class.png').read_bytes()[:4] == b'\x89PNG'
    # A golden that expects another class on every cat (8) and cup (13) frame: F1 and coverage.
    golden = json.loads(GOLDEN.read_text())
    for frame in golden['frames']:
        for row in frame['detections']:
            if row[0] in ('8', '13'):
                row[0] = '20'
    golden['frames'].append(dict(golden['frames'][0], stamp_ns=1))  # a frame never produced
    doctored = tmp_path / 'doctored.json'
    doctored.write_text(json.dumps(golden))
    capsys.readouterr()
    assert evaluate_bag.main([str(processed), str(doctored), '--report-dir',
                              str(tmp_path / 'r2'), '--min-coverage', '1']) == 1
    err = capsys.readouterr().err
    assert 'min_f1' in err and '--min-f1 0.9' in err
    assert 'min_coverage' in err
    assert '**FAIL**' in (tmp_path / 'r2' / 'report.md').read_text()


def _assert_clean_failure(code, err, *needles):
    assert code == 2, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert 'Traceback' not in err


def test_bad_inputs_name_file_and_topic_and_leave_no_output(sample, tmp_path, capsys):
    out = tmp_path / 'out'
    cases = []
    # Missing bag.
    cases.append(([str(tmp_path / 'nothing')], [str(tmp_path / 'nothing'), 'no such']))
    # Unknown topic, and a topic of the wrong type (an output bag's detections).
    cases.append(([str(sample), '--topics', '/cam_rear/image_raw'],
                  [str(sample), '/cam_rear/image_raw', 'not found', '/cam_front/image_raw']))
    # Corrupt: metadata.yaml is garbage.
    corrupt = tmp_path / 'corrupt'
    shutil.copytree(sample, corrupt)
    (corrupt / 'metadata.yaml').write_text('rosbag2_bagfile_information: [not, a, mapping')
    cases.append(([str(corrupt)], [str(corrupt), 'cannot be read']))
    # Truncated mcap: the recorder died mid-write.
    truncated = tmp_path / 'truncated'
    shutil.copytree(sample, truncated)
    [storage] = truncated.glob('*.mcap')
    with open(storage, 'r+b') as stream:
        stream.truncate(storage.stat().st_size // 2)
    cases.append(([str(truncated)], [str(truncated), 'truncated']))
    for argv, needles in cases:
        capsys.readouterr()
        code = process_bag.main([*argv, '-o', str(out), '--no-progress'])
        _assert_clean_failure(code, capsys.readouterr().err, *needles)
        assert not out.exists() and not summary_path(out).exists(), argv


def test_a_topic_of_the_wrong_type_is_named(processed, tmp_path, capsys):
    code = process_bag.main([str(processed), '--topics', '/cam_front/detections', '-o',
                             str(tmp_path / 'o'), '--no-progress'])
    _assert_clean_failure(code, capsys.readouterr().err, str(processed),
                          '/cam_front/detections', 'vision_msgs/msg/Detection2DArray',
                          'sensor_msgs/msg/Image')
    reader = open_reader(processed)
    try:
        with pytest.raises(Exception, match='no topic of type'):
            select_connections(reader)
    finally:
        reader.close()


def test_ctrl_c_leaves_a_readable_bag_marked_partial(tmp_path):
    # Long enough that the interrupt lands mid-way: 2 cameras x 3 photos x 1.5 s at 30 Hz.
    bag = make_sample(tmp_path / 'long', seconds_per_photo=1.5)
    output = tmp_path / 'long_perception'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'dali_trt_ros.tools.process_bag', str(bag), '-o', str(output),
         '--no-progress', '--batch', '4', '-v'],
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    lines = []
    for line in proc.stderr:  # wait for real progress, no fixed sleep
        lines.append(line)
        if 'batch of 4 frames done (8/' in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = ''.join(lines) + rest
    assert proc.returncode == 130, err
    assert 'marked partial' in err
    status, reason = bag_status(output)
    assert status == 'partial' and 'Ctrl-C' in reason
    summary = json.loads(summary_path(output).read_text())
    assert summary['complete'] is False and summary['status'] == 'interrupted'
    outputs = read_outputs(output)
    assert 8 <= len(outputs.frames) < 270
    assert len(outputs.frames) == summary['frames_out']
    # evaluate_bag refuses to call a partial bag complete.
    assert evaluate_bag.main([str(output), '--save-golden', str(tmp_path / 'g.json')]) == 2


def _two_bags(sample, folder):
    folder.mkdir()
    for name in ('drive_a', 'drive_b'):
        shutil.copytree(sample, folder / name)
    return folder


def test_jobs_process_a_folder_of_bags_in_parallel(sample, tmp_path, capsys):
    drives = _two_bags(sample, tmp_path / 'drives')
    outputs = tmp_path / 'outputs'
    assert process_bag.main([str(drives), '--jobs', '2', '--output-prefix', str(outputs),
                             '--topics', SAMPLE_TOPICS[1]]) == 0
    golden = read_outputs(GOLDEN)
    golden.frames = {k: v for k, v in golden.frames.items() if k[0] == '/cam_left'}
    for name in ('drive_a', 'drive_b'):
        metrics, _ = evaluate(golden, read_outputs(outputs / f'{name}_perception'), 0.9)
        assert metrics['coverage'] == 1.0 and metrics['f1'] == 1.0, name
    assert capsys.readouterr().out.count('45/45 frames') == 2


def test_ray_runs_one_task_per_bag_on_a_local_instance(sample, tmp_path):
    ray = pytest.importorskip('ray', reason='ray is in requirements/; its absence is a defect')
    from dali_trt_ros.bags import fleet

    drives = _two_bags(sample, tmp_path / 'drives')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        jobs = [fleet.Job(str(bag), str(fleet.output_for(bag)), ('ssd_mobilenetv2_oidv4',),
                          batch_size=4, topics=(SAMPLE_TOPICS[1],))
                for bag in fleet.expand_inputs([str(drives / 'drive_*')])]
        summaries = fleet.run_ray(jobs, address='auto')
        assert ray.is_initialized()  # the instance the caller started is left running
    finally:
        ray.shutdown()
    assert [s['complete'] for s in summaries] == [True, True], summaries
    assert {s['input'] for s in summaries} == {str(drives / 'drive_a'), str(drives / 'drive_b')}
    golden = read_outputs(GOLDEN)
    golden.frames = {k: v for k, v in golden.frames.items() if k[0] == '/cam_left'}
    for summary in summaries:
        assert summary['frames_out'] == 45
        metrics, _ = evaluate(golden, read_outputs(summary['output']), 0.9)
        assert metrics['f1'] == 1.0  # detector only: masks absent, detections identical
        assert metrics['mask_iou'] is None


def test_a_corrupt_message_mid_bag_leaves_an_output_marked_partial(sample, tmp_path, capsys):
    from dali_trt_ros.bags.io import BagWriter

    # The sample's first 20 messages, then one whose bytes are not a CDR Image.
    damaged = tmp_path / 'damaged'
    writer = BagWriter(damaged)
    for topic, msgtype, timestamp, data in _messages(sample)[:20]:
        writer.write_raw(topic, msgtype, timestamp, data)
    writer.write_raw('/cam_front/image_raw', 'sensor_msgs/msg/Image', timestamp + 1,
                     b'\x00\x01\x00\x00garbage')
    writer.finish()
    output = tmp_path / 'out'
    code = process_bag.main([str(damaged), '-o', str(output), '--no-progress', '--batch', '4'])
    _assert_clean_failure(code, capsys.readouterr().err, str(damaged), '/cam_front/image_raw',
                          'cannot be deserialized')
    status, reason = bag_status(output)
    assert status == 'partial' and '/cam_front/image_raw' in reason
    summary = json.loads(summary_path(output).read_text())
    assert summary['complete'] is False and summary['frames_out'] == 20
    assert len(read_outputs(output).frames) == 20  # what was done before it is readable
