"""Rosbag replay testing without ROS: make camera bags, process them offline, evaluate outputs.

All bag I/O goes through the ``rosbags`` library (rosbag2 mcap and sqlite3 with metadata.yaml).
The console scripts in ``dali_trt_ros.tools`` (make_bag, process_bag, evaluate_bag, and the ROS
ones: play_bag, record_outputs) are thin layers over these modules.
"""
