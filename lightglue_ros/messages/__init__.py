"""sensor_msgs decoded without rclpy, so that the node (rclpy messages) and the bag reader
(rosbags messages) share one decoder."""
