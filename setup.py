"""ament_python packaging for dali_trt_ros (colcon build, or pip in a venv)."""

import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'dali_trt_ros'


def share_files(folder):
    """Map every file under `folder` to share/<package>/<folder>/..., keeping sub-folders."""
    entries = {}
    for path in glob.glob(os.path.join(folder, '**', '*'), recursive=True):
        if os.path.isfile(path):
            target = os.path.join('share', PACKAGE, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        *share_files('launch'),
        *share_files('config'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='dali_trt_ros developers',
    maintainer_email='dev@dali-trt-ros.invalid',
    description='DALI preprocessing + TensorRT / ONNX Runtime perception nodes for ROS 2',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'perception_node = dali_trt_ros.nodes.perception_node:main',
            'build_engine = dali_trt_ros.tools.build_engine:main',
            'verify_tensorrt = dali_trt_ros.tools.verify_tensorrt:main',
            'prepare_models = dali_trt_ros.tools.prepare_models:main',
            'bench_preprocess = dali_trt_ros.tools.bench_preprocess:main',
            'demo = dali_trt_ros.tools.demo:main',
            'soak = dali_trt_ros.tools.soak:main',
            'make_bag = dali_trt_ros.tools.make_bag:main',
            'play_bag = dali_trt_ros.tools.play_bag:main',
            'record_outputs = dali_trt_ros.tools.record_outputs:main',
            'process_bag = dali_trt_ros.tools.process_bag:main',
            'evaluate_bag = dali_trt_ros.tools.evaluate_bag:main',
        ],
    },
)
