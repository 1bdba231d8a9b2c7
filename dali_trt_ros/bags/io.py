"""Opening bags with errors that name the file and topic, and writing bags that say if complete.

Every output bag carries ``custom_data`` in its rosbag2 ``metadata.yaml``:
``dali_trt_ros.status`` is ``complete`` only when the tool finished; an interrupted or failed run
closes the bag properly (readable by ``ros2 bag`` and rosbags) but marks it ``partial`` with the
reason in ``dali_trt_ros.reason``.
"""

import pathlib
import shutil

from dali_trt_ros.bags.typestore import CAMERA_TYPES, typestore
from dali_trt_ros.errors import PerceptionError

STATUS_KEY = 'dali_trt_ros.status'
REASON_KEY = 'dali_trt_ros.reason'
STORAGES = ('mcap', 'sqlite3')
# Images this package publishes: never taken for camera input unless named explicitly.
OUTPUT_IMAGE_SUFFIXES = ('/segmentation', '/overlay')
# Camera-topic suffixes stripped to find a camera's namespace (node convention: <ns>/image_raw).
CAMERA_SUFFIXES = ('/image_raw/compressed', '/image/compressed', '/image_raw', '/image')


class BagError(PerceptionError):
    """A bag is missing, unreadable, truncated, or lacks the requested topic or type."""

    reason = 'bad_bag'


def camera_namespace(topic):
    """'/cam_front/image_raw[/compressed]' -> '/cam_front' (outputs live under it)."""
    for suffix in CAMERA_SUFFIXES:
        if topic.endswith(suffix):
            return topic[:-len(suffix)] or '/'
    return topic.rstrip('/') or '/'


def output_topic(namespace, name):
    """Topic `name` under a camera namespace ('/cam_front', 'detections')."""
    return f'{namespace.rstrip("/")}/{name}'


def is_bag(path):
    """Tell whether `path` is a rosbag2 folder (has metadata.yaml)."""
    return (pathlib.Path(path) / 'metadata.yaml').is_file()


def open_reader(path):
    """Open a rosbag2 folder for reading; BagError naming the path when it cannot be read."""
    from rosbags.rosbag2 import Reader

    path = pathlib.Path(path)
    if path.is_file() and is_bag(path.parent):
        path = path.parent  # a storage file inside a bag folder
    if not path.exists():
        raise BagError(f'bag {path}: no such file or folder')
    if not is_bag(path):
        raise BagError(f'bag {path}: not a rosbag2 folder (no metadata.yaml); record with '
                       '`ros2 bag record` or make one with make_bag')
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # rosbags raises ReaderError, yaml and OS errors alike
        raise BagError(f'bag {path}: cannot be read ({error}); it is corrupt or truncated '
                       '(was the recorder killed? `ros2 bag reindex` can repair mcap/sqlite3 '
                       'files that lack their index)') from None
    return reader


def select_connections(reader, topics=None, types=CAMERA_TYPES):
    """Return the connections of `topics` (default: every topic of one of `types`).

    The default leaves out this package's own image outputs (``.../segmentation``, ``overlay``).

    Raises BagError naming the bag and topic for an unknown topic or one of another type.
    """
    by_topic = {}
    for connection in reader.connections:
        by_topic.setdefault(connection.topic, []).append(connection)
    if topics is None:
        chosen = [c for c in reader.connections if c.msgtype in types
                  and not c.topic.endswith(OUTPUT_IMAGE_SUFFIXES)]
        if not chosen:
            raise BagError(f'bag {reader.path}: no topic of type {" or ".join(types)} '
                           f'besides perception outputs (topics: {_listing(by_topic)})')
        return chosen
    chosen = []
    for topic in topics:
        if topic not in by_topic:
            raise BagError(f'bag {reader.path}: topic {topic} not found (topics: '
                           f'{_listing(by_topic)})')
        for connection in by_topic[topic]:
            if connection.msgtype not in types:
                raise BagError(f'bag {reader.path}: topic {topic} is {connection.msgtype}; '
                               f'expected {" or ".join(types)}')
            chosen.append(connection)
    return chosen


def _listing(by_topic):
    return ', '.join(f'{topic} [{conns[0].msgtype}]' for topic, conns in sorted(by_topic.items())
                     ) or 'none'


def deserialize(connection, data, bag_path, timestamp):
    """Deserialize one message; BagError naming the bag, topic and time when it is corrupt."""
    try:
        return typestore().deserialize_cdr(data, connection.msgtype)
    except Exception as error:
        raise BagError(f'bag {bag_path}: message on {connection.topic} at t={timestamp} ns '
                       f'cannot be deserialized as {connection.msgtype} ({error})') from None


def custom_data(reader):
    """Return the custom_data mapping of an open reader's metadata.yaml ({} when none)."""
    metadata = getattr(reader.storage, 'metadata', None)
    return dict(getattr(metadata, 'custom', None) or {})


def bag_status(path):
    """(status, reason) recorded by these tools in a bag's metadata ('' when none)."""
    reader = open_reader(path)
    try:
        custom = custom_data(reader)
    finally:
        reader.close()
    return custom.get(STATUS_KEY, ''), custom.get(REASON_KEY, '')


class BagWriter:
    """A rosbag2 writer (mcap or sqlite3) that adds connections on first use.

    Close with :meth:`finish` (``complete=False`` marks the bag partial, with a reason).
    """

    def __init__(self, path, storage='mcap', overwrite=False):
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f'storage {storage!r}: expected one of {", ".join(STORAGES)}')
        self.path = pathlib.Path(path)
        if self.path.exists():
            if not overwrite:
                raise BagError(f'output {self.path} exists; remove it or pass --overwrite')
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections = {}
        self.counts = {}
        self.closed = False

    def connection(self, topic, msgtype):
        """Return the connection of `topic` (added on first use)."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
            self.counts[topic] = 0
        return connection

    def write(self, topic, msgtype, timestamp, msg):
        """Serialize and write one message at log time `timestamp` (ns)."""
        self.write_raw(topic, msgtype, timestamp, typestore().serialize_cdr(msg, msgtype))

    def write_raw(self, topic, msgtype, timestamp, data):
        """Write already-serialized CDR bytes."""
        self._writer.write(self.connection(topic, msgtype), int(timestamp), data)
        self.counts[topic] += 1

    def finish(self, complete=True, reason='', extra=None):
        """Write the index and metadata.yaml; record whether the bag is complete."""
        if self.closed:
            return
        self._writer.set_custom_data(STATUS_KEY, 'complete' if complete else 'partial')
        if reason:
            self._writer.set_custom_data(REASON_KEY, str(reason))
        for key, value in (extra or {}).items():
            self._writer.set_custom_data(f'dali_trt_ros.{key}', str(value))
        self._writer.close()
        self.closed = True
