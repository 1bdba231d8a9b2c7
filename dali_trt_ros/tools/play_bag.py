"""play_bag: publish a bag's messages as recorded, for machines without rosbag2.

Messages go out as their serialized bytes (no decode or re-encode), at the recorded rate times
--rate, or with --lockstep as fast as the perception node keeps up (each camera frame waits for
<camera namespace>/detections with its stamp). --remap FROM:=TO renames topics, --loop repeats,
--clock publishes /clock for use_sim_time. On a vehicle with rosbag2 use `ros2 bag play`.
"""

import argparse
import signal
import sys
import time

from dali_trt_ros.errors import PerceptionError

ACK_WAIT_S = 5.0


def build_parser():
    """Command-line interface of play_bag."""
    parser = argparse.ArgumentParser(
        prog='play_bag', description=__doc__.split('\n\n')[0].split(': ', 1)[1],
        epilog='ROS arguments go after --ros-args. Vehicle equivalent: ros2 bag play BAG '
               '--rate R --remap FROM:=TO [--loop] [--clock 100]')
    parser.add_argument('bag', help='rosbag2 folder (mcap or sqlite3)')
    parser.add_argument('--topics', nargs='+', help='topics to play (default: all)')
    parser.add_argument('--remap', action='append', default=[], metavar='FROM:=TO',
                        help='publish FROM under the name TO (repeatable)')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='factor on the recorded rate (default 1.0)')
    parser.add_argument('--lockstep', action='store_true',
                        help='publish each camera frame once the previous one was answered on '
                             '<namespace>/detections (as fast as the node keeps up)')
    parser.add_argument('--ack-topic', default='detections',
                        help='name under the camera namespace that answers a frame')
    parser.add_argument('--ack-timeout', type=float, default=10.0,
                        help='seconds to wait for an answer in --lockstep (then count it as '
                             'unanswered and go on)')
    parser.add_argument('--loop', action='store_true', help='play again from the start')
    parser.add_argument('--clock', type=float, default=0.0, metavar='HZ',
                        help='publish /clock with the bag time at HZ (0: off)')
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--qos-depth', type=int, default=10)
    parser.add_argument('--wait-for-subscribers', type=float, default=30.0, metavar='S',
                        help='wait up to S seconds until every topic has --subscribers '
                             'subscribers, so the first frames are not lost to discovery '
                             '(0: do not wait)')
    parser.add_argument('--subscribers', type=int, default=1, metavar='N',
                        help='subscribers to wait for per topic, e.g. 2 for the node and '
                             'record_outputs (default 1)')
    return parser


def parse_remaps(items):
    """{'FROM': 'TO'} from FROM:=TO strings; ValueError for malformed ones."""
    remaps = {}
    for item in items:
        source, sep, target = item.partition(':=')
        if not sep or not source.startswith('/') or not target.startswith('/'):
            raise ValueError(f'--remap {item!r}: expected /FROM:=/TO')
        remaps[source] = target
    return remaps


class Player:
    """Publishes a bag's connections through rclpy with raw (serialized) messages."""

    def __init__(self, node, reader, connections, remaps, args):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from dali_trt_ros.bags.io import camera_namespace, output_topic
        from dali_trt_ros.bags.typestore import CAMERA_TYPES
        from dali_trt_ros.nodes.message_types import message_class

        self.node, self.reader, self.connections, self.args = node, reader, connections, args
        qos = QoSProfile(depth=args.qos_depth, reliability=(
            ReliabilityPolicy.RELIABLE if args.qos == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT))
        self.publishers, self.ack_topic_of, self.counts = {}, {}, {}
        self.failures, self.unanswered, self.answered = 0, 0, set()
        for connection in connections:
            name = remaps.get(connection.topic, connection.topic)
            if name not in self.publishers:
                self.publishers[name] = node.create_publisher(
                    message_class(connection.msgtype), name, qos)
                self.counts[name] = 0
            if args.lockstep and connection.msgtype in CAMERA_TYPES:
                self.ack_topic_of[connection.topic] = output_topic(camera_namespace(name),
                                                                   args.ack_topic)
        from vision_msgs.msg import Detection2DArray
        for ack in sorted(set(self.ack_topic_of.values())):
            node.create_subscription(Detection2DArray, ack, self._on_ack,
                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                                     raw=True)
        self.clock_pub = None
        if args.clock > 0:
            from rosgraph_msgs.msg import Clock
            self.clock_pub = node.create_publisher(Clock, '/clock', 10)
        self.remaps = remaps
        self.stopped = False

    def wait_for_acks(self, seconds):
        """Let reliable subscribers acknowledge what was sent before the publishers go away."""
        if self.args.qos != 'reliable':
            return
        from rclpy.duration import Duration
        for publisher in self.publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=seconds))

    def _on_ack(self, data):
        from dali_trt_ros.bags.cdr import header_stamp_ns
        self.answered.add(header_stamp_ns(data))

    def wait_for_subscribers(self, timeout):
        """Spin until each topic has a subscriber (and acks a publisher); False on timeout."""
        import rclpy

        def ready():
            return (all(p.get_subscription_count() >= self.args.subscribers
                        for p in self.publishers.values())
                    and all(self.node.count_publishers(t) > 0
                            for t in set(self.ack_topic_of.values())))
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline and not self.stopped:
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return ready()

    def _publish_clock(self, bag_ns):
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock
        sec, nanosec = divmod(int(bag_ns), 1_000_000_000)
        self.clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))

    def _sleep_until(self, due, bag_start, wall_start):
        """Spin (serving acks) until wall time `due`, ticking /clock meanwhile."""
        import rclpy
        while not self.stopped:
            now = time.monotonic()
            if now >= due:
                return
            step = min(due - now, 1.0 / self.args.clock if self.clock_pub else 0.05)
            rclpy.spin_once(self.node, timeout_sec=step)
            if self.clock_pub:
                self._publish_clock(bag_start + (time.monotonic() - wall_start) *
                                    self.args.rate * 1e9)

    def _publish(self, name, data):
        from rclpy._rclpy_pybind11 import RCLError
        for attempt in range(3):
            try:
                self.publishers[name].publish(bytes(data))
                self.counts[name] += 1
                return
            except RCLError:  # seen at full rate with reliable QoS: retry, then count it
                time.sleep(0.001 * (attempt + 1))
        self.failures += 1

    def play_once(self):
        """Publish every message once; return the number published."""
        import rclpy

        from dali_trt_ros.bags.cdr import header_stamp_ns
        bag_start, wall_start, published = None, time.monotonic(), 0
        self.answered.clear()  # a --loop replays the same stamps: wait for fresh answers
        for connection, timestamp, data in self.reader.messages(self.connections):
            if self.stopped:
                break
            if bag_start is None:
                bag_start = timestamp
            name = self.remaps.get(connection.topic, connection.topic)
            if not self.args.lockstep:
                self._sleep_until(wall_start + (timestamp - bag_start) / 1e9 / self.args.rate,
                                  bag_start, wall_start)
            elif self.clock_pub:
                self._publish_clock(timestamp)
            self._publish(name, data)
            published += 1
            ack = self.ack_topic_of.get(connection.topic)
            if ack is not None:
                stamp = header_stamp_ns(data)
                deadline = time.monotonic() + self.args.ack_timeout
                while (stamp not in self.answered and time.monotonic() < deadline
                       and not self.stopped):
                    rclpy.spin_once(self.node, timeout_sec=0.01)
                if stamp not in self.answered:
                    self.unanswered += 1
        return published


def main(argv=None):
    """Play the bag; exit 0 when done, 2 on a bad bag or argument, 130 on Ctrl-C."""
    from dali_trt_ros.nodes.message_types import split_ros_args
    argv, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from dali_trt_ros.bags.io import BagError, open_reader, select_connections
    try:
        if args.rate <= 0:
            raise ValueError('--rate must be > 0 (use --lockstep to go as fast as the node)')
        remaps = parse_remaps(args.remap)
        reader = open_reader(args.bag)
    except (ValueError, PerceptionError) as error:
        print(f'play_bag: {error}', file=sys.stderr)
        return 2
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    # Only what follows --ros-args goes to rcl (it reads FROM:=TO elsewhere as remap rules).
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('play_bag')
    player = None
    interrupted = False
    try:
        connections = select_connections(reader, args.topics, types=tuple(
            {c.msgtype for c in reader.connections}))
        player = Player(node, reader, connections, remaps, args)

        def stop(*_):
            nonlocal interrupted
            interrupted = player.stopped = True
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if args.wait_for_subscribers > 0 and not player.wait_for_subscribers(
                args.wait_for_subscribers):
            print(f'play_bag: not every topic has a subscriber after {args.wait_for_subscribers}'
                  ' s; playing anyway', file=sys.stderr)
        started = time.monotonic()
        while True:
            player.play_once()
            if not args.loop or player.stopped:
                break
        elapsed = time.monotonic() - started
        player.wait_for_acks(ACK_WAIT_S)
    except (ValueError, PerceptionError, BagError) as error:
        print(f'play_bag: {error}', file=sys.stderr)
        return 2
    finally:
        reader.close()
        node.destroy_node()
        rclpy.try_shutdown()
    total = sum(player.counts.values())
    for name, count in player.counts.items():
        print(f'{name}: {count} messages')
    print(f'published {total} messages in {elapsed:.2f} s ({total / max(elapsed, 1e-9):.1f}/s); '
          f'publish failures {player.failures}'
          + (f'; unanswered frames {player.unanswered}' if args.lockstep else '')
          + (' (interrupted)' if interrupted else ''))
    return 130 if interrupted else 0


if __name__ == '__main__':
    sys.exit(main())
