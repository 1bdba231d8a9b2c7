"""ament-style linters: flake8 over the whole package and its tests, pep257 docstrings."""

import ast
import pathlib
import subprocess
import sys
from xml.etree import ElementTree

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


# Python import name -> rosdep key. A new third-party import must be added here (or to PIP_ONLY)
# and to package.xml; the test below fails until both are done.
ROSDEP_KEYS = {
    'ament_index_python': 'ament_index_python', 'builtin_interfaces': 'builtin_interfaces',
    'diagnostic_msgs': 'diagnostic_msgs', 'launch': 'launch', 'launch_ros': 'launch_ros',
    'rcl_interfaces': 'rcl_interfaces', 'rclpy': 'rclpy', 'rosgraph_msgs': 'rosgraph_msgs',
    'sensor_msgs': 'sensor_msgs', 'std_msgs': 'std_msgs', 'vision_msgs': 'vision_msgs',
    'cv2': 'python3-opencv', 'hypothesis': 'python3-hypothesis',
    'matplotlib': 'python3-matplotlib', 'numpy': 'python3-numpy', 'PIL': 'python3-pil',
    'psutil': 'python3-psutil', 'pytest': 'python3-pytest', 'skimage': 'python3-skimage',
    'tqdm': 'python3-tqdm', 'yaml': 'python3-yaml',
}
# Import name -> PyPI name of what rosdep cannot install; package.xml's comment names each.
PIP_ONLY = {
    'nvidia': 'nvidia-dali', 'onnx': 'onnx', 'onnxconverter_common': 'onnxconverter-common',
    'onnxruntime': 'onnxruntime', 'ray': 'ray', 'rosbags': 'rosbags', 'tensorrt': 'tensorrt',
    'tflite': 'tflite', 'tflite2onnx': 'tflite2onnx',
}
# The test suite runs these as programs (python -m), so no import shows them.
LINT_TOOLS = {'python3-flake8', 'python3-pydocstyle'}


def third_party_imports(*folders):
    """Top-level names imported anywhere under ``folders`` (lazy imports included)."""
    local = {path.stem for folder in folders for path in (REPO / folder).glob('*.py')}
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob('*.py'):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split('.')[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split('.')[0])
    return names - set(sys.stdlib_module_names) - local - {'dali_trt_ros'}


def declared(kind):
    """The ``<kind>`` dependencies of package.xml."""
    root = ElementTree.parse(REPO / 'package.xml').getroot()
    return {element.text.strip() for element in root.findall(kind)}


def rosdep_keys(imports):
    unmapped = sorted(imports - set(ROSDEP_KEYS) - set(PIP_ONLY))
    assert not unmapped, (f'map {unmapped} to rosdep keys (ROSDEP_KEYS) or pip packages '
                          '(PIP_ONLY) in this test, then declare them in package.xml')
    return {ROSDEP_KEYS[name] for name in imports if name in ROSDEP_KEYS}


def _same(declared_keys, expected, kind):
    assert declared_keys == expected, (
        f'package.xml {kind}: missing {sorted(expected - declared_keys)}, '
        f'not imported {sorted(declared_keys - expected)}')


def test_package_xml_lists_what_the_code_imports():
    runtime = rosdep_keys(third_party_imports('dali_trt_ros', 'launch'))
    _same(declared('exec_depend'), runtime, 'exec_depend')
    tests = rosdep_keys(third_party_imports('test')) - runtime
    _same(declared('test_depend'), tests | LINT_TOOLS, 'test_depend')
    xml_text = (REPO / 'package.xml').read_text()
    used = third_party_imports('dali_trt_ros', 'launch', 'test')
    missing = sorted(pip for name, pip in PIP_ONLY.items() if name in used and pip not in xml_text)
    assert not missing, f"name the pip-only packages {missing} in package.xml's comment"
