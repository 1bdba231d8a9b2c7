"""Soak a perception node with valid and hostile frames from N cameras; print the figures.

    ros2 run dali_trt_ros soak --minutes 10 --cameras 4 --rate 30

Starts ``perception_node`` in its own process (or attaches to a running one with ``--attach``),
publishes from N cameras (transports alternate raw / compressed) at ``--rate`` frames per second
each, a share of them hostile (corrupt and truncated JPEG, decompression bombs, mutated bytes,
headers that disagree with the data, unsupported encodings, 1 MB frame_id / format / encoding
strings), samples the node's RSS (psutil) and its ``/diagnostics``, and prints a table:

- per camera: frames pushed, received, processed, dropped, failed, lost in transport (as the
  node detected it) and undelivered (pushed - received: everything the node never got);
- node RSS at start, after warm-up and at the end, growth after warm-up;
- hostile frames by kind and the node's errors by reason ("faults survived": the node kept
  serving after every one of them).

Exit status 0 when the figures hold: for every camera received = processed + dropped + failed
(after the node drained), lost <= pushed - received, the node alive to the end with no
traceback and no raw codec line on its output, RSS growth after warm-up <= ``--max-rss-growth``
and no RSS peak more than ``--max-rss-peak`` above its median (a decoded bomb spikes, then falls).
1 when one does not hold, 2 when the soak could not run (node did not start or appear).

Transport loss: a subscriber can only count what it can see. Fast DDS reports samples it knows
it missed (sequence gaps) through the message-lost event; frames a publisher overwrote in its
own history before sending, or never sent, are invisible to the node, which is why the table
shows "undelivered" (ground truth from this publisher) next to "lost" (what the node detected).
"""

import argparse
from dataclasses import dataclass, field
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

PROFILE_NAME = 'fastdds_large_images.xml'
NODE_NAME = 'soak_perception'
COUNTER_KEYS = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_failed',
                'frames_lost_in_transport')


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog='soak', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--minutes', type=float, default=10.0, help='how long to publish')
    parser.add_argument('--cameras', type=int, default=1, help='number of cameras')
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second per camera')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--transports', default='raw,compressed',
                        help='transports given to the cameras in turn')
    parser.add_argument('--hostile-share', type=float, default=0.1,
                        help='fraction of the frames that are hostile')
    parser.add_argument('--models', default='ssd_mobilenetv2_oidv4',
                        help='comma-separated models for the node it starts ("" validates '
                             'frames only)')
    parser.add_argument('--qos', choices=('best_effort', 'reliable'), default='best_effort',
                        help='publisher reliability (camera drivers use best_effort)')
    parser.add_argument('--namespace', default='/soak', help='namespace of the node')
    parser.add_argument('--warmup-s', type=float, default=None,
                        help='RSS warm-up (default: a quarter of the run, at most 60 s)')
    parser.add_argument('--max-rss-growth', type=float, default=0.05,
                        help='largest accepted RSS growth after warm-up (fraction)')
    parser.add_argument('--max-rss-peak', type=float, default=0.5,
                        help='largest accepted RSS peak above the median after warm-up '
                             '(fraction): a decoded bomb spikes and falls back')
    parser.add_argument('--attach', action='store_true',
                        help='use a running node (--namespace, --node-name, --node-pid) '
                             'instead of starting one')
    parser.add_argument('--node-name', default=NODE_NAME)
    parser.add_argument('--node-pid', type=int, default=None,
                        help='pid of the attached node, for RSS (default: not sampled)')
    parser.add_argument('--node-arg', action='append', default=[],
                        help='extra --ros-args item for the node it starts, e.g. '
                             '"-p max_pixels:=8294400" (repeatable)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args(argv)
    if args.cameras < 1 or args.rate <= 0 or args.minutes <= 0:
        parser.error('--cameras, --rate and --minutes must be positive')
    if not 0.0 <= args.hostile_share <= 1.0:
        parser.error('--hostile-share must be within 0..1')
    return args


@dataclass
class Camera:
    """One simulated camera: its topic, its frames and what it pushed."""

    name: str
    transport: str
    topic: str
    valid: list = field(default_factory=list)     # serialized messages
    hostile: list = field(default_factory=list)   # (kind, serialized message)
    pushed: int = 0
    hostile_pushed: dict = field(default_factory=dict)
    publish_errors: int = 0


def camera_plan(args):
    """Cameras with names, transports and topics as the node's ``cameras`` parameter maps them."""
    transports = [t.strip() for t in args.transports.split(',') if t.strip()]
    if not transports or set(transports) - {'raw', 'compressed'}:
        raise SystemExit(f'soak: --transports {args.transports!r}: use raw and/or compressed')
    namespace = args.namespace.rstrip('/')
    cameras = []
    for index in range(args.cameras):
        name = f'cam{index}' if args.cameras > 1 else ''
        transport = transports[index % len(transports)]
        suffix = 'image_raw' if transport == 'raw' else 'image_raw/compressed'
        topic = '/'.join(part for part in (namespace, name, suffix) if part)
        cameras.append(Camera(name or 'camera', transport, topic))
    return cameras


def node_command(args, cameras):
    """Command line that starts the node for these cameras."""
    ros_args = ['-r', f'__node:={args.node_name}', '-r', f'__ns:={args.namespace}',
                '-p', 'diagnostics_period_s:=1.0']
    if len(cameras) > 1:
        ros_args += ['-p', f'cameras:=[{",".join(c.name for c in cameras)}]']
        ros_args += [item for c in cameras
                     for item in ('-p', f'{c.name}.input_transport:={c.transport}')]
    else:
        ros_args += ['-p', f'input_transport:={cameras[0].transport}']
    models = [m.strip() for m in args.models.split(',') if m.strip()]
    if models:
        ros_args += ['-p', f'models:=[{",".join(models)}]']
    for item in args.node_arg:
        ros_args += item.split()
    return [sys.executable, '-m', 'dali_trt_ros.nodes.perception_node', '--ros-args', *ros_args]


def dds_profile():
    """Return the package's large-image DDS profile (source tree, else installed share)."""
    source = pathlib.Path(__file__).resolve().parents[2] / 'config' / PROFILE_NAME
    if source.exists():
        return str(source)
    try:
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory('dali_trt_ros'), 'config', PROFILE_NAME)
    except (ImportError, LookupError, ValueError):
        return None


# -- frames ------------------------------------------------------------------------------------
def photos(width, height, count=4):
    """Real photographs (scikit-image) at the camera size, RGB."""
    import cv2
    from skimage import data
    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return [cv2.resize(np.ascontiguousarray(image[:, :, :3]), (width, height),
                       interpolation=cv2.INTER_AREA) for image in sources[:count]]


def _message(transport, rgb=None, jpeg=None, **fields):
    from sensor_msgs.msg import CompressedImage, Image
    if transport == 'raw':
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                    step=rgb.shape[1] * 3)
        msg.data = rgb.tobytes()
    else:
        msg = CompressedImage(format='jpeg')
        msg.data = jpeg
    for key, value in fields.items():
        if key == 'frame_id':
            msg.header.frame_id = value
        else:
            setattr(msg, key, value)
    return msg


def valid_messages(transport, images):
    """One valid message per image: rgb8 Image or JPEG CompressedImage."""
    from dali_trt_ros.tools import hostile_frames
    return [_message(transport, rgb=rgb, jpeg=hostile_frames.small_jpeg(rgb, 90))
            for rgb in images]


def hostile_messages(transport, rgb, rng, mutated=32):
    """(kind, message) pairs a camera of this transport can be made to send."""
    from sensor_msgs.msg import Image

    from dali_trt_ros.tools import hostile_frames
    huge = 'x' * 2**20
    if transport == 'raw':
        frames = [
            ('short_data', _message('raw', rgb=rgb, height=rgb.shape[0] + 1)),
            ('step_too_small', _message('raw', rgb=rgb, step=rgb.shape[1])),
            ('unsupported_encoding', _message('raw', rgb=rgb, encoding='bayer_rggb8')),
            ('huge_encoding', _message('raw', rgb=rgb, encoding='rgb8' + huge)),
            ('declared_16384x16384', _message('raw', rgb=rgb, width=16384, height=16384,
                                              step=16384 * 3)),
            ('zero_size', Image(encoding='rgb8')),
            ('huge_frame_id', _message('raw', rgb=rgb, frame_id=huge)),
        ]
        return frames
    jpeg = hostile_frames.small_jpeg(rgb, 90)
    damaged_entropy = bytearray(jpeg)
    middle = len(jpeg) // 2
    damaged_entropy[middle:middle + 256] = bytes(range(256))
    broken_tables = bytearray(jpeg)
    start = hostile_frames.sof_offset(jpeg) + 19
    broken_tables[start:start + 2000] = bytes([7]) * len(broken_tables[start:start + 2000])
    frames = [
        ('corrupt_jpeg_data', _message('compressed', jpeg=bytes(damaged_entropy))),
        ('broken_jpeg_tables', _message('compressed', jpeg=bytes(broken_tables))),
        ('truncated_jpeg', _message('compressed', jpeg=jpeg[:len(jpeg) // 2])),
        ('jpeg_bomb', _message('compressed', jpeg=hostile_frames.jpeg_bomb())),
        ('png_bomb', _message('compressed', jpeg=hostile_frames.png_bomb_1bit(),
                              format='png')),
        ('png_16bit', _message('compressed', jpeg=hostile_frames.pillow_png(rgb, 'I;16'),
                               format='png')),
        ('random_bytes', _message('compressed', jpeg=rng.bytes(4096))),
        ('huge_format', _message('compressed', jpeg=jpeg, format='jpeg' + huge)),
        ('huge_frame_id', _message('compressed', jpeg=jpeg, frame_id=huge)),
    ]
    for _ in range(mutated):  # fuzz cases: a few random bit flips and a random cut
        data = bytearray(jpeg)
        for position in rng.integers(0, len(data), rng.integers(1, 8)):
            data[position] ^= 1 << int(rng.integers(0, 8))
        if rng.random() < 0.3:
            del data[int(rng.integers(len(data) // 2, len(data))):]
        frames.append(('mutated_jpeg', _message('compressed', jpeg=bytes(data))))
    return frames


def serialize_all(cameras_messages):
    """Serialize messages once: publishing bytes skips rclpy's per-message conversion."""
    from rclpy.serialization import serialize_message
    return [serialize_message(msg) for msg in cameras_messages]


def stamped(serialized, now_ns):
    """Return the message with header.stamp set (CDR: 4-byte header, sec, nanosec)."""
    data = bytearray(serialized)
    sec, nanosec = divmod(now_ns, 10**9)
    data[4:12] = int(sec).to_bytes(4, 'little', signed=True) + int(nanosec).to_bytes(4, 'little')
    return bytes(data)


# -- observation -------------------------------------------------------------------------------
class DiagnosticsLog:
    """Latest /diagnostics values of the node's camera statuses (those with frames_received)."""

    def __init__(self, node_name):
        self.prefix = f'{node_name}:'
        self.cameras = {}
        self.updates = 0
        self._lock = threading.Lock()

    def on_message(self, array):
        """Keep the newest values per camera status."""
        with self._lock:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(self.prefix) and 'frames_received' in values:
                    self.cameras[status.name] = values
                    self.updates += 1

    def snapshot(self):
        """{status name: {key: value}} as last received."""
        with self._lock:
            return {name: dict(values) for name, values in self.cameras.items()}


def counters(values):
    """Return the integer counters of one camera status (0 for keys this node does not publish)."""
    return {key: int(float(values.get(key, 0))) for key in COUNTER_KEYS}


def camera_status(snapshot, camera, cameras):
    """Return the diagnostics values of ``camera`` (matched by topic, else the only one)."""
    for values in snapshot.values():
        if values.get('topic') == camera.topic:
            return values
    return next(iter(snapshot.values())) if len(cameras) == 1 and snapshot else {}


class RssSampler:
    """Sample a process's RSS (with its children) once a second."""

    def __init__(self, pid):
        import psutil
        self.samples = []  # (seconds since start, bytes)
        self._process = psutil.Process(pid) if pid else None
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if self._process is not None:
            self._thread.start()

    def _run(self):
        import psutil
        while not self._stop.wait(1.0):
            try:
                processes = [self._process, *self._process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in processes)
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - self._start, rss))

    def stop(self):
        """Stop sampling."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def rss_figures(samples, warmup_s):
    """RSS at start, after warm-up and at the end, the growth between them, and the peak.

    "After warm-up" and "end" are the medians of the first and last quarter of the samples
    after warm-up: frames in flight move single samples by tens of MB, a leak moves quarters.
    """
    if len(samples) < 4:
        return {'rss_samples': len(samples)}
    after = [rss for t, rss in samples if t >= warmup_s] or [samples[-1][1]]
    quarter = max(1, len(after) // 4)
    warm = statistics.median(after[:quarter])
    end = statistics.median(after[-quarter:])
    typical = statistics.median(after)
    return {'rss_samples': len(samples), 'rss_start_mb': samples[0][1] / 2**20,
            'rss_after_warmup_mb': warm / 2**20, 'rss_end_mb': end / 2**20,
            'rss_growth_after_warmup': (end - warm) / warm,
            'rss_peak_after_warmup_mb': max(after) / 2**20,
            'rss_peak_above_median': max(after) / typical - 1.0,
            'rss_series_mb': [(round(t, 1), round(rss / 2**20, 1)) for t, rss in samples]}


# -- the run -----------------------------------------------------------------------------------
def build_frames(args, cameras):
    """Give every camera its valid and hostile serialized frames."""
    rng = np.random.default_rng(args.seed)
    images = photos(args.width, args.height)
    for camera in cameras:
        camera.valid = serialize_all(valid_messages(camera.transport, images))
        kinds_and_messages = hostile_messages(camera.transport, images[0], rng)
        camera.hostile = list(zip([k for k, _ in kinds_and_messages],
                                  serialize_all([m for _, m in kinds_and_messages])))


def make_publishers(node, cameras, args):
    """One publisher per camera, with the QoS a camera driver would use."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    qos = QoSProfile(depth=5, reliability=(ReliabilityPolicy.RELIABLE if args.qos == 'reliable'
                                           else ReliabilityPolicy.BEST_EFFORT))
    return [node.create_publisher(Image if c.transport == 'raw' else CompressedImage,
                                  c.topic, qos) for c in cameras]


def publish_loop(publishers, cameras, args, deadline):
    """Publish every camera's frames at the rate until the deadline; count what went out."""
    rng = np.random.default_rng(args.seed + 1)
    period = 1.0 / args.rate
    tick, next_time = 0, time.monotonic()
    while time.monotonic() < deadline:
        for camera, publisher in zip(cameras, publishers):
            if rng.random() < args.hostile_share:
                kind, data = camera.hostile[int(rng.integers(len(camera.hostile)))]
            else:
                kind, data = None, camera.valid[tick % len(camera.valid)]
            try:
                publisher.publish(stamped(data, time.time_ns()))
            except Exception:  # noqa: B902 - rclpy raises RCLError at times under load
                camera.publish_errors += 1
                continue
            camera.pushed += 1
            if kind:
                camera.hostile_pushed[kind] = camera.hostile_pushed.get(kind, 0) + 1
        tick += 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))


def wait_for_subscribers(node, publishers, proc, timeout):
    """Wait until the node subscribes to every camera topic (DDS discovery)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.get_subscription_count() > 0 for p in publishers):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def wait_until_drained(diagnostics, cameras, timeout=20.0):
    """Wait until every camera's counters balance and stop changing (two updates alike)."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        time.sleep(1.1)
        snapshot = diagnostics.snapshot()
        current = [counters(camera_status(snapshot, c, cameras)) for c in cameras]
        balanced = all(c['frames_received'] == c['frames_processed'] + c['frames_dropped']
                       + c['frames_failed'] for c in current)
        if balanced and current == previous:
            return True
        previous = current
    return False


def camera_figures(camera, values):
    """One camera's row: what it pushed and what the node says happened to it."""
    row = {'camera': camera.name, 'transport': camera.transport, 'topic': camera.topic,
           'pushed': camera.pushed, 'publish_errors': camera.publish_errors,
           'hostile_pushed': sum(camera.hostile_pushed.values()),
           'hostile_by_kind': dict(sorted(camera.hostile_pushed.items()))}
    row.update({key.replace('frames_', ''): value for key, value in counters(values).items()})
    row['undelivered'] = row['pushed'] - row['received']
    row['errors_by_reason'] = {key[len('errors.'):]: int(float(value))
                               for key, value in values.items() if key.startswith('errors.')}
    return row


def verdict(figures, max_rss_growth, max_rss_peak=0.5):
    """Return the list of failed checks (empty: the soak passed)."""
    failures = []
    for row in figures['cameras']:
        name = row['camera']
        if row['received'] != row['processed'] + row['dropped'] + row['failed']:
            failures.append(f"{name}: received {row['received']} != processed + dropped + "
                            f"failed = {row['processed'] + row['dropped'] + row['failed']}")
        if row['lost_in_transport'] > max(0, row['undelivered']):
            failures.append(f"{name}: node counted {row['lost_in_transport']} lost but only "
                            f"{row['undelivered']} frames were undelivered")
        if row['undelivered'] < 0:
            failures.append(f"{name}: node received {row['received']} frames, more than the "
                            f"{row['pushed']} pushed (another publisher on the topic?)")
        if row['pushed'] and not row['received']:
            failures.append(f'{name}: the node received none of its frames')
    if not figures['node_alive']:
        failures.append('the node died during the soak')
    if figures['node_tracebacks']:
        failures.append(f"{figures['node_tracebacks']} traceback(s) in the node's output")
    if figures['raw_codec_lines']:
        failures.append(f"{figures['raw_codec_lines']} raw codec line(s) in the node's output")
    growth = figures['rss'].get('rss_growth_after_warmup')
    if growth is not None and growth > max_rss_growth:
        failures.append(f'node RSS grew {growth:.1%} after warm-up (limit {max_rss_growth:.0%})')
    peak = figures['rss'].get('rss_peak_above_median')
    if peak is not None and peak > max_rss_peak:
        failures.append(f"node RSS peaked at {figures['rss']['rss_peak_after_warmup_mb']:.0f} MB, "
                        f'{peak:.0%} above its median after warm-up (limit {max_rss_peak:.0%})')
    if not figures['diagnostics_drained']:
        failures.append('the counters did not settle within 20 s after publishing stopped')
    return failures


def scan_node_output(path):
    """(tracebacks, raw codec lines) in the node's combined stdout/stderr."""
    from dali_trt_ros.codec_messages import classify
    if path is None or not os.path.exists(path):
        return 0, 0
    tracebacks = raw = 0
    with open(path, errors='replace') as stream:
        for line in stream:
            tracebacks += line.startswith('Traceback (most recent call last)')
            raw += classify(line) is not None
    return tracebacks, raw


def print_table(figures, failures, out=sys.stdout):
    """Print the figures as a table, then the verdict."""
    columns = ('camera', 'transport', 'pushed', 'received', 'processed', 'dropped', 'failed',
               'lost_in_transport', 'undelivered', 'hostile_pushed')
    widths = [max(len(c), 9) for c in columns]
    print(' '.join(c.rjust(w) for c, w in zip(columns, widths)), file=out)
    rows = figures['cameras'] + [figures['total']]
    for row in rows:
        print(' '.join(str(row.get(c, '')).rjust(w) for c, w in zip(columns, widths)), file=out)
    rss = figures['rss']
    if 'rss_end_mb' in rss:
        print(f"node RSS: start {rss['rss_start_mb']:.0f} MB, after warm-up "
              f"{rss['rss_after_warmup_mb']:.0f} MB, end {rss['rss_end_mb']:.0f} MB, growth "
              f"after warm-up {rss['rss_growth_after_warmup']:+.2%}, peak "
              f"{rss['rss_peak_after_warmup_mb']:.0f} MB ({rss['rss_samples']} samples, "
              f"warm-up {figures['warmup_s']:.0f} s)", file=out)
    else:
        print('node RSS: not sampled (attach with --node-pid to sample it)', file=out)
    print(f"hostile frames pushed: {figures['total']['hostile_pushed']} "
          f"({figures['fuzz_cases']} distinct, incl. mutated JPEGs) by kind: "
          f"{figures['hostile_by_kind']}", file=out)
    print(f"node errors by reason: {figures['errors_by_reason']}", file=out)
    print(f"faults survived: {figures['faults_survived']}; node alive: {figures['node_alive']}"
          f"; tracebacks: {figures['node_tracebacks']}; raw codec lines: "
          f"{figures['raw_codec_lines']}; after SIGINT: exit code "
          f"{figures.get('node_exit_code', '-')}, tracebacks "
          f"{figures.get('node_tracebacks_with_shutdown', '-')}", file=out)
    print('PASS' if not failures else 'FAIL:\n  ' + '\n  '.join(failures), file=out)


def summarize(cameras, snapshot, rss, args, warmup_s, node_alive, output_path):
    """All figures of the run as one dict."""
    rows = [camera_figures(c, camera_status(snapshot, c, cameras)) for c in cameras]
    total = {'camera': 'all', 'transport': ''}
    for key in ('pushed', 'publish_errors', 'hostile_pushed', 'received', 'processed',
                'dropped', 'failed', 'lost_in_transport', 'undelivered'):
        total[key] = sum(row[key] for row in rows)
    by_kind, by_reason = {}, {}
    for camera, row in zip(cameras, rows):
        for kind, count in camera.hostile_pushed.items():
            by_kind[kind] = by_kind.get(kind, 0) + count
        for reason, count in row['errors_by_reason'].items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    tracebacks, raw_codec = scan_node_output(output_path)
    return {
        'minutes': args.minutes, 'cameras_count': len(cameras), 'rate_hz': args.rate,
        'size': f'{args.width}x{args.height}', 'qos': args.qos, 'models': args.models,
        'hostile_share': args.hostile_share, 'cameras': rows, 'total': total,
        'rss': rss, 'warmup_s': warmup_s, 'node_alive': node_alive,
        'hostile_by_kind': dict(sorted(by_kind.items())),
        'errors_by_reason': dict(sorted(by_reason.items())),
        'fuzz_cases': sum(len(c.hostile) for c in cameras),
        'faults_survived': total['hostile_pushed'] if node_alive else 0,
        'node_tracebacks': tracebacks, 'raw_codec_lines': raw_codec,
    }


def start_node(args, cameras, output_path):
    """Start the node in its own process, its output going to ``output_path``."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(output_path, 'w') as output:
        return subprocess.Popen(node_command(args, cameras), stdout=output,
                                stderr=subprocess.STDOUT, env=env)


def stop_node(proc, timeout=15.0):
    """SIGINT the node (Ctrl-C) and wait; kill it if it does not end. Return the exit code."""
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run(args):
    """Run the soak; return (figures, failures) or raise SystemExit(msg) when it cannot run."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    profile = dds_profile()
    if profile and 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ:
        # Without it most large frames are lost (README: Large images over DDS); a profile the
        # user exported is theirs to keep.
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    cameras = camera_plan(args)
    build_frames(args, cameras)
    duration = args.minutes * 60.0
    warmup_s = args.warmup_s if args.warmup_s is not None else min(60.0, duration / 4)
    output_path = proc = None
    if not args.attach:
        output_path = tempfile.NamedTemporaryFile(prefix='soak_node_', suffix='.log',
                                                  delete=False).name
        proc = start_node(args, cameras, output_path)
    rclpy.init()
    node = rclpy.create_node('soak_publisher')
    diagnostics = DiagnosticsLog(args.node_name)
    node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.on_message, 50)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    rss = RssSampler(proc.pid if proc else args.node_pid)
    try:
        publishers = make_publishers(node, cameras, args)
        if not wait_for_subscribers(node, publishers, proc, timeout=60.0):
            tail = pathlib.Path(output_path).read_text()[-2000:] if output_path else ''
            raise SystemExit(f'soak: the node never subscribed to {[c.topic for c in cameras]}'
                             f' within 60 s\n{tail}')
        print(f'soak: {len(cameras)} camera(s) x {args.rate:g} Hz for {args.minutes:g} min, '
              f'{args.hostile_share:.0%} hostile; topics {[c.topic for c in cameras]}',
              flush=True)
        publish_loop(publishers, cameras, args, time.monotonic() + duration)
        drained = wait_until_drained(diagnostics, cameras)
        node_alive = proc is None or proc.poll() is None
        rss.stop()
        figures = summarize(cameras, diagnostics.snapshot(), rss_figures(rss.samples, warmup_s),
                            args, warmup_s, node_alive, output_path)
        figures['diagnostics_drained'] = drained
    finally:
        rss.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        exit_code = stop_node(proc) if proc is not None else None
    failures = verdict(figures, args.max_rss_growth, args.max_rss_peak)
    if proc is not None:
        # Reported, not judged here: shutdown behaviour has its own tests.
        figures.update(node_exit_code=exit_code, node_output=output_path,
                       node_tracebacks_with_shutdown=scan_node_output(output_path)[0])
    return figures, failures


def main(argv=None):
    """Run the soak, print the table, exit 0 (pass), 1 (a check failed) or 2 (could not run)."""
    args = parse_args(argv)
    try:
        figures, failures = run(args)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            return 2
        raise
    print_table(figures, failures)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dict(figures, failures=failures),
                                                      indent=2))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
