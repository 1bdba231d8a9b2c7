"""bench_node end to end, briefly: publisher process -> node process -> this process, both nodes.

A smoke run (about 20 s on 2 cores): it checks the benchmark still measures something for the
package's node and for the baseline node, not the figures (those live in docs/benchmarks.md).
"""

import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
REPO = pathlib.Path(__file__).resolve().parents[1]


def test_both_nodes_answer_and_the_report_is_written(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'bench_node.py'), '--sizes', '720p',
         '--transports', 'compressed', '--cameras', '1', '--rates', '10', '--seconds', '1.5',
         '--warmup', '0.5', '--out', str(tmp_path)],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / 'bench_node.json').read_text())
    cases = {case['node']: case for case in report['results']}
    assert set(cases) == {'perception', 'baseline'}
    for case in cases.values():
        assert 'error' not in case, case
        assert case['received'] >= 5 and case['latency_p50_ms'] > 0
        assert case['published'] >= case['received']
    assert (tmp_path / 'bench_node.png').stat().st_size > 0
    assert 'perception | 720p | compressed | 1 | 10.0' in (tmp_path / 'bench_node.md').read_text()
