"""Launch files, parameters files and rviz layouts checked against what the package has.

``ros2 launch`` is not installable from PyPI, so CI cannot start the launch files; it parses
them (AST) and checks every executable, config/launch file, launch argument and parameter they
name against the package: setup.py's console scripts, the files in the tree, the arguments
perception.launch.py declares and the parameters perception_node really declares. The
parameters files are loaded into a real node; the rviz layouts may only name topics the node
publishes.
"""

import ast
import pathlib

import pytest
import yaml

from dali_trt_ros.nodes.launch_support import (dds_profile_environment, parse_camera_list,
                                               profile_variable)

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from rclpy.parameter import Parameter  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.py'))
PARAMS_FILES = sorted((REPO / 'config').glob('perception*.yaml'))
RVIZ_FILES = {'perception.rviz': [], 'multi_camera.rviz': ['front', 'left', 'right']}


def _console_scripts():
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ' = ' in node.value:
            yield node.value.split(' = ')[0].strip()


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            if called == name:
                yield node


def _keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _declared_arguments(tree):
    names = set()
    for call in _calls(tree, 'DeclareLaunchArgument'):
        if call.args and isinstance(call.args[0], ast.Constant):
            names.add(call.args[0].value)
    for node in ast.walk(tree):  # multi_camera declares its arguments from a tuple of names
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'arguments':
            names |= {elt.value for elt in node.value.elts}
    return names


def _package_files(tree):
    """(folder, file) of every os.path.join(share, '<folder>', '<file>') in a launch file."""
    for call in _calls(tree, 'join'):
        parts = [a.value for a in call.args[1:] if isinstance(a, ast.Constant)]
        if len(parts) == 2 and parts[0] in ('config', 'launch'):
            yield tuple(parts)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_what_exists(path):
    tree = ast.parse(path.read_text())
    scripts = set(_console_scripts())
    for call in _calls(tree, 'Node'):
        executable = _keyword(call, 'executable')
        assert isinstance(executable, ast.Constant) and executable.value in scripts
        assert _keyword(call, 'output').value == 'both'  # an exit's reason lands in the log
    files = list(_package_files(tree))
    assert files, 'a launch file that names no config or launch file'
    for folder, name in files:
        assert (REPO / folder / name).is_file(), f'{path.name} names {folder}/{name}'
    declared = _declared_arguments(tree)
    for call in _calls(tree, 'LaunchConfiguration'):
        if call.args and isinstance(call.args[0], ast.Constant):
            assert call.args[0].value in declared, call.args[0].value
    # Whatever an including file passes must be an argument the included file declares.
    perception_args = _declared_arguments(ast.parse(
        (REPO / 'launch' / 'perception.launch.py').read_text()))
    for call in _calls(tree, 'IncludeLaunchDescription'):
        assert declared <= perception_args
    assert {'cameras', 'namespace', 'params_file', 'backend', 'log_level'} <= declared


def _parameters_file_values(path):
    data = yaml.safe_load(path.read_text())
    assert list(data) == ['/**'], f'{path.name} must be keyed /** to apply under any namespace'
    values = {}

    def flatten(prefix, mapping):
        for key, value in mapping.items():
            if isinstance(value, dict):
                flatten(f'{prefix}{key}.', value)
            else:
                values[prefix + key] = value
    flatten('', data['/**']['ros__parameters'])
    return values


@pytest.fixture(scope='module')
def rclpy_context():
    rclpy.init()
    yield
    rclpy.shutdown()


def _node(overrides):
    from dali_trt_ros.nodes.perception_node import PerceptionNode
    return PerceptionNode(parameter_overrides=[Parameter(k, value=v) for k, v in overrides])


@pytest.mark.parametrize('path', PARAMS_FILES, ids=lambda p: p.name)
def test_parameters_file_sets_only_declared_parameters(path, rclpy_context):
    values = _parameters_file_values(path)
    assert values.get('providers', ['cpu']) == ['cpu'], 'the shipped default must run anywhere'
    # Models are loaded by the process test below; here only the parameter names matter.
    node = _node([(k, v) for k, v in values.items() if k != 'models'])
    try:
        for key, value in values.items():
            assert node.has_parameter(key), f'{path.name}: {key} is not a node parameter'
            if key != 'models':
                assert node.get_parameter(key).value == value, key
    finally:
        node.destroy_node()


def test_every_declared_parameter_is_in_the_readme(rclpy_context):
    readme = (REPO / 'README.md').read_text()
    node = _node([('cameras', ['front'])])
    try:
        names = [n for n in node._parameters if not n.startswith(
            ('qos_overrides', 'use_sim_time', 'start_type_description_service'))]
    finally:
        node.destroy_node()
    for name in names:
        documented = name.replace('front.', '<camera>.')
        assert f'`{documented}`' in readme, f'parameter {name} is not documented'


@pytest.mark.parametrize('name', sorted(RVIZ_FILES))
def test_rviz_layout_names_only_published_topics(name, rclpy_context):
    layout = yaml.safe_load((REPO / 'config' / name).read_text())
    displays = layout['Visualization Manager']['Displays']
    topics = [d['Topic']['Value'] for d in displays if 'Topic' in d]
    assert topics, f'{name} shows nothing'
    cameras = RVIZ_FILES[name]
    node = _node([('cameras', cameras)] if cameras else [])
    try:
        published = {topic for topic, _ in node.get_publisher_names_and_types_by_node(
            node.get_name(), node.get_namespace())}
    finally:
        node.destroy_node()
    assert set(topics) <= published, set(topics) - published
    for camera in cameras or ['']:
        prefix = f'/{camera}/' if camera else '/'
        assert {prefix + 'overlay', prefix + 'segmentation'} <= set(topics)


def test_dds_profile_variable_follows_the_distro_and_the_user_wins():
    assert profile_variable('humble') == 'FASTRTPS_DEFAULT_PROFILES_FILE'
    assert profile_variable('jazzy') == 'FASTRTPS_DEFAULT_PROFILES_FILE'
    assert profile_variable('kilted') == 'FASTDDS_DEFAULT_PROFILES_FILE'
    assert profile_variable('rolling') == 'FASTDDS_DEFAULT_PROFILES_FILE'
    shipped = '/share/fastdds_large_images.xml'
    assert dds_profile_environment(shipped, '', {'ROS_DISTRO': 'jazzy'}) == {
        'FASTRTPS_DEFAULT_PROFILES_FILE': shipped}
    assert dds_profile_environment(shipped, '', {'ROS_DISTRO': 'kilted'}) == {
        'FASTDDS_DEFAULT_PROFILES_FILE': shipped}
    for exported in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        assert dds_profile_environment(shipped, '', {'ROS_DISTRO': 'kilted',
                                                     exported: '/mine.xml'}) == {}
    assert dds_profile_environment(shipped, '/asked.xml', {
        'ROS_DISTRO': 'humble', 'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}) == {
        'FASTRTPS_DEFAULT_PROFILES_FILE': '/asked.xml'}


def test_camera_list_argument():
    assert parse_camera_list('') == []
    assert parse_camera_list('front,left') == ['front', 'left']
    assert parse_camera_list("[front, 'left', right]") == ['front', 'left', 'right']
