r"""bench_node: perception_node vs a baseline rclpy node, measured over DDS between processes.

    publisher process --image_raw(/compressed)--> node process --detections--> this process

For each node (``perception``: this package's node; ``baseline``: benchmarks/baseline_node.py,
what a competent rclpy user writes), frame size (720p, 1080p), transport (raw Image, JPEG
CompressedImage), camera count (1, 4) and publish rate (30 Hz per camera, and ``max``: closed
loop, each camera keeps WINDOW frames in flight and publishes the next one when an answer comes
back, so the output rate is the node's maximum sustained rate without overloading it; a
free-running publisher measured DDS and GIL contention on small machines instead) it reports:
latency p50/p99 (header stamp set at publish -> detections received here), sustained output rate,
drops (published in the window but never answered: transport losses and node drops), the node's
CPU % (one core = 100), its GPU memory (nvidia-smi, where present) and the per-stage times the
node reports in /diagnostics. Every process uses config/fastdds_large_images.xml.

Run (from the repository root, the venv's Python)::

    python benchmarks/bench_node.py --out /tmp/bench_node                  # everything
    python benchmarks/bench_node.py --sizes 1080p --transports compressed --cameras 1 \\
        --providers cuda --seconds 5 --out $OUT/bench_node

Writes ``bench_node.json`` after every case (partial results survive a failure), then
``bench_node.md`` and ``bench_node.png``.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZES = {'720p': (1280, 720), '1080p': (1920, 1080)}
MODEL = 'ssd_mobilenetv2_oidv4'
DISCOVERY_TIMEOUT = 30.0
WINDOW = 2           # frames in flight per camera in the closed-loop (max rate) mode
ANSWER_TIMEOUT = 1.0  # s: a frame unanswered this long counts as lost and frees its slot


def ros_environment():
    """Environment for every process of the graph: loopback DDS with the large-image profile."""
    env = dict(os.environ)
    env.setdefault('ROS_DOMAIN_ID', str(40 + os.getpid() % 50))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(REPO / 'config' / 'fastdds_large_images.xml')
    env['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH', '')) if p)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def camera_names(count):
    """Camera namespaces: none for one camera (the default topics), cam0.. for several."""
    return [''] if count == 1 else [f'cam{i}' for i in range(count)]


def topic(camera, name):
    """Topic ``name`` of a camera namespace ('' = the node's own namespace)."""
    return f'{camera}/{name}' if camera else name


# --- the publisher process --------------------------------------------------------------------

def test_image(width, height):
    """A real photo (scikit-image astronaut) scaled to the frame size, RGB."""
    import cv2
    from skimage import data
    return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)


def publisher_main(args):
    """Publish frames at a rate for warm-up + measured seconds; print one JSON line at the end."""
    import cv2
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray

    width, height = SIZES[args.size]
    rgb = test_image(width, height)
    rclpy.init()
    node = rclpy.create_node('bench_publisher')
    cameras = camera_names(args.cameras)
    compressed = args.transport == 'compressed'
    messages, publishers = [], []
    for index, camera in enumerate(cameras):
        if compressed:
            msg = CompressedImage(format='jpeg')
            msg.data = cv2.imencode('.jpg', rgb[:, :, ::-1],
                                    [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            name = topic(camera, 'image_raw/compressed')
        else:
            msg = Image(height=height, width=width, encoding='rgb8', step=width * 3)
            msg.data = rgb.tobytes()  # bytes: assigning an ndarray costs 100s of ms
            name = topic(camera, 'image_raw')
        msg.header.frame_id = camera or 'camera'
        messages.append(msg)
        publishers.append(node.create_publisher(type(msg), name, qos_profile_sensor_data))
    deadline = time.monotonic() + DISCOVERY_TIMEOUT
    while any(p.get_subscription_count() < 1 for p in publishers):
        if time.monotonic() > deadline:
            print(json.dumps({'error': 'the node never subscribed to the image topics '
                              f'{[p.topic_name for p in publishers]}'}), flush=True)
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    closed_loop = args.rate <= 0
    in_flight = [[] for _ in cameras]  # publish times (monotonic) of unanswered frames

    def answered(index):
        if in_flight[index]:
            in_flight[index].pop(0)
    if closed_loop:
        for index, camera in enumerate(cameras):
            node.create_subscription(Detection2DArray, topic(camera, 'detections'),
                                     lambda _msg, index=index: answered(index), 100)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    start = time.monotonic()
    measure_start_wall = time.time() + args.warmup
    end = start + args.warmup + args.seconds
    published = [0] * len(cameras)
    failed = 0
    tick = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if period:
            target = start + tick * period
            if target > now:
                time.sleep(target - now)
            tick += 1
        elif closed_loop:
            rclpy.spin_once(node, timeout_sec=0.0005)
            now = time.monotonic()
            for flights in in_flight:
                while flights and now - flights[0] > ANSWER_TIMEOUT:
                    flights.pop(0)  # never answered: the node dropped it (counted as a drop)
        for index, (publisher, msg) in enumerate(zip(publishers, messages)):
            if closed_loop:
                if len(in_flight[index]) >= WINDOW:
                    continue
                in_flight[index].append(time.monotonic())
            stamp = time.time()
            msg.header.stamp.sec = int(stamp)
            msg.header.stamp.nanosec = int((stamp - int(stamp)) * 1e9)
            try:
                publisher.publish(msg)
            except Exception:  # noqa: BLE001 - rclpy raises RCLError at times under load
                failed += 1
                continue
            if stamp >= measure_start_wall:
                published[index] += 1
    print(json.dumps({'published': published, 'publish_failed': failed,
                      'measure_start': measure_start_wall, 'measure_end': time.time()}),
          flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# --- the node under test ----------------------------------------------------------------------

def node_command(kind, transport, cameras, providers, models):
    """Command line of the node process."""
    ros_args = ['-p', f'input_transport:={transport}', '-p', f'providers:=[{providers}]']
    if cameras > 1:
        ros_args += ['-p', 'cameras:=[' + ','.join(camera_names(cameras)) + ']']
    if kind == 'perception':
        return [sys.executable, '-m', 'dali_trt_ros.nodes.perception_node', '--ros-args',
                '-r', '__node:=perception_node', '-p', f'models:=[{models}]',
                # Topic names before the image_raw rename map onto the contract's names.
                '-r', 'image:=image_raw', '-r', 'image/compressed:=image_raw/compressed',
                *ros_args]
    return [sys.executable, str(REPO / 'benchmarks' / 'baseline_node.py'), '--ros-args',
            *ros_args]


def process_tree_cpu_seconds(pid):
    """User + system CPU seconds of a process and its children (psutil)."""
    import psutil
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root] + root.children(recursive=True):
            times = proc.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return None


def gpu_memory_mib(pid):
    """GPU memory used by a process tree (nvidia-smi), or None where it cannot be read."""
    if not shutil.which('nvidia-smi'):
        return None
    import psutil
    try:
        pids = {pid} | {c.pid for c in psutil.Process(pid).children(recursive=True)}
        out = subprocess.run(['nvidia-smi', '--query-compute-apps=pid,used_memory',
                              '--format=csv,noheader,nounits'], capture_output=True, text=True,
                             timeout=10).stdout
    except (psutil.Error, OSError, subprocess.SubprocessError):
        return None
    used = [float(mem) for line in out.splitlines() if ',' in line
            for p, mem in [line.split(',', 1)] if int(p) in pids]
    return sum(used) if used else 0.0


class Receiver:
    """This process's rclpy node: receives detections and diagnostics."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from vision_msgs.msg import Detection2DArray
        self._rclpy = rclpy
        rclpy.init()
        self.node = rclpy.create_node('bench_receiver')
        self.received = []  # (camera, stamp s, receipt s)
        self.diagnostics = {}
        self._subs = []
        self._types = Detection2DArray
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def subscribe(self, cameras):
        """Subscribe to each camera's detections (and drop older subscriptions)."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = [self.node.create_subscription(
            self._types, topic(camera, 'detections'),
            lambda msg, camera=camera: self._on_detections(camera, msg), 100)
            for camera in cameras]
        self.received = []

    def _on_detections(self, camera, msg):
        now = time.time()
        self.received.append((camera, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
                              now))

    def _on_diag(self, msg):
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def wait_for_publishers(self, cameras, proc):
        """Spin until the node publishes every detections topic; False on timeout/exit."""
        deadline = time.monotonic() + DISCOVERY_TIMEOUT
        while time.monotonic() < deadline:
            if all(s.get_publisher_count() >= 1 for s in self._subs):
                return True
            if proc.poll() is not None:
                return False
            self._rclpy.spin_once(self.node, timeout_sec=0.05)
        return False

    def spin_while(self, proc, grace=1.0):
        """Spin until ``proc`` exits, then ``grace`` seconds more for answers in flight."""
        while proc.poll() is None:
            self._rclpy.spin_once(self.node, timeout_sec=0.01)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self._rclpy.spin_once(self.node, timeout_sec=0.01)

    def close(self):
        """Shut rclpy down."""
        self.node.destroy_node()
        self._rclpy.try_shutdown()


def stop(proc, timeout=15.0):
    """SIGINT like Ctrl-C; kill after ``timeout``; return the output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ''


def summarize(received, report, cameras):
    """Latency/rate/drop figures of one run from the receipts and the publisher's report."""
    start, end = report['measure_start'], report['measure_end']
    window = [(c, s, r) for c, s, r in received if start <= s <= end]
    latencies = np.array([(r - s) * 1e3 for _, s, r in window])
    published = sum(report['published'])
    seconds = max(end - start, 1e-9)
    return {
        'published': published, 'received': len(window),
        'drops': max(published - len(window), 0),
        'drop_fraction': (published - len(window)) / published if published else None,
        'rate_hz': len(window) / seconds, 'rate_per_camera_hz': len(window) / seconds / cameras,
        'latency_p50_ms': float(np.percentile(latencies, 50)) if latencies.size else None,
        'latency_p99_ms': float(np.percentile(latencies, 99)) if latencies.size else None,
        'publish_failed': report.get('publish_failed', 0)}


def run_case(receiver, node_proc, kind, size, transport, cameras, rate, args, env):
    """Publish one rate against a running node; return the case's figures."""
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), 'publish', '--size', size,
           '--transport', transport, '--cameras', str(cameras), '--rate', str(rate),
           '--seconds', str(args.seconds), '--warmup', str(args.warmup)]
    receiver.received = []
    cpu_before = process_tree_cpu_seconds(node_proc.pid)
    wall_before = time.monotonic()
    publisher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    receiver.spin_while(publisher)
    cpu_after = process_tree_cpu_seconds(node_proc.pid)
    wall = time.monotonic() - wall_before
    out, err = publisher.communicate()
    lines = [line for line in out.splitlines() if line.startswith('{')]
    report = json.loads(lines[-1]) if lines else {'error': f'publisher failed: {err[-500:]}'}
    case = {'node': kind, 'size': size, 'transport': transport, 'cameras': cameras,
            'rate': 'max' if rate <= 0 else rate}
    if 'error' in report:
        return dict(case, error=report['error'])
    case.update(summarize(receiver.received, report, cameras))
    if cpu_before is not None and cpu_after is not None:
        # Over the publisher's whole life (warm-up included): CPU of the node's process tree.
        case['node_cpu_percent'] = 100.0 * (cpu_after - cpu_before) / wall
    case['gpu_memory_mib'] = gpu_memory_mib(node_proc.pid)
    case['diagnostics'] = dict(receiver.diagnostics)
    return case


def run_node_cases(receiver, kind, size, transport, cameras, args, env, write):
    """Start one node, run every rate against it, stop it."""
    cmd = node_command(kind, transport, cameras, args.providers, args.models)
    node_proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
    names = camera_names(cameras)
    receiver.subscribe(names)
    receiver.diagnostics = {}
    try:
        if not receiver.wait_for_publishers(names, node_proc):
            output = stop(node_proc)
            write({'node': kind, 'size': size, 'transport': transport, 'cameras': cameras,
                   'error': 'the node did not come up (or lacks these topics): '
                            + output[-800:]})
            return
        for rate in args.rates:
            case = run_case(receiver, node_proc, kind, size, transport, cameras, rate, args, env)
            write(case)
            shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in case.items()
                     if k != 'diagnostics'}
            print(json.dumps(shown), flush=True)
    finally:
        stop(node_proc)


def environment_facts(args):
    """Device, versions and date for the report."""
    facts = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
             'machine': f'{platform.node()} {platform.machine()}, {os.cpu_count()} cores',
             'python': platform.python_version(), 'providers': args.providers,
             'models': args.models}
    if shutil.which('nvidia-smi'):
        out = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version',
                              '--format=csv,noheader'], capture_output=True, text=True)
        facts['gpu'] = out.stdout.strip()
    for module in ('onnxruntime', 'cv2', 'numpy', 'nvidia.dali'):
        try:
            facts[module] = __import__(module, fromlist=['_']).__version__
        except ImportError:
            facts[module] = None
    return facts


def markdown(results, facts):
    """Return the results table and the ratio of maximum sustained rates, ours / baseline."""
    lines = ['| node | size | input | cameras | rate | p50 ms | p99 ms | output Hz | drops | '
             'node CPU % | GPU MiB |', '|---|---|---|---|---|---|---|---|---|---|---|']

    def fmt(value, digits=1):
        return '-' if value is None else (f'{value:.{digits}f}' if isinstance(value, float)
                                          else str(value))
    for r in results:
        if 'error' in r:
            lines.append(f"| {r['node']} | {r['size']} | {r['transport']} | {r['cameras']} | "
                         f"{r.get('rate', '-')} | error: {r['error'][:120]} |||||")
            continue
        lines.append(
            f"| {r['node']} | {r['size']} | {r['transport']} | {r['cameras']} | {r['rate']} | "
            f"{fmt(r['latency_p50_ms'])} | {fmt(r['latency_p99_ms'])} | {fmt(r['rate_hz'])} | "
            f"{r['drops']}/{r['published']} | {fmt(r.get('node_cpu_percent'), 0)} | "
            f"{fmt(r.get('gpu_memory_mib'), 0)} |")
    lines.append('')
    lines.append('Maximum sustained rate, perception_node / baseline:')
    for r in results:
        if r.get('node') != 'perception' or r.get('rate') != 'max' or 'error' in r:
            continue
        base = next((b for b in results if b.get('node') == 'baseline' and 'error' not in b
                     and all(b.get(k) == r[k] for k in ('size', 'transport', 'cameras', 'rate'))),
                    None)
        if base and base['rate_hz']:
            lines.append(f"- {r['size']} {r['transport']} x{r['cameras']}: {r['rate_hz']:.1f} / "
                         f"{base['rate_hz']:.1f} Hz = {r['rate_hz'] / base['rate_hz']:.2f}x")
    lines.append('')
    lines.append('Environment: ' + ', '.join(f'{k} {v}' for k, v in facts.items()))
    return '\n'.join(lines)


def plot(results, path):
    """Bar chart: p50 latency at 30 Hz and maximum sustained rate, ours vs baseline."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ok = [r for r in results if 'error' not in r]
    keys = sorted({(r['size'], r['transport'], r['cameras']) for r in ok})
    labels = [f'{s}\n{t}\nx{c}' for s, t, c in keys]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(keys)), 4))
    for axis, (rate, metric, title) in zip(axes, (
            (30, 'latency_p50_ms', 'p50 latency at 30 Hz per camera (ms)'),
            ('max', 'rate_hz', 'maximum sustained output rate (Hz)'))):
        for offset, node in ((-0.2, 'perception'), (0.2, 'baseline')):
            values = []
            for key in keys:
                match = next((r for r in ok if (r['size'], r['transport'], r['cameras']) == key
                              and r['node'] == node and r['rate'] == rate), None)
                values.append(match[metric] if match and match[metric] is not None else 0.0)
            axis.bar(np.arange(len(keys)) + offset, values, width=0.4, label=node)
        axis.set_xticks(np.arange(len(keys)), labels, fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv):
    """Command-line options (the first word 'publish' selects the publisher role)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('role', nargs='?', default='bench', choices=('bench', 'publish'))
    parser.add_argument('--nodes', default='perception,baseline')
    parser.add_argument('--sizes', default='720p,1080p')
    parser.add_argument('--transports', default='raw,compressed')
    parser.add_argument('--cameras', default='1,4')
    parser.add_argument('--rates', default='30,max', help='Hz per camera; max = closed loop '
                        f'with {WINDOW} frames in flight per camera')
    parser.add_argument('--seconds', type=float, default=6.0, help='measured seconds per case')
    parser.add_argument('--warmup', type=float, default=2.0, help='unmeasured seconds first')
    parser.add_argument('--providers', default='cpu', help='ONNX Runtime providers of both '
                        'nodes: cpu or cuda')
    parser.add_argument('--models', default=MODEL, help='perception_node models (comma list); '
                        'the baseline runs the SSD only')
    parser.add_argument('--out', help='folder for bench_node.json/.md/.png')
    parser.add_argument('--size', help=argparse.SUPPRESS)
    parser.add_argument('--transport', help=argparse.SUPPRESS)
    parser.add_argument('--rate', type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == 'publish':
        args.cameras = int(args.cameras)
    else:
        args.rates = [0.0 if r == 'max' else float(r) for r in args.rates.split(',')]
    return args


def main(argv=None):
    """Run every case; write partial JSON after each."""
    args = parse_args(argv)
    if args.role == 'publish':
        return publisher_main(args)
    env = ros_environment()
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'FASTDDS_DEFAULT_PROFILES_FILE',
                                           'RMW_IMPLEMENTATION')})
    out = pathlib.Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    facts = environment_facts(args)
    results = []

    def write(case):
        results.append(case)
        if out:
            (out / 'bench_node.json').write_text(json.dumps(
                {'environment': facts, 'results': results}, indent=1))

    receiver = Receiver()
    try:
        for size in args.sizes.split(','):
            for transport in args.transports.split(','):
                for cameras in (int(c) for c in args.cameras.split(',')):
                    for kind in args.nodes.split(','):
                        run_node_cases(receiver, kind, size, transport, cameras, args, env,
                                       write)
    finally:
        receiver.close()
    text = markdown(results, facts)
    print(text)
    if out:
        (out / 'bench_node.md').write_text(text + '\n')
        plot(results, out / 'bench_node.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
