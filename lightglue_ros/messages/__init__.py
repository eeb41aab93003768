"""Messages without rclpy: sensor_msgs decoded (``decode``) and assembled into a frame
(``assembly``), the same way in the node and the bag reader; and what the published pose
covariances mean (``covariance``)."""
