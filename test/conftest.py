"""Test-session environment: an isolated DDS domain on loopback with the package's profile.

Set before rclpy is imported anywhere, and inherited by the node processes the tests start.
"""

import os
import pathlib
import random
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

# A distinct domain per run so parallel runs (or a developer's own graph) never cross-talk.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 101)))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(REPO / 'config' / 'fastdds_large_images.xml')
os.environ['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
# Make the source tree importable in the node subprocesses without an install step.
os.environ['PYTHONPATH'] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get('PYTHONPATH', '')) if p)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
