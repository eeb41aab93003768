"""The keyframe policy: what a monocular map needs (covisibility, parallax), on real frames."""
import itertools

import numpy as np
import pytest

from conftest import SHARED
from lightglue_ros.config import Config
from lightglue_ros.datasets.frames import dataset_frames
from lightglue_ros.datasets.kitti import read_kitti
from lightglue_ros.evaluation.tracking_run import run_tracker
from lightglue_ros.geometry.se3 import make_transform
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.tracking import keyframes
from lightglue_ros.tracking.keyframes import (KeyframeFigures, KeyframePolicy, MapView,
                                              figures_reason)

KITTI07 = SHARED / "data" / "kitti07_0_159"


def test_parallax_is_the_angle_at_the_point_between_the_two_centres():
    # a point 10 m ahead, the camera 1 m sideways: atan(1/10); one keypoint without a point
    points = np.array([[0.0, 0.0, 10.0], [np.nan, np.nan, np.nan], [5.0, 0.0, 5.0]])
    view = MapView.of(points, np.array([0, 1]), make_transform(np.eye(3), [1.0, 0.0, 0.0]))
    assert view.map_points == 2 and view.tracked == 1 and view.share == 0.5
    assert view.parallax_deg == pytest.approx(np.degrees(np.arctan(0.1)), rel=1e-12)
    # the same rotation at both ends gives none
    none = MapView.of(points, np.array([0, 2]), np.eye(4))
    assert none.parallax_deg == pytest.approx(0.0, abs=1e-6)


def test_figures_carried_ahead_tell_of_a_keyframe_before_it_is_due():
    """``track_by_flow`` matches a frame at once when the policy will likely ask for a keyframe
    with it: the figures go on changing as they did over the last frame, floored at 0."""
    share = Config(keyframe_tracked_share=0.5, keyframe_parallax_deg=1.0)
    before = KeyframeFigures(300, 10.0, MapView(400, 300, 0.6))
    now = KeyframeFigures(260, 14.0, MapView(400, 240, 1.0))  # share 0.6: not due
    assert figures_reason(share, now, 300) == ""
    next_one = now.ahead(before, 1)  # share 0.45, parallax 1.4: due
    assert next_one.view == MapView(400, 180, 1.4) and next_one.inliers == 220
    assert "tracks 0.45" in figures_reason(share, next_one, 300)
    metric = Config(keyframe_flow_px=25.0, keyframe_min_inliers=100, keyframe_min_ratio=0.0)
    a, b = KeyframeFigures(300, 8.0, None), KeyframeFigures(300, 15.0, None)
    assert figures_reason(metric, b.ahead(a, 1), 300) == ""  # 22 px
    assert "median flow 29.0" in figures_reason(metric, b.ahead(a, 2), 300)
    assert KeyframeFigures(50, 1.0, None).ahead(KeyframeFigures(200, 3.0, None), 1) == \
        KeyframeFigures(0, 0.0, None)


def test_the_map_rules_wait_for_parallax_but_not_below_the_weak_floor():
    policy = KeyframePolicy(min_inliers=150, min_tracked_share=0.5, min_parallax_deg=1.0,
                            min_map_inliers=60, max_flow_px=25.0)
    view = MapView(map_points=250, tracked=80, parallax_deg=0.6)  # share 0.32
    assert policy.reason(80, 200, 40.0, view) == ""  # the inlier and flow rules do not apply
    assert "parallax" in policy.reason(80, 200, 40.0, MapView(250, 80, 1.2))
    assert policy.reason(80, 200, 5.0, MapView(250, 150, 1.2)) == ""  # share 0.6 tracked
    assert "inliers < 60" in policy.reason(59, 200, 5.0, view)
    # without a view (depth, stereo, two-view) the inlier rules
    assert "inliers < 150" in policy.reason(80, 200, 5.0, None)
    assert KeyframePolicy(min_tracked_share=0.0).reason(80, 0, 5.0, view) != ""


@pytest.mark.slow
@pytest.mark.skipif(not (KITTI07 / "poses.txt").is_file(),
                    reason=f"{KITTI07} is absent (../shared sits beside the clone in CI)")
def test_on_kitti07_a_keyframe_comes_when_the_tracked_share_drops_with_parallax(monkeypatch):
    """80 real frames at 10 Hz of a car driving on: the monocular map's keyframes come when the
    frame tracks too few of the keyframe's points and the new ones would have parallax, or
    before tracking turns weak, and at no other frame: not one every other frame."""
    decisions = []
    decide = KeyframePolicy.reason

    def spy(self, inliers, first_inliers, flow_px, view=None):
        why = decide(self, inliers, first_inliers, flow_px, view)
        decisions.append((inliers, view, why))
        return why

    monkeypatch.setattr(keyframes.KeyframePolicy, "reason", spy)
    config = Config(keyframe_tracked_share=0.5)
    frames = itertools.islice(dataset_frames(read_kitti(KITTI07, stereo=False)), 80)
    records = run_tracker(Tracker(Pipeline(config)), frames, progress=False, two_stage=False)
    assert not any(r.status is TrackingStatus.LOST for r in records)
    on_map = [(n, v, why) for n, v, why in decisions if v is not None]
    assert len(on_map) > 60  # the map exists from the first frames on
    for n, view, why in on_map:
        if n < config.good_inliers:
            assert why.startswith(f"{n} inliers")
        elif view.share < 0.5 and view.parallax_deg >= 1.0:
            assert "parallax" in why
        else:
            assert why == ""
    by_share = [v for _, v, why in on_map if "parallax" in why]
    assert len(by_share) >= 3  # the map rule, not only the weak floor, makes keyframes
    # the frames between keyframes gather parallax: fewer keyframes than one every other frame
    keyframe_records = [r for r in records if r.keyframe]
    assert len(keyframe_records) < len(records) / 2
