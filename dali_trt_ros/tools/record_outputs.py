"""record_outputs: record perception outputs to a bag while a bag plays, for evaluate_bag.

For each camera input topic (<ns>/image_raw or <ns>/image_raw/compressed) it records
<ns>/detections, <ns>/segmentation and /diagnostics as they arrive (serialized, not decoded),
and the header of every input frame as <ns>/input_arrival (std_msgs/Header), so evaluate_bag can
measure latency: output arrival minus input arrival, both on this recorder's clock. Stops on
Ctrl-C/SIGTERM or after --duration, after draining what already arrived (and one /diagnostics
message newer than the last frame, so the counters at the end are in); the bag is complete.
"""

import argparse
import signal
import sys
import time

from dali_trt_ros.errors import PerceptionError

DRAIN_LIMIT_S = 5.0


def build_parser():
    """Command-line interface of record_outputs."""
    parser = argparse.ArgumentParser(
        prog='record_outputs', description=__doc__.split('\n\n')[0].split(': ', 1)[1],
        epilog='ROS arguments go after --ros-args. Vehicle equivalent: ros2 bag record -o OUT '
               '/cam_front/detections /cam_front/segmentation /diagnostics')
    parser.add_argument('-o', '--output', required=True, help='rosbag2 folder to create')
    parser.add_argument('--cameras', nargs='+', default=[], metavar='INPUT_TOPIC',
                        help='camera input topics, e.g. /cam_front/image_raw')
    parser.add_argument('--topics', nargs='*', default=[], metavar='TOPIC:TYPE',
                        help='more topics, e.g. /cam_front/overlay:sensor_msgs/msg/Image')
    parser.add_argument('--no-inputs', action='store_true',
                        help='do not record input arrivals (no latency figures)')
    parser.add_argument('--no-masks', action='store_true', help='skip <ns>/segmentation')
    parser.add_argument('--no-diagnostics', action='store_true', help='skip /diagnostics')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after S seconds')
    parser.add_argument('--wait-for-publishers', type=float, default=30.0, metavar='S',
                        help='print "recording" once every output topic has a publisher, '
                             'or after S seconds')
    return parser


def recorded_topics(args):
    """List (topic, type name, kind) to record.

    kind is 'output', 'latched' (transient local), or for an input, the topic its header goes to.
    """
    from dali_trt_ros.bags.io import camera_namespace, output_topic
    from dali_trt_ros.bags.outputs import ARRIVAL
    from dali_trt_ros.bags.typestore import (COMPRESSED_IMAGE, DETECTIONS, DIAGNOSTICS,
                                             IMAGE, LABEL_INFO)
    topics = []
    for camera in args.cameras:
        namespace = camera_namespace(camera)
        topics.append((output_topic(namespace, 'detections'), DETECTIONS, 'output'))
        topics.append((output_topic(namespace, 'label_info'), LABEL_INFO, 'latched'))
        if not args.no_masks:
            topics.append((output_topic(namespace, 'segmentation'), IMAGE, 'output'))
            topics.append((output_topic(namespace, 'segmentation/label_info'), LABEL_INFO,
                           'latched'))
        if not args.no_inputs:
            kind = COMPRESSED_IMAGE if camera.endswith('/compressed') else IMAGE
            topics.append((camera, kind, output_topic(namespace, ARRIVAL)))
    if not args.no_diagnostics:
        topics.append(('/diagnostics', DIAGNOSTICS, 'output'))
    for item in args.topics:
        topic, sep, type_name = item.partition(':')
        if not sep:
            raise ValueError(f'--topics {item!r}: expected TOPIC:package/msg/Type')
        topics.append((topic, type_name, 'output'))
    if not topics:
        raise ValueError('nothing to record: give --cameras and/or --topics')
    return topics


class Recorder:
    """Raw subscriptions that write each message with its arrival time."""

    def __init__(self, node, writer, topics):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        from dali_trt_ros.nodes.message_types import message_class
        self.node, self.writer = node, writer
        self.last_arrival = 0.0
        self.last_diagnostics = None  # None: /diagnostics is not recorded (or never came)
        self.received = 0
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.subscriptions = []
        for topic, type_name, kind in topics:
            callback = self._writer_for(topic, type_name, kind)
            self.subscriptions.append(node.create_subscription(
                message_class(type_name), topic, callback,
                latched if kind == 'latched' else qos, raw=True))
        self.output_topics = [t for t, _, kind in topics if kind in ('output', 'latched')]

    def _writer_for(self, topic, type_name, kind):
        from dali_trt_ros.bags.cdr import header_prefix
        from dali_trt_ros.bags.outputs import HEADER

        def write(data):
            arrival = time.time_ns()
            self.received += 1
            if topic == '/diagnostics':  # periodic: not a sign that frames are still coming
                self.last_diagnostics = time.monotonic()
            else:
                self.last_arrival = time.monotonic()
            if kind in ('output', 'latched'):
                self.writer.write_raw(topic, type_name, arrival, data)
            else:  # an input frame: keep its header only (the frame itself is in the input bag)
                self.writer.write_raw(kind, HEADER, arrival, header_prefix(data))
        return write

    def outputs_have_publishers(self):
        """Every output topic is published by someone."""
        return all(self.node.count_publishers(t) > 0 for t in self.output_topics)


def main(argv=None):
    """Record until Ctrl-C/SIGTERM or --duration; exit 2 on bad arguments."""
    from dali_trt_ros.nodes.message_types import split_ros_args
    argv, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from dali_trt_ros.bags.io import BagWriter
    try:
        topics = recorded_topics(args)
        writer = BagWriter(args.output, storage=args.storage, overwrite=args.overwrite)
    except (ValueError, PerceptionError) as error:
        print(f'record_outputs: {error}', file=sys.stderr)
        return 2
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    # Only what follows --ros-args goes to rcl (it reads FROM:=TO elsewhere as remap rules).
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('record_outputs')
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append('signal'))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append('signal'))
    complete, reason = False, 'record_outputs stopped by an unexpected error'
    try:
        recorder = Recorder(node, writer, topics)
        started = time.monotonic()
        announced = False
        while not stopping:
            rclpy.spin_once(node, timeout_sec=0.05)
            waited = time.monotonic() - started
            if not announced and (recorder.outputs_have_publishers()
                                  or waited > args.wait_for_publishers):
                print(f'record_outputs: recording {len(topics)} topics to {args.output}'
                      + ('' if recorder.outputs_have_publishers()
                         else ' (some topics have no publisher yet)'), flush=True)
                announced = True
            if args.duration and waited >= args.duration:
                break
        # Drain what the graph already sent (still in the DDS queues): until frames stop
        # arriving for 0.5 s and a /diagnostics message newer than the last frame (the counters
        # at the end) is in, at most DRAIN_LIMIT_S.
        drain_start = time.monotonic()
        while time.monotonic() - drain_start < DRAIN_LIMIT_S:
            quiet = time.monotonic() - max(recorder.last_arrival, drain_start) >= 0.5
            counted = (recorder.last_diagnostics is None
                       or recorder.last_diagnostics > recorder.last_arrival)
            if quiet and counted:
                break
            rclpy.spin_once(node, timeout_sec=0.05)
        complete, reason = True, ''
    except ValueError as error:
        print(f'record_outputs: {error}', file=sys.stderr)
        complete, reason = False, str(error)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        writer.finish(complete=complete, reason=reason, extra={'recorded_by': 'record_outputs'})
    if not complete:
        return 2
    for topic, count in writer.counts.items():
        print(f'{topic}: {count} messages')
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
