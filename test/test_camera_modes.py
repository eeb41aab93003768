"""The tracker's camera units (``tracking.modes``): each frame goes to the unit of the camera that
took it; a stereo frame measures its points only as it becomes a keyframe; the monocular scale."""
import numpy as np
import pytest

from conftest import textured_image
from lightglue_ros.config import Config
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking.estimate import Estimate
from lightglue_ros.tracking.frames import TrackedFrame
from lightglue_ros.tracking.modes import CameraModes, MonocularScale
from lightglue_ros.types import FrameInput

FX, BASELINE_M, DISPARITY_PX = 300.0, 0.1, 8  # a fronto-parallel plane at 3.75 m


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


@pytest.fixture(scope="module")
def camera():
    return CameraModel(320, 240, np.array([[FX, 0, 160], [0, FX, 120], [0, 0, 1]]))


def test_each_frame_goes_to_the_unit_of_the_camera_that_took_it(pipe, camera):
    modes, image = CameraModes(pipe), textured_image()
    depth = np.full(image.shape[:2], 2.0, np.float32)
    assert modes.of(FrameInput(0, image, camera)) is modes.monocular
    assert modes.of(FrameInput(0, image, camera, depth)) is modes.depth
    assert modes.of(FrameInput(0, image, camera, right=image, baseline_m=0.1)) is modes.stereo
    # a depth image is measured on every frame: it is used rather than the pair
    both = FrameInput(0, image, camera, depth, right=image, baseline_m=0.1)
    assert modes.of(both) is modes.depth


def test_a_stereo_frame_measures_its_points_only_as_it_becomes_a_keyframe(pipe, camera):
    wide = textured_image(240, 320 + DISPARITY_PX, seed=3)
    left, right = wide[:, :320], wide[:, DISPARITY_PX:]  # u_right = u_left - disparity
    source = FrameInput(0, np.ascontiguousarray(left), camera, right=np.ascontiguousarray(right),
                        baseline_m=BASELINE_M)
    stereo, config = CameraModes(pipe).stereo, pipe.config.resolved()
    frame = TrackedFrame(0, camera, pipe.extract(source.image))
    assert stereo.attach(frame, source, config) == ""
    assert frame.right is not None and not frame.metric and frame.depth_points is None
    timings: dict[str, float] = {}
    assert stereo.keyframe_points(frame, config, timings) == ""
    assert frame.metric and frame.right is None and "stereo" in timings  # the pair is spent
    z = frame.depth_points[np.isfinite(frame.depth_points[:, 2]), 2]
    assert len(z) > 50
    assert np.median(z) == pytest.approx(FX * BASELINE_M / DISPARITY_PX, rel=0.02)
    again: dict[str, float] = {}
    assert stereo.keyframe_points(frame, config, again) == "" and not again  # measured once


def _located(t_norm: float, flow_px: float, model: str = "pnp") -> Estimate:
    t = np.array([t_norm, 0.0, 0.0])
    return Estimate(np.eye(3), t, np.eye(6), model, False, np.ones(1, bool),
                    np.zeros((1, 2), int), np.zeros(1), 1, flow_px)


def test_the_monocular_scale_is_measured_by_pnp_and_kept_through_the_start():
    config = Config()
    scale = MonocularScale()
    assert scale.per_flow_px(config) == pytest.approx(1.0 / config.mono_init_flow_px)
    assert scale.located(_located(0.5, 20.0, "essential")) is scale  # two-view measures nothing
    measured = scale.located(_located(0.5, 20.0))
    assert measured.per_flow_px(config) == pytest.approx(0.025)
    started = measured.initialise()
    assert started.initialised and started.per_flow_px(config) == pytest.approx(0.025)
    assert not scale.initialised  # immutable: the tracker restores it after a failed frame
