"""The flow of ``lightglue_ros_tools.reliability.flow_budget``: keypoints of a textured scene seen
through a camera that moved by a known shift land where the shift puts them, and those the shift
takes out of the image are not kept."""
from __future__ import annotations

import numpy as np

from conftest import textured_image
from lightglue_ros.images import to_gray8
from lightglue_ros.tracking.flow import follow


def test_flow_follows_a_known_shift_and_drops_points_that_leave_the_image() -> None:
    scene = to_gray8(textured_image(280, 360, 3))
    dx, dy = 6, 4
    first = scene[20:260, 20:340]  # 240 x 320 views of the scene, the second moved by (dx, dy)
    second = scene[20 - dy:260 - dy, 20 - dx:340 - dx]
    rng = np.random.default_rng(0)
    inside = np.column_stack([rng.uniform(40, 280, 50), rng.uniform(40, 200, 50)])
    leaving = np.array([[317.0, 120.0], [318.5, 60.0]])  # x + dx is past the right border
    landed, kept = follow(first, second, np.vstack([inside, leaving]))
    assert kept[:50].all()
    np.testing.assert_allclose(landed[:50], inside + [dx, dy], atol=0.05)
    assert not kept[50:].any()


def test_flow_places_synthetic_frames_on_the_map_about_as_well_as_the_tracker() -> None:
    """``accuracy.flow_frames`` on the synthetic monocular sequence: once the map exists (after
    the first few frames, which a monocular map needs) the flow places every frame, and its relative rotations are as close to the truth as the tracker's
    (both well under a degree; the sequence's are about 0.14 deg)."""
    from lightglue_ros.config import Config
    from lightglue_ros.datasets.frames import synthetic_frames
    from lightglue_ros.synthetic import make_sequence
    from lightglue_ros.types import Trajectory
    from lightglue_ros_tools.accuracy.flow_frames import run

    seq = make_sequence(num_frames=12)
    out = run(synthetic_frames(seq, use_depth=False), Trajectory(seq.stamps, seq.poses),
              Config(backend="torch"))
    assert out["frames"] == 11 and out["flow_placed"] >= 5
    assert all(r["flow"] is not None for r in out["rows"][-5:])
    assert out["flow_rotation_error_median_deg"] < 0.5
    assert out["tracker_rotation_error_median_deg"] < 0.5
    chained = run(synthetic_frames(seq, use_depth=False), Trajectory(seq.stamps, seq.poses),
                  Config(backend="torch"), steps=3)  # each frame placed 3 frames after its map
    assert chained["frames"] == 9 and all(r["flow"] is not None for r in chained["rows"][-3:])
    assert chained["flow_rotation_error_median_deg"] < 1.0
