"""Helpers for tests that talk to node processes over DDS (no fixed sleeps anywhere)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')


def start_node(module, *ros_args, name):
    """Start `python -m module` as a separate process with the given --ros-args."""
    cmd = [sys.executable, '-m', module, '--ros-args', '-r', f'__node:={name}', *ros_args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))


def stop_node(proc, timeout=15.0):
    """SIGINT the node like Ctrl-C does; return (exit code, output)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


def spin_until(node, condition, timeout, proc=None):
    """Spin `node` until condition() is true; False on timeout or if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        rclpy.spin_once(node, timeout_sec=0.05)
    return condition()


@contextlib.contextmanager
def ros_tester_node(name):
    """Yield a node (in its own rclpy context) for the test's side of the graph."""
    rclpy.init()
    node = rclpy.create_node(name)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown()


def assert_clean_output(out):
    """Check that a node's output has no traceback, no ERROR line and no abort."""
    assert 'Traceback' not in out, out
    assert 'ERROR' not in out, out
    assert 'terminate called' not in out and 'Aborted' not in out, out
