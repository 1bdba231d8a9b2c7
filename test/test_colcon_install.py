"""The vehicle path: `colcon build` of this package, then run it from install/."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
COLCON = os.path.join(os.path.dirname(sys.executable), 'colcon')
pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
if not os.path.exists(COLCON):
    pytest.skip(f'colcon is not installed next to {sys.executable}', allow_module_level=True)


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    work = tmp_path_factory.mktemp('colcon_ws')
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix)
    result = subprocess.run(
        [COLCON, '--log-base', str(work / 'log'),
         'build', '--paths', str(REPO), '--build-base', str(work / 'build'),
         '--install-base', str(work / 'install')],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = work / 'install' / 'dali_trt_ros'
    site = next(prefix.glob('lib/python3*/site-packages'))
    # Only the install space: not the source tree, as on the vehicle after `source install/setup`.
    run_env = dict(os.environ, AMENT_PREFIX_PATH=f'{prefix}{os.pathsep}{sys.prefix}',
                   PYTHONPATH=str(site))
    return prefix, run_env


def test_share_files_are_where_ament_index_says(install):
    prefix, env = install
    code = ('from ament_index_python.packages import get_package_share_directory as g; '
            'print(g("dali_trt_ros"))')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         cwd='/', check=True).stdout.strip()
    share = pathlib.Path(out)
    assert share == prefix / 'share' / 'dali_trt_ros'
    for relative in ('package.xml', 'launch/perception.launch.py',
                     'config/fastdds_large_images.xml', 'config/perception.yaml'):
        assert (share / relative).read_bytes() == (REPO / relative).read_bytes(), relative
    assert (prefix.parent / 'dali_trt_ros' / 'share' / 'ament_index' / 'resource_index' /
            'packages' / 'dali_trt_ros').exists()


def test_console_scripts_run_from_install(install):
    prefix, env = install
    scripts = prefix / 'lib' / 'dali_trt_ros'
    for name in ('perception_node', 'build_engine', 'prepare_models', 'bench_preprocess', 'demo',
                 'soak'):
        assert os.access(scripts / name, os.X_OK), name
    # The bag tools run from the install (vision_msgs definitions found through the prefix).
    for name in ('make_bag', 'play_bag', 'record_outputs', 'process_bag', 'evaluate_bag'):
        result = subprocess.run([str(scripts / name), '--help'], env=env, cwd='/',
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and 'usage:' in result.stdout, (name, result.stderr)
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([str(scripts / 'make_bag'), f'{folder}/bag', '--sample'],
                                env=env, cwd='/', capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert '/cam_left/image_raw/compressed: 45 messages' in result.stdout
    # The installed node starts, validates its parameters and names the bad one.
    result = subprocess.run([str(scripts / 'perception_node'), '--ros-args', '-p',
                             'input_transport:=bogus'], env=env, cwd='/', capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'input_transport'" in result.stderr
