"""ROS 2 bags without ROS: read camera frames for offline evaluation, write datasets as bags.

Only ``rosbags`` is needed (no rclpy); sqlite3 and MCAP storage both work.
"""
from .convert import MadeBag, make_bag
from .evaluate import default_groundtruth, evaluate_bag
from .reader import Bag, BagReport, CameraFrames, TopicInfo, open_bag
from .writer import BagWriter, topic_names, write_bag

__all__ = ["Bag", "BagReport", "BagWriter", "CameraFrames", "MadeBag", "TopicInfo",
           "default_groundtruth", "evaluate_bag", "make_bag", "open_bag", "topic_names",
           "write_bag"]
