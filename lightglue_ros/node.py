"""``python -m lightglue_ros.node``: the tracker node (same as the ``tracker_node`` executable)."""
import sys

from .ros.node import main

if __name__ == "__main__":
    sys.exit(main())
