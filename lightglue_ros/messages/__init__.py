"""Messages without rclpy: sensor_msgs decoded (``decode``, shared by the node and the bag reader)
and what the published pose covariances mean (``covariance``)."""
