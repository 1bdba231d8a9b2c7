"""The rosbags typestore the bag tools use: ROS 2 Kilted types plus vision_msgs.

``vision_msgs`` is not part of rosbags' stores, so its ``.msg`` files are registered from the
first place that has them: an installed ``vision_msgs`` (``share/vision_msgs/msg`` under
``AMENT_PREFIX_PATH``, as on a vehicle) or this repository's ``interfaces/vision_msgs/msg``.
Both have the same fields, hence the same type hashes as ``ros-<distro>-vision-msgs``.
"""

import functools
import os
import pathlib

from dali_trt_ros.errors import ConfigError

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
DETECTIONS = 'vision_msgs/msg/Detection2DArray'
DIAGNOSTICS = 'diagnostic_msgs/msg/DiagnosticArray'
LABEL_INFO = 'vision_msgs/msg/LabelInfo'
CAMERA_TYPES = (IMAGE, COMPRESSED_IMAGE)

_REPO_MSG_DIR = pathlib.Path(__file__).resolve().parents[2] / 'interfaces' / 'vision_msgs' / 'msg'


def vision_msgs_dirs():
    """Folders that may hold vision_msgs/*.msg, in the order they are tried."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    candidates = [pathlib.Path(p) / 'share' / 'vision_msgs' / 'msg' for p in prefixes]
    candidates.append(_REPO_MSG_DIR)
    return candidates


@functools.lru_cache(maxsize=1)
def typestore():
    """Build (once) and return the typestore: Stores.ROS2_KILTED plus vision_msgs."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    store = get_typestore(Stores.ROS2_KILTED)
    for folder in vision_msgs_dirs():
        files = sorted(folder.glob('*.msg'))
        if files:
            break
    else:
        raise ConfigError('vision_msgs message definitions not found (looked in '
                          f'{", ".join(str(p) for p in vision_msgs_dirs())}); install '
                          'ros-$ROS_DISTRO-vision-msgs or run from the source tree')
    types = {}
    for path in files:
        types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
    store.register(types)
    return store
