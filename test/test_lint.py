"""ament-style linters: flake8 over the whole package and its tests, pep257 docstrings."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run([sys.executable, '-m', *args], cwd=REPO, capture_output=True,
                          text=True)


def test_flake8():
    result = _run('flake8', 'dali_trt_ros', 'test', 'launch', 'benchmarks', 'setup.py')
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'


def test_pep257_docstrings():
    result = _run('pydocstyle', 'dali_trt_ros', 'launch', 'benchmarks', 'setup.py')
    assert result.returncode == 0, f'pydocstyle found problems:\n{result.stdout}{result.stderr}'


def test_package_xml_lists_what_the_code_imports():
    text = (REPO / 'package.xml').read_text()
    for dep in ('rclpy', 'sensor_msgs', 'std_msgs', 'vision_msgs', 'diagnostic_msgs',
                'python3-numpy', 'launch_ros', 'ament_index_python'):
        assert f'>{dep}<' in text, dep
