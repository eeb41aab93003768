"""The one configuration object of lightglue_ros.

Every tunable value is declared once here, with its description, range and whether it may change at
run time. The ROS node declares its parameters from it, ``config/tracker.yaml`` is checked against it,
and the CLI builds its flags from it, so the three can never disagree.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

EXTRACTORS = ("aliked", "superpoint", "disk", "xfeat")  # the networks
# What ``extractor: auto`` means: real time where it matters most. XFeat is built for a CPU
# (about 10x faster than ALIKED there, see BENCHMARKS.md); on a GPU ALIKED is fast enough and more
# accurate.
AUTO_EXTRACTOR = {"cpu": "xfeat", "cuda": "aliked"}
# What ``max_keypoints: 0`` (auto) means: the budget that holds the camera rate with the accuracy
# kept. On a CPU the matcher's cost grows with the keypoints (XFeat + LighterGlue, two cores,
# 640x480, two-stage: 768 is 14% slower than 512 and 19% faster than 1024 in one interleaved run);
# 768 keeps KITTI 07's accuracy near 1024's (ATE 0.345 against 0.325 m, rotation 0.041 against
# 0.039 deg) where 512 loses it (0.502 m, 0.051 deg; BENCHMARKS.md). On CUDA 2048, the official
# LightGlue budget.
AUTO_MAX_KEYPOINTS = {"cpu": 768, "cuda": 2048}
# What ``ransac_threshold_px: -1`` means per extractor. XFeat's keypoints are whole pixels: on
# the synthetic sequence its matches' median Sampson error against the true geometry is 0.46 px
# (ALIKED's 0.06), so 0.5 px rejects about half of its correct matches.
RANSAC_THRESHOLD_PX = {"aliked": 0.5, "superpoint": 0.5, "disk": 0.5, "xfeat": 0.75}
ALIKED_MODELS = ("aliked-n16", "aliked-n16rot", "aliked-n32", "aliked-t16")
BACKENDS = ("torch", "onnxruntime", "tensorrt")
# What ``backend: auto`` means per device: the fastest backend with the official outputs kept.
# On a CPU ONNX Runtime runs both stages faster than PyTorch (XFeat 59 against 72 ms per
# extraction at 768 keypoints, ALIKED 1.48 against 1.00 FPS; BENCHMARKS.md) when it is
# installed; on CUDA PyTorch, whose FP16 and CUDA graphs ONNX Runtime's FP32 graphs lack.
AUTO_BACKEND = {"cpu": "onnxruntime", "cuda": "torch"}
QOS_MODES = ("auto", "sensor_data", "reliable", "system_default")
PRECISIONS = ("fp32", "fp16")
RECTIFICATION_MODES = ("auto", "rectified", "raw")  # not true/false: ROS reads those as bool
BUNDLE_ADJUSTERS = ("background", "inline", "off")


class ConfigError(ValueError):
    """A parameter value outside its declared type, range or choices."""


def _p(default: Any, description: str, *, group: str, lo: float | None = None,
       hi: float | None = None, choices: tuple = (), runtime: bool = False) -> Any:
    meta = {"description": description, "group": group, "range": (lo, hi), "choices": choices,
            "runtime": runtime}
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """All parameters. Groups: features, matcher, inference, tracking, ros."""

    # --- features -------------------------------------------------------------------------------
    extractor: str = _p("auto", "Feature extractor network; auto: xfeat on a CPU device (real "
                        "time), aliked on CUDA.", group="features",
                        choices=EXTRACTORS + ("auto",))
    aliked_model: str = _p("aliked-n16", "ALIKED variant (only used by the aliked extractor).",
                           group="features", choices=ALIKED_MODELS)
    max_keypoints: int = _p(0, "Maximum keypoints per image (top scores kept); 0: auto, the "
                            "budget that holds the rate on the device (768 on a CPU, 2048 on "
                            "CUDA).", group="features", lo=0, hi=8192)
    detection_threshold: float = _p(-1.0, "Keypoint score threshold; -1 uses the extractor's "
                                    "official default (aliked 0.2, superpoint 0.0005, disk 0.0, "
                                    "xfeat 0.05).", group="features", lo=-1.0, hi=1.0)
    nms_radius: int = _p(-1, "Non-maximum suppression radius in pixels; -1 uses the extractor's "
                         "default (aliked 2, superpoint 4, disk and xfeat window 5).",
                         group="features", lo=-1, hi=16)
    resize: int = _p(0, "Resize images so the longer side has this many pixels before extraction "
                     "(keypoints are returned in original pixels); 0 keeps the input size.",
                     group="features", lo=0, hi=4096)
    extractor_weights: str = _p("", "Explicit path to the extractor checkpoint; empty resolves it "
                                "from the weights cache and installed packages.", group="features")
    # --- matcher --------------------------------------------------------------------------------
    depth_confidence: float = _p(0.95, "LightGlue early-exit confidence (adaptive depth); -1 runs "
                                 "all layers (9; xfeat's LighterGlue 6).", group="matcher",
                                 lo=-1.0, hi=1.0, runtime=True)
    width_confidence: float = _p(0.99, "LightGlue point-pruning confidence (adaptive width); -1 "
                                 "disables pruning.", group="matcher", lo=-1.0, hi=1.0, runtime=True)
    filter_threshold: float = _p(0.1, "Minimum match score to keep a match.", group="matcher",
                                 lo=0.0, hi=1.0, runtime=True)
    matcher_weights: str = _p("", "Explicit path to the LightGlue checkpoint; empty resolves it.",
                              group="matcher")
    # --- inference ------------------------------------------------------------------------------
    backend: str = _p("auto", "Inference backend; auto: onnxruntime on a CPU device when it is "
                      "installed (the faster one there), torch on CUDA or with precision fp16.",
                      group="inference", choices=BACKENDS + ("auto",))
    device: str = _p("cpu", "Torch device: cpu, cuda or cuda:N.", group="inference")
    precision: str = _p("fp32", "fp16 uses autocast (torch on CUDA) or FP16 engines (TensorRT).",
                        group="inference", choices=PRECISIONS)
    weights_dir: str = _p("", "Local weights cache directory; empty uses "
                          "$LIGHTGLUE_ROS_WEIGHTS or ~/.cache/lightglue_ros/weights.",
                          group="inference")
    engine_dir: str = _p("", "Directory for exported ONNX graphs and TensorRT engines; empty uses "
                         "the package's engines/ folder.", group="inference")
    cuda_graphs: bool = _p(False, "torch backend on CUDA: replay CUDA graphs of the extractor "
                           "network (per image size) and of LightGlue's layers over keypoint "
                           "sets padded to static lengths (point pruning is then off, as in the "
                           "official compiled mode).", group="inference")
    engine_keypoints: str = _p("1,1024,4096", "TensorRT: LightGlue keypoint-count profile "
                               "'MIN,OPT,MAX' of the engines (the max is raised to "
                               "max_keypoints); build-engines and the node use the same.",
                               group="inference")
    engine_image_size: str = _p("640x480", "TensorRT: optimal image size 'WIDTHxHEIGHT' of the "
                                "extractor engines.", group="inference")
    engine_min_image_size: str = _p("32x32", "TensorRT: smallest image size 'WIDTHxHEIGHT'.",
                                    group="inference")
    engine_max_image_size: str = _p("1920x1088", "TensorRT: largest image size 'WIDTHxHEIGHT'.",
                                    group="inference")
    cpu_threads: int = _p(0, "CPU threads of each inference stage (torch intra-op threads of the "
                          "thread that runs it; ONNX Runtime sessions' intra_op_num_threads); "
                          "0: half the cores, at least 1, so that the tracker's two stages "
                          "(extraction, matching) run at once without fighting over the cores.",
                          group="inference", lo=0, hi=256)

    # --- tracking -------------------------------------------------------------------------------
    min_inliers: int = _p(15, "Fewer pose inliers than this and tracking is lost.",
                          group="tracking", lo=6, hi=10000, runtime=True)
    good_inliers: int = _p(60, "At least this many inliers for status ok (between min_inliers "
                           "and this: weak).", group="tracking", lo=6, hi=10000, runtime=True)
    ransac_threshold_px: float = _p(-1.0, "Robust estimator inlier threshold in pixels; -1 "
                                    "uses the extractor's (0.5; xfeat 0.75: its keypoints are "
                                    "whole pixels).", group="tracking", lo=-1.0, hi=20.0,
                                    runtime=True)
    keyframe_min_inliers: int = _p(150, "Make a new keyframe when fewer inliers than this remain "
                                   "against the current one.", group="tracking", lo=6, hi=10000,
                                   runtime=True)
    keyframe_min_ratio: float = _p(0.5, "Make a new keyframe when the inliers fall below this "
                                   "share of the keyframe's first match count.",
                                   group="tracking", lo=0.0, hi=1.0, runtime=True)
    keyframe_flow_px: float = _p(25.0, "Make a new keyframe when the median keypoint motion since "
                                 "the keyframe exceeds this many pixels.", group="tracking",
                                 lo=1.0, hi=1000.0, runtime=True)
    keyframe_tracked_share: float = _p(0.0, "Monocular map: make a new keyframe when the frame "
                                       "tracks less than this share of the keyframe's map "
                                       "points and their parallax has reached "
                                       "keyframe_parallax_deg, or when fewer than good_inliers "
                                       "remain (instead of the inlier and flow rules); 0: off.",
                                       group="tracking", lo=0.0, hi=1.0, runtime=True)
    keyframe_parallax_deg: float = _p(1.0, "Monocular map, with keyframe_tracked_share: the "
                                      "median angle (degrees) the tracked points make between "
                                      "the keyframe and the frame before a new keyframe "
                                      "triangulates points, so that they get a depth.",
                                      group="tracking", lo=0.0, hi=30.0, runtime=True)
    mono_init_flow_px: float = _p(20.0, "Monocular start: median motion (pixels) the first "
                                  "keyframe pair needs before triangulating; it sets the unit of "
                                  "the up-to-scale trajectory.", group="tracking", lo=1.0,
                                  hi=1000.0, runtime=True)
    mono_two_view_flow_px: float = _p(10.0, "Monocular: from this median motion (pixels) on, the "
                                      "rotation since the previous frame comes from their "
                                      "essential matrix (the map's points give the translation "
                                      "its length).", group="tracking", lo=0.0, hi=1000.0,
                                      runtime=True)
    map_window: int = _p(8, "Keyframes of the local map adjusted together (windowed bundle "
                         "adjustment at each new keyframe); their points are what later frames "
                         "are located against.", group="tracking", lo=2, hi=50, runtime=True)
    keypoint_sigma_px: float = _p(1.0, "Keypoint position noise (pixels, 1 sigma) the bundle "
                                  "adjustment weights observations by.", group="tracking",
                                  lo=0.05, hi=10.0, runtime=True)
    depth_noise: float = _p(0.0015, "Depth sensor noise coefficient a: sigma_z = a z^2 (metres; "
                            "structured light about 0.0015-0.003); 0 leaves depth out of the "
                            "bundle adjustment.", group="tracking", lo=0.0, hi=1.0,
                            runtime=True)
    stereo_offset_prior_px: float = _p(0.0, "Stereo: sigma (pixels) of the prior at 0 of the "
                                       "pair's disparity offset (a right principal point a "
                                       "little off in the rectified calibration), which the "
                                       "local map estimates from how its near and far points' "
                                       "stereo depths agree with the motion; 0: not estimated.",
                                       group="tracking", lo=0.0, hi=10.0, runtime=True)
    common_shift_px: float = _p(0.0, "Keypoint error (pixels, 1 sigma) shared by every "
                                "keypoint of a frame (timing, rolling shutter, calibration), "
                                "which averaging over inliers does not shrink: counted in each "
                                "pose's covariance as a turn about the camera's x and y axes; "
                                "0: keypoint errors taken as independent.", group="tracking",
                                lo=0.0, hi=10.0, runtime=True)
    publish_adjusted_keyframes: bool = _p(False, "A keyframe's pose is published after the "
                                          "window adjustment it starts (which waits for it: "
                                          "more latency at each keyframe), not before: the "
                                          "odometry then has the adjusted pose.",
                                          group="tracking", runtime=True)
    bundle_adjustment: str = _p("background", "Where the local map's windowed bundle "
                                "adjustment runs: background (a worker process: it solves while "
                                "the next frame is matched, and applies once that match is "
                                "done), inline (the same result, computed in the tracking "
                                "thread), off (no adjustment: fastest, least accurate).",
                                group="tracking", choices=BUNDLE_ADJUSTERS)
    reset_to_origin: bool = _p(False, "A reset (the ~/reset service, a stamp going back) starts "
                               "again at the odom origin; false keeps the last pose, so that "
                               "odom stays continuous (REP 105).", group="tracking",
                               runtime=True)
    match_previous: bool = _p(True, "When the keyframe match fails, try the previous frame too.",
                              group="tracking", runtime=True)
    track_by_projection: bool = _p(False, "Locate frames between keyframes without a match: "
                                   "the keyframe's map points projected at the constant-velocity "
                                   "pose and found again by descriptor near there, then PnP; "
                                   "LightGlue still matches keyframes, the start, and any frame "
                                   "the projection places on too few inliers.", group="tracking",
                                   runtime=True)
    track_by_flow: bool = _p(False, "Locate frames between keyframes without extracting "
                             "features: the keyframe's map points followed from the last frame "
                             "by Lucas-Kanade optical flow, then PnP. Extracted and matched as "
                             "before: the start, keyframes (and a frame the keyframe policy "
                             "will likely ask for, its figures carried on one frame), the frame "
                             "after flow_max_frames placed by flow, and any frame the flow "
                             "places on too few inliers.", group="tracking", runtime=True)
    flow_max_frames: int = _p(2, "track_by_flow: frames placed by flow in a row before one is "
                              "extracted and matched again.", group="tracking", lo=1, hi=100,
                              runtime=True)
    keyframe_lag_frames: int = _p(0, "track_by_flow: 0 extracts and matches a keyframe in line, "
                                  "holding up the frames after it; N > 0 places the frame the "
                                  "keyframe policy asks for by flow, extracts and matches it on "
                                  "a worker thread while the next frames are placed by flow, "
                                  "and makes the Nth of them the keyframe (its keypoints "
                                  "followed there by flow, its match carried with them); live, "
                                  "the first after the worker is done; sooner where the flow "
                                  "loses the old keyframe.",
                                  group="tracking", lo=0, hi=10, runtime=True)
    projection_radius_px: float = _p(15.0, "track_by_projection: search radius (pixels) around "
                                     "each projected map point.", group="tracking", lo=1.0,
                                     hi=200.0, runtime=True)
    depth_min_m: float = _p(0.1, "Depth values below this (metres) are invalid.",
                            group="tracking", lo=0.0, hi=100.0, runtime=True)
    depth_max_m: float = _p(20.0, "Depth values above this (metres) are invalid.",
                            group="tracking", lo=0.01, hi=1000.0, runtime=True)
    slam: bool = _p(False, "SLAM above the tracker: relocalization after a loss, loop closure "
                    "on a pose graph, map -> odom (lightglue_ros.slam); false: the front end "
                    "alone (odometry only).", group="tracking")
    map_path: str = _p("", "SLAM map file (.npz): loaded at start to localize in, when it "
                       "exists; where a saved map goes. Empty: no map file.", group="tracking")

    # --- ros --------------------------------------------------------------------------------------
    input_qos: str = _p("auto", "Input QoS of image and depth: auto matches the publishers on the "
                        "topic, as ros2 topic echo does (reliable keep last input_depth when "
                        "every publisher is reliable or none is there yet, best effort when one "
                        "is best effort; re-evaluated when publishers come and go); "
                        "sensor_data (best effort), reliable or system_default are fixed. "
                        "camera_info always matches its publishers.", group="ros",
                        choices=QOS_MODES)
    input_depth: int = _p(1, "History depth of the input subscriptions (frames are processed "
                          "latest-first; older ones are dropped and counted).", group="ros",
                          lo=1, hi=100)
    use_compressed: bool = _p(False, "Subscribe image/compressed (sensor_msgs/CompressedImage) "
                              "instead of image.", group="ros")
    use_depth: bool = _p(False, "Subscribe depth (16UC1 mm or 32FC1 m, registered to the image) "
                         "and pair it with the image by stamp.", group="ros")
    depth_sync_s: float = _p(0.02, "Largest stamp difference (s) between an image and its depth.",
                             group="ros", lo=0.0, hi=1.0, runtime=True)
    depth_wait_s: float = _p(0.1, "How long (s) a frame waits for its depth image.",
                             group="ros", lo=0.0, hi=1.0, runtime=True)
    use_compressed_depth: bool = _p(False, "Subscribe depth/compressedDepth (image_transport's "
                                    "compressedDepth: a PNG of 16UC1 mm or 32FC1 m) instead of "
                                    "depth; with use_depth.", group="ros")
    use_stereo: bool = _p(False, "Subscribe a stereo pair: the left eye on image and "
                          "camera_info, the right eye on right/image and right/camera_info. "
                          "The right image is paired with the left by header stamp "
                          "(stereo_sync_s), the pair rectified (a raw pair with camera_info's R "
                          "and P) and the baseline taken from the right camera_info's P (Tx = "
                          "-fx * baseline); a pair whose baseline is not positive (left and "
                          "right swapped) is refused.", group="ros")
    stereo_sync_s: float = _p(0.0, "Largest stamp difference (s) between a left image and its "
                              "right one; 0 pairs equal stamps only (drivers that trigger both "
                              "eyes together). Raise it for drivers that stamp the eyes apart.",
                              group="ros", lo=0.0, hi=1.0, runtime=True)
    stereo_wait_s: float = _p(0.1, "How long (s) a left image waits for its right one before it "
                              "is tracked without it.", group="ros", lo=0.0, hi=1.0,
                              runtime=True)
    image_rectification: str = _p("auto", "What the image topics carry: rectified images take "
                                  "camera_info's P (its left 3x3) without distortion as the "
                                  "camera (undistorting them again with the raw D would bend "
                                  "them); raw images the raw K and D (a stereo pair is then "
                                  "rectified here with R and P). auto: rectified when the "
                                  "topic's name holds 'rect' (image_rect, image_rect_color, "
                                  "RealSense image_rect_raw).", group="ros",
                                  choices=RECTIFICATION_MODES)
    odom_frame: str = _p("", "Frame of the odometry (REP 105): the pose of base_frame, or of "
                         "the camera without base_frame, at the first tracked frame. Empty: "
                         "'odom' with base_frame; without it '<camera frame>_odom', which has "
                         "the camera's optical axes and is deliberately not 'odom' (an EKF "
                         "whose world frame is odom would take the camera's pose for the "
                         "robot's).", group="ros")
    map_frame: str = _p("map", "Frame of the SLAM map (REP 105), with slam: map -> odom_frame "
                        "on /tf (identity until a loop closure or relocalization corrects "
                        "odom; started with map_path, none before the first relocalization) "
                        "and ~/path in it.", group="ros")
    camera_frame: str = _p("", "Camera optical frame; empty uses the image header's frame_id.",
                           group="ros")
    base_frame: str = _p("", "Robot base frame (REP 105, e.g. base_link): odometry and TF give "
                         "odom -> base_frame, using the camera's pose in it (base_to_camera, "
                         "or TF). Empty: odometry of the camera optical frame.", group="ros")
    base_to_camera: str = _p("", "Pose of the camera optical frame in base_frame, 'x y z qx qy qz "
                             "qw' (metres, unit quaternion; the transform base_frame -> camera "
                             "frame, as tf2's static_transform_publisher takes it). Empty: looked "
                             "up in TF (needs tf2_ros, a ROS 2 install).", group="ros")
    publish_tf: bool = _p(False, "Broadcast odom -> base_frame (or odom -> camera frame without "
                          "base_frame) on /tf; never for a frame that already has a parent in "
                          "TF (needs tf2_ros). Off by default: on a robot, odom -> base_link "
                          "usually belongs to wheel odometry or the state estimator that fuses "
                          "~/odometry.", group="ros", runtime=True)
    diagnostics_period_s: float = _p(1.0, "Period (s) of the /diagnostics status.", group="ros",
                                     lo=0.1, hi=60.0)
    stale_after_s: float = _p(2.0, "Diagnostics warn when no frame arrived for this long (s).",
                              group="ros", lo=0.1, hi=3600.0, runtime=True)

    @classmethod
    def params(cls) -> tuple[dataclasses.Field, ...]:
        """The declared parameters, in declaration order."""
        return fields(cls)

    @classmethod
    def param(cls, name: str) -> dataclasses.Field:
        for f in fields(cls):
            if f.name == name:
                return f
        raise ConfigError(f"unknown parameter '{name}'")

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with some parameters changed."""
        new = dataclasses.replace(self, **{k: coerce(k, v) for k, v in changes.items()})
        new.validate()
        return new

    def resolved(self) -> "Config":
        """The concrete configuration the networks are built from: ``extractor: auto`` becomes the
        network it stands for on this device, ``max_keypoints: 0`` its budget there,
        ``cpu_threads: 0`` a thread count and
        ``ransac_threshold_px: -1`` the extractor's threshold. Resolved once
        (Pipeline does it), so weights, exports, logs and figures all name the same network."""
        changes: dict[str, Any] = {}
        if self.extractor == "auto":
            changes["extractor"] = AUTO_EXTRACTOR[self.device.partition(":")[0]]
        if self.max_keypoints == 0:
            changes["max_keypoints"] = AUTO_MAX_KEYPOINTS[self.device.partition(":")[0]]
        if self.backend == "auto":
            changes["backend"] = auto_backend(self.device, self.precision)
        if self.cpu_threads == 0:
            changes["cpu_threads"] = stage_threads()
        if self.ransac_threshold_px < 0:
            changes["ransac_threshold_px"] = RANSAC_THRESHOLD_PX[
                changes.get("extractor", self.extractor)]
        return self.replace(**changes) if changes else self

    @property
    def model(self) -> str:
        """What runs, in words, for logs and diagnostics, e.g. 'xfeat (auto) + LighterGlue on
        cpu, onnxruntime (auto), 768 keypoints (auto), 1 thread(s) per stage'; on the config as
        given, so that 'auto' shows."""
        concrete = self.resolved()
        network = concrete.extractor + (" (auto)" if self.extractor == "auto" else "")
        backend = concrete.backend + (" (auto)" if self.backend == "auto" else "")
        matcher = "LighterGlue" if concrete.extractor == "xfeat" else "LightGlue"
        budget = f"{concrete.max_keypoints} keypoints" + (" (auto)" if self.max_keypoints == 0
                                                          else "")
        return (f"{network} + {matcher} on {self.device}, {backend}, {budget}, "
                f"{concrete.cpu_threads} thread(s) per stage")

    def validate(self) -> None:
        for f in fields(self):
            check(f.name, getattr(self, f.name))
        if self.good_inliers < self.min_inliers:
            raise ConfigError(f"good_inliers ({self.good_inliers}) must be >= min_inliers "
                              f"({self.min_inliers})")
        if self.depth_max_m <= self.depth_min_m:
            raise ConfigError(f"depth_max_m ({self.depth_max_m}) must exceed depth_min_m "
                              f"({self.depth_min_m})")
        sizes = [parse_size(self.engine_min_image_size), parse_size(self.engine_image_size),
                 parse_size(self.engine_max_image_size)]
        if any(sorted(d) != d for d in ([s[0] for s in sizes], [s[1] for s in sizes])):
            raise ConfigError("engine image sizes must satisfy engine_min_image_size <= "
                              "engine_image_size <= engine_max_image_size in width and height")
        if self.base_frame and self.base_frame in (self.odom_frame or "odom", self.camera_frame):
            raise ConfigError(f"base_frame '{self.base_frame}' must differ from odom_frame and "
                              "camera_frame")
        if not self.map_frame or self.map_frame in (self.odom_frame or "odom", self.base_frame,
                                                    self.camera_frame):
            raise ConfigError(f"map_frame '{self.map_frame}' must be set and differ from "
                              "odom_frame, base_frame and camera_frame")

    def to_dict(self, group: str | None = None) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if group is None or f.metadata["group"] == group}

    def changed(self) -> dict[str, Any]:
        """The parameters that differ from the defaults: what a run set."""
        default = Config().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: "Config | None" = None) -> "Config":
        """Build from a flat mapping (YAML ros__parameters, CLI namespace), rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
        return (base or cls()).replace(**dict(values))


def auto_backend(device: str, precision: str) -> str:
    """``backend: auto`` on this device: AUTO_BACKEND's choice, or torch where ONNX Runtime cannot
    run the configuration (FP16) or is not installed (it is an optional dependency of a ROS
    install)."""
    chosen = AUTO_BACKEND[device.partition(":")[0]]
    if chosen == "onnxruntime" and (precision == "fp16"
                                    or importlib.util.find_spec("onnxruntime") is None):
        return "torch"
    return chosen


def stage_threads() -> int:
    """Threads per stage by default: the cores this process may use, shared by the two stages."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // 2)


def coerce(name: str, value: Any) -> Any:
    """Convert a value to the parameter's declared type (ints accepted for floats, not the reverse)."""
    f = Config.param(name)
    kind = type(f.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"parameter '{name}' must be {kind.__name__}, got {value!r}")
    return value


def check(name: str, value: Any) -> None:
    """Raise ConfigError with the reason when a value is outside the declared range or choices."""
    meta = Config.param(name).metadata
    lo, hi = meta["range"]
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"parameter '{name}' must be one of {', '.join(meta['choices'])}; "
                          f"got {value!r}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(f"parameter '{name}' must be in [{lo}, {hi}]; got {value!r}")
    if name == "ransac_threshold_px" and value != -1 and value < 0.1:
        raise ConfigError(f"parameter '{name}' must be -1 (the extractor's) or in [0.1, {hi}]; "
                          f"got {value!r}")
    if name in ("depth_confidence", "width_confidence") and value != -1 and value <= 0:
        raise ConfigError(f"parameter '{name}' must be -1 (off) or in (0, 1]; got {value!r}")
    if name == "device" and not (value in ("cpu", "cuda") or value.startswith("cuda:")):
        raise ConfigError(f"parameter 'device' must be cpu, cuda or cuda:N; got {value!r}")
    if name == "engine_keypoints":
        parse_range(value)
    elif name.startswith("engine_") and name.endswith("image_size"):
        parse_size(value, name)
    elif name == "base_to_camera" and value:
        parse_pose(value)


def parse_range(text: str, name: str = "engine_keypoints") -> tuple[int, int, int]:
    """'MIN,OPT,MAX' with 1 <= MIN <= OPT <= MAX."""
    try:
        lo, opt, hi = (int(p) for p in text.split(","))
    except ValueError:
        raise ConfigError(f"parameter '{name}' must be 'MIN,OPT,MAX'; got {text!r}") from None
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(f"parameter '{name}' must satisfy 1 <= MIN <= OPT <= MAX; got {text!r}")
    return lo, opt, hi


def parse_size(text: str, name: str = "engine_image_size") -> tuple[int, int]:
    """'WIDTHxHEIGHT', both positive."""
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"parameter '{name}' must be 'WIDTHxHEIGHT'; got {text!r}") from None
    if w < 1 or h < 1:
        raise ConfigError(f"parameter '{name}' must be a positive size; got {text!r}")
    return w, h


def parse_pose(text: str, name: str = "base_to_camera") -> tuple[float, ...]:
    """'x y z qx qy qz qw' (commas allowed) -> 7 floats, the quaternion normalised."""
    try:
        values = [float(p) for p in text.replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) != 7 or not all(abs(v) < float("inf") for v in values):
        raise ConfigError(f"parameter '{name}' must be 'x y z qx qy qz qw' (7 numbers); "
                          f"got {text!r}")
    norm = sum(v * v for v in values[3:]) ** 0.5
    if abs(norm - 1.0) > 1e-3:
        raise ConfigError(f"parameter '{name}': the quaternion must have unit norm (got "
                          f"{norm:.6g})")
    return tuple(values[:3]) + tuple(v / norm for v in values[3:])


def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str],
                  names: Iterable[str] = ()) -> None:
    """Add one ``--flag`` per parameter of the given groups (and of the named parameters), with
    the declared help and default."""
    wanted, named = set(groups), set(names)
    for f in fields(Config):
        meta = f.metadata
        if meta["group"] not in wanted and f.name not in named:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        kwargs: dict[str, Any] = {"dest": f.name, "default": None,
                                  "help": f"{meta['description']} (default: {f.default!r})"}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
        if meta["choices"]:
            kwargs["choices"] = meta["choices"]
        parser.add_argument(flag, **kwargs)


def from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """The Config given by parsed CLI flags (flags not given keep the base value)."""
    names = {f.name for f in fields(Config)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return Config.from_mapping(given, base)
