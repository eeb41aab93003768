"""Public API: a synthetic RGB-D sequence with exact poses, and its export as a TUM RGB-D folder.

Poses and stamps are computed up front; images are rendered only when a frame is asked for, and are
the same every time for the same arguments. Texture, trajectory and sensor noise draw on separate
random streams of the one seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from ..types import NS, seconds
from .atlas import TextureAtlas, build_atlas
from .camera import CameraInfo, make_camera
from .render import Renderer
from .scene import Scene, build_scene
from .trajectory import make_trajectory

EPOCH_NS = 1_700_000_000 * NS   # stamp of frame 0
TUM_DEPTH_SCALE = 5000.0    # TUM RGB-D depth PNG units per metre


@dataclass(frozen=True)
class SyntheticFrame:
    index: int
    stamp_ns: int
    rgb: np.ndarray             # (H, W, 3) uint8
    depth: np.ndarray           # (H, W) float32 metres along the optical axis; 0: no surface
    T_world_cam: np.ndarray     # (4, 4) camera-to-world

    @property
    def seconds(self) -> float:
        return seconds(self.stamp_ns)


class SyntheticSequence:
    """A rendered camera sequence with ground truth; see ``make_sequence``. ``stamps_ns`` are
    the frames' stamps (integer nanoseconds), ``stamps`` the same in seconds (ground truth)."""

    def __init__(self, camera: CameraInfo, stamps_ns: Sequence[int], poses: np.ndarray, seed: int,
                 noise_sigma: float, supersample: int, texels_per_metre: float,
                 depth_noise: float = 0.0):
        self.camera = camera
        self.stamps_ns = [int(ns) for ns in stamps_ns]
        self.stamps = np.array([seconds(ns) for ns in self.stamps_ns], dtype=np.float64)
        self.poses = poses
        self.seed = seed
        self.noise_sigma = noise_sigma
        self.depth_noise = depth_noise
        self._supersample = supersample
        self._texels_per_metre = texels_per_metre
        self._renderer: Renderer | None = None

    def __len__(self) -> int:
        return len(self.stamps)

    def __iter__(self) -> Iterator[SyntheticFrame]:
        return (self.frame(i) for i in range(len(self)))

    def frame(self, index: int) -> SyntheticFrame:
        """Render frame ``index`` (0-based)."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range for a sequence of {len(self)}")
        if self._renderer is None:
            scene, atlas = _scene_and_atlas(self.seed, self._texels_per_metre)
            self._renderer = Renderer(scene, self.camera, self._supersample, atlas)
        pose = self.poses[index]
        rgb, depth = self._renderer.render(pose, self.noise_sigma, (self.seed, 3, index))
        if self.depth_noise > 0:
            depth = _noisy_depth(depth, self.depth_noise, (self.seed, 4, index))
        return SyntheticFrame(index, self.stamps_ns[index], rgb, depth, pose.copy())

    def right_eye(self, baseline_m: float) -> "SyntheticSequence":
        """The same frames seen by a rectified right camera ``baseline_m`` to the right of each
        pose (along the optical frame's x): a stereo pair's second eye, same noise stream."""
        T_left_right = np.eye(4)
        T_left_right[0, 3] = baseline_m
        return SyntheticSequence(self.camera, self.stamps_ns, self.poses @ T_left_right,
                                 self.seed, self.noise_sigma, self._supersample,
                                 self._texels_per_metre, self.depth_noise)

    def path_length(self) -> float:
        """Distance travelled by the camera centre, metres."""
        return float(np.linalg.norm(np.diff(self.poses[:, :3, 3], axis=0), axis=1).sum())


def make_sequence(num_frames: int = 90, width: int = 640, height: int = 480,
                  rate_hz: float = 30.0, seed: int = 0,
                  distortion: Sequence[float] | None = None, *, motion: str = "orbit",
                  speed: float = 0.75, noise_sigma: float = 1.0, supersample: int = 2,
                  texels_per_metre: float = 200.0, focal: float | None = None,
                  depth_noise: float = 0.0) -> SyntheticSequence:
    """A camera moving through a furnished, textured room, with exact poses, depth and intrinsics.

    distortion: plumb_bob coefficients (k1, k2, p1, p2, k3); the images are then distorted as
        ``cv2.projectPoints`` would. None renders ideal pinhole images.
    motion: "orbit", "rotation" (pure rotation) or "planar" (a single wall fills the view).
    speed: metres per second along the path (for "rotation", the matching turn rate).
    noise_sigma: standard deviation of the Gaussian sensor noise in grey levels (0 turns it off);
        the default 1.0 is a well-lit camera's, enough that no two frames are exactly alike.
    supersample: rays per pixel side; 2 (4 rays per pixel) keeps edges and texture from aliasing.
    texels_per_metre: texture resolution; 200 (5 mm) is about a pixel at 2.5 m.
    focal: fx = fy in pixels; default 525 * width / 640, the TUM RGB-D field of view (63 degrees).
    depth_noise: a, for Gaussian depth noise sigma_z = a z^2 per pixel (metres), the model the
        tracker's ``depth_noise`` assumes (a structured-light sensor's is about 0.0015-0.003);
        0, the default, renders exact depth.
    """
    if num_frames < 1 or rate_hz <= 0 or width < 1 or height < 1 or supersample < 1:
        raise ValueError("num_frames, width, height and supersample must be at least 1 and "
                         "rate_hz positive")
    if not depth_noise >= 0:
        raise ValueError(f"depth_noise must be >= 0, got {depth_noise}")
    camera = make_camera(width, height, distortion, focal)
    stamps_ns = [EPOCH_NS + round(i * NS / rate_hz) for i in range(num_frames)]
    poses = make_trajectory(num_frames, rate_hz, speed, seed, motion)
    return SyntheticSequence(camera, stamps_ns, poses, seed, noise_sigma, supersample,
                             texels_per_metre, depth_noise)


def _noisy_depth(depth: np.ndarray, a: float, seed: tuple[int, ...]) -> np.ndarray:
    """``depth`` with independent Gaussian noise a z^2 on every pixel that has a surface (stream 4
    of the seed); 0 (no surface) stays 0, and no pixel is pushed behind the camera."""
    z = depth.astype(np.float64)
    noisy = z + a * z ** 2 * np.random.default_rng(seed).standard_normal(z.shape)
    return np.where(z > 0, np.maximum(noisy, 1e-3), 0.0).astype(depth.dtype)


@lru_cache(maxsize=2)
def _scene_and_atlas(seed: int, texels_per_metre: float) -> tuple[Scene, TextureAtlas]:
    """Textures take most of a second to make; sequences of the same seed share them."""
    scene = build_scene(seed, texels_per_metre)
    return scene, build_atlas([q.texture for q in scene.quads])


def write_tum_folder(seq: SyntheticSequence, out_dir: str | Path, progress: bool = True) -> Path:
    """Write ``seq`` in the TUM RGB-D layout and return the folder.

    rgb/<stamp>.png, depth/<stamp>.png (uint16, 5000 per metre, 0: no depth), rgb.txt, depth.txt,
    groundtruth.txt (t tx ty tz qx qy qz qw, camera-to-world) and camera.yaml (ROS camera_info).
    """
    out = Path(out_dir)
    for sub in ("rgb", "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    names = [f"{stamp:.6f}.png" for stamp in seq.stamps]
    for frame, name in zip(tqdm(seq, total=len(seq), desc=f"writing {out}", unit="frame",
                                disable=not progress), names):
        cv2.imwrite(str(out / "rgb" / name), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        depth = np.clip(np.rint(frame.depth * TUM_DEPTH_SCALE), 0, np.iinfo(np.uint16).max)
        cv2.imwrite(str(out / "depth" / name), depth.astype(np.uint16))
    source = f"# file: 'lightglue_ros synthetic sequence, seed {seq.seed}'\n"
    for sub, title in (("rgb", "color images"), ("depth", "depth maps")):
        rows = "".join(f"{stamp:.6f} {sub}/{name}\n" for stamp, name in zip(seq.stamps, names))
        (out / f"{sub}.txt").write_text(f"# {title}\n{source}# timestamp filename\n{rows}")
    quats = Rotation.from_matrix(seq.poses[:, :3, :3]).as_quat()    # x, y, z, w
    quats *= np.where(quats[:, 3:] < 0, -1.0, 1.0)
    rows = "".join(f"{t:.6f} " + " ".join(f"{x:.9f}" for x in (*p[:3, 3], *q)) + "\n"
                   for t, p, q in zip(seq.stamps, seq.poses, quats))
    (out / "groundtruth.txt").write_text(
        f"# ground truth trajectory\n{source}# timestamp tx ty tz qx qy qz qw\n{rows}")
    (out / "camera.yaml").write_text(_camera_yaml(seq.camera))
    return out


def _camera_yaml(camera: CameraInfo) -> str:
    """The camera in the ROS camera_calibration_parsers YAML layout.

    ROS knows no "none" model: an ideal camera is plumb_bob with zero coefficients.
    """
    K = camera.K
    P = np.hstack([K, np.zeros((3, 1))])

    def matrix(name: str, m: np.ndarray) -> str:
        data = ", ".join(f"{x:.10g}" for x in np.ravel(m))
        return f"{name}:\n  rows: {np.atleast_2d(m).shape[0]}\n  cols: " \
               f"{np.atleast_2d(m).shape[1]}\n  data: [{data}]\n"

    return (f"image_width: {camera.width}\nimage_height: {camera.height}\n"
            f"camera_name: lightglue_ros_synthetic\n" + matrix("camera_matrix", K)
            + "distortion_model: plumb_bob\n" + matrix("distortion_coefficients", camera.D[None])
            + matrix("rectification_matrix", np.eye(3)) + matrix("projection_matrix", P))
