"""demo: a camera bag replayed through perception_node at 30 Hz, recorded, evaluated, summarized.

The steps, each a separate process as on a vehicle:
  1. make_bag: two cameras (/cam_front raw bgr8, /cam_left JPEG) panning across real photos
  2. perception_node with the SSD detector (OpenImages v4) and the person segmenter
  3. record_outputs records its detections, masks, label_info and /diagnostics
  4. play_bag plays the bag at the recorded rate (30 Hz per camera)
  5. process_bag makes the offline reference (every frame, same pipeline)
  6. evaluate_bag compares the live outputs with it: report, plots, overlay PNGs
It prints frames in/out/dropped, detections per class, mask fractions and latency, and where it
wrote everything. Usable as `ros2 run dali_trt_ros demo` (models: prepare_models).
"""

import argparse
import collections
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np

CAMERAS = ('/cam_front/image_raw:bgr8:640x480', '/cam_left/image_raw/compressed:jpeg:640x480')
MODELS = 'ssd_mobilenetv2_oidv4,selfie_segmentation'


class Step:
    """A tool or node in its own process; its output kept (and echoed when asked)."""

    def __init__(self, name, args, echo=False):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, '-m', *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=dict(os.environ, PYTHONUNBUFFERED='1'))
        self.lines, self.echo = [], echo
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.echo:
                print(f'  [{self.name}] {line}', end='', flush=True)

    def wait_for(self, needle, timeout):
        """Wait until a line contains `needle`; False on timeout or if the process ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return any(needle in line for line in self.lines)

    def finish(self, timeout, interrupt=False):
        """Wait (after SIGINT when `interrupt`); return the exit code (None: killed)."""
        if interrupt and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        self._thread.join(timeout=5)
        return self.proc.returncode

    def output(self):
        """Everything the process printed."""
        return ''.join(self.lines)


def run(name, args, timeout):
    """Run a tool to completion; raise RuntimeError with its output when it fails."""
    step = Step(name, args)
    code = step.finish(timeout)
    if code != 0:
        raise RuntimeError(f'{name} failed (exit {code}):\n{step.output()}')
    return step.output()


def live_replay(bag, recording, models, timeout):
    """Node + recorder + player at the recorded rate; return the player's output."""
    node = Step('perception_node', [
        'dali_trt_ros.nodes.perception_node', '--ros-args', '-r', '__node:=demo_perception',
        '-p', 'cameras:=[cam_front, cam_left]', '-p', 'cam_left.input_transport:=compressed',
        '-p', 'qos_overrides./cam_front/image_raw.subscription.reliability:=reliable',
        '-p', 'qos_overrides./cam_left/image_raw/compressed.subscription.reliability:=reliable',
        '-p', 'diagnostics_period_s:=0.5',
        '-p', f'models:=[{", ".join(models)}]'])
    recorder = player = None
    try:
        if not node.wait_for('listening on /cam_left', timeout):
            raise RuntimeError(f'perception_node did not start:\n{node.output()}')
        recorder = Step('record_outputs', [
            'dali_trt_ros.tools.record_outputs', '-o', recording, '--cameras',
            '/cam_front/image_raw', '/cam_left/image_raw/compressed'])
        if not recorder.wait_for('recording', timeout):
            raise RuntimeError(f'record_outputs did not start:\n{recorder.output()}')
        # Two subscribers per camera topic: the node and the recorder's arrival log.
        player = Step('play_bag', ['dali_trt_ros.tools.play_bag', bag, '--subscribers', '2'],
                      echo=True)
        if player.finish(timeout + 600) != 0:
            raise RuntimeError(f'play_bag failed:\n{player.output()}')
        if recorder.finish(60, interrupt=True) != 0:
            raise RuntimeError(f'record_outputs failed:\n{recorder.output()}')
        return player.output()
    finally:
        for step in (player, recorder):
            if step is not None and step.proc.poll() is None:
                step.finish(10, interrupt=True)
        node.finish(30, interrupt=True)


def summarize(recording, metrics, report_dir, bag):
    """Print what the node did, read from the recording and the evaluation."""
    from dali_trt_ros.bags.outputs import read_output_bag
    live = read_output_bag(recording)
    print('\n=== summary ===')
    for name, values in sorted(live.diagnostics.items()):
        if 'frames_received' in values:
            print(f'{name}: frames in {values["frames_received"]}, out '
                  f'{values.get("frames_processed", "?")}, dropped '
                  f'{values.get("frames_dropped", "?")}, failed '
                  f'{values.get("frames_failed", "?")}, lost in transport '
                  f'{values.get("frames_lost_in_transport", "?")}')
    per_class = collections.Counter()
    fractions = collections.defaultdict(list)
    for (camera, _), frame in live.frames.items():
        for row in frame.detections or []:
            per_class[live.label(row[0])] += 1
        if frame.mask is not None:
            fractions[camera].append(float(np.count_nonzero(frame.mask)) / frame.mask.size)
    print('detections per class: ' + ', '.join(f'{k} {v}' for k, v in per_class.most_common()))
    for camera, values in sorted(fractions.items()):
        print(f'{camera} person mask: mean {100 * np.mean(values):.1f} % of the frame '
              f'(min {100 * min(values):.1f}, max {100 * max(values):.1f}) over {len(values)} '
              'masks')
    latency = metrics.get('latency_ms')
    if latency:
        print(f'latency (input -> detections, at the recorder): p50 {latency["p50"]:.1f} ms, '
              f'p99 {latency["p99"]:.1f} ms over {latency["count"]} frames')
    mask = metrics['mask_iou']
    print(f'live vs offline: {metrics["frames_covered"]}/{metrics["frames_golden"]} frames '
          f'processed live ({100 * metrics["coverage"]:.0f} %), F1 {metrics["f1"]:.3f}, mask '
          f'IoU {"-" if mask is None else f"{mask:.4f}"}')
    print(f'\ninput bag:        {bag}')
    print(f'live output bag:  {recording}')
    print(f'report:           {report_dir / "report.md"}')
    print(f'latency plot:     {report_dir / "latency_timeline.png"}  (and latency_hist.png)')
    for overlay in sorted(report_dir.glob('overlay_*.png')):
        print(f'overlay:          {overlay}')


def main(argv=None):
    """Run the demo; exit non-zero if any step failed or live and offline outputs disagree."""
    parser = argparse.ArgumentParser(prog='demo', description=__doc__.splitlines()[0]
                                     .split(': ', 1)[1])
    parser.add_argument('--output-dir', default='demo_output',
                        help='folder for the bags, report and images (replaced each run)')
    parser.add_argument('--seconds-per-photo', type=float, default=1.5,
                        help='clip length per photo in the bag (default 1.5)')
    parser.add_argument('--models', default=MODELS, help='comma list of model descriptions')
    parser.add_argument('--timeout', type=float, default=90.0,
                        help='seconds to wait for the node and the recorder to start')
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(',') if m]
    folder = pathlib.Path(args.output_dir).resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    bag, recording = folder / 'drive', folder / 'drive_live'
    offline, report_dir = folder / 'drive_offline', folder / 'report'
    started = time.monotonic()
    try:
        print(f'1/5 make_bag: 2 cameras at 30 Hz, {args.seconds_per_photo} s per photo')
        run('make_bag', ['dali_trt_ros.tools.make_bag', bag, '--seconds-per-photo',
                         args.seconds_per_photo, *sum((['--camera', c] for c in CAMERAS), [])],
            120)
        print('2/5 perception_node + record_outputs + play_bag at the recorded rate')
        live_replay(bag, recording, models, args.timeout)
        print('3/5 process_bag: the offline reference, every frame')
        print('  ' + run('process_bag', ['dali_trt_ros.tools.process_bag', bag, '-o', offline,
                                         '--no-progress', '--models', ','.join(models)],
                         900).strip())
        print('4/5 evaluate_bag: live outputs vs the offline reference')
        evaluation = Step('evaluate_bag', [
            'dali_trt_ros.tools.evaluate_bag', recording, offline, '--report-dir', report_dir,
            '--inputs', bag, '--overlays', '4', '--min-coverage', 'off'])
        code = evaluation.finish(300)
        print('  ' + evaluation.output().strip().replace('\n', '\n  '))
        metrics = json.loads((report_dir / 'metrics.json').read_text())
        print('5/5 summary')
        summarize(recording, metrics, report_dir, bag)
    except RuntimeError as error:
        print(f'demo: {error}', file=sys.stderr)
        return 1
    print(f'\ndemo finished in {time.monotonic() - started:.0f} s')
    return 0 if code == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
