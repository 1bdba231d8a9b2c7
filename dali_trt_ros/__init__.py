"""dali_trt_ros: DALI preprocessing and TensorRT / ONNX Runtime inference for ROS 2 cameras."""
