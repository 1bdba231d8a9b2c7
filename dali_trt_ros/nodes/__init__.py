"""ROS 2 nodes: thin layers of parameters, topics, QoS, headers and diagnostics."""
