"""Plain records shared by the datasets, bags, evaluation, the tracker and the node: a stamped
trajectory and one input frame. They sit below every package that passes them around, so that
none of those packages has to import another for its types."""
from .frame_input import FrameInput
from .stamp_ns import NS, seconds, to_ns
from .trajectory import Trajectory, TrajectoryError, associate, associate_stamps

__all__ = ["FrameInput", "NS", "Trajectory", "TrajectoryError", "associate", "associate_stamps",
           "seconds", "to_ns"]
