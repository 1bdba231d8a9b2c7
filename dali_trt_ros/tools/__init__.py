"""Console scripts (``ros2 run dali_trt_ros <tool>``)."""
