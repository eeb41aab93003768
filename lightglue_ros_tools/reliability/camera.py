"""A synthetic camera: the embedded RGB-D sequence published as a driver would, looped, at a rate
or one frame at a time, with a hook that turns any frame into a fault.

``SyntheticCamera`` runs in the stress driver's process on a thread, through a ``TrackerProcess``'s
input publishers. ``python -m lightglue_ros_tools.reliability.camera`` runs the same camera as a
process of its own (the publisher that dies and comes back).

Every frame is a ``Shot`` (camera_info, depth or the right eye of a stereo pair, image and their
stamp) built from messages made once per content frame; ``gap_s`` is a pause after a depth or
right image (two large messages back to back overflow a DDS receiver's socket buffer); ``mutate`` (a function of the shot) may replace, drop (None) or restamp them
before they go out, which is how faults are injected while frames flow.
"""
from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .messages import (EPOCH_SEC, camera_info_msg, depth_msg, frame_stamp, image_msg,
                       right_camera_info_msg, stamp_key, synthetic, synthetic_right)

LOOP_FRAMES = 120  # content frames before the sequence loops (4 s of the orbit at 30 Hz)
NS = 1_000_000_000


class StampClock:
    """Increasing stamps ``step_ns`` apart (a 30 Hz camera by default), whatever the real rate;
    ``shift`` moves the clock (a stamp fault: bag loop, sim time reset, clock jump)."""

    def __init__(self, start_ns: int = EPOCH_SEC * NS, step_ns: int = NS // 30) -> None:
        self.next_ns, self.step_ns = int(start_ns), int(step_ns)
        self._lock = threading.Lock()

    def __call__(self):
        from builtin_interfaces.msg import Time

        with self._lock:
            ns, self.next_ns = self.next_ns, self.next_ns + self.step_ns
        return Time(sec=ns // NS, nanosec=ns % NS)

    def shift(self, delta_ns: int) -> None:
        with self._lock:
            self.next_ns += int(delta_ns)

    def set(self, ns: int) -> None:
        with self._lock:
            self.next_ns = int(ns)


@dataclass
class Shot:
    """One frame as it is about to be published; a field set to None is not sent."""

    index: int            # content frame of the sequence
    stamp: Any            # builtin_interfaces/Time of every message of the shot
    image: Any
    depth: Any
    camera_info: Any
    right_image: Any = None        # a stereo camera's right eye
    right_camera_info: Any = None


# Shot fields in the order a driver's messages go out, with their topics: calibrations first,
# the left image last (the node pairs it with the depth and right image already received).
TOPICS = (("camera_info", "camera_info"), ("right_camera_info", "right/camera_info"),
          ("depth", "depth"), ("right_image", "right/image"), ("image", "image"))


class SyntheticCamera:
    """Publishes shots of the synthetic sequence; see the module docstring.

    ``publish(topic, msg)`` sends a message on the node's input topic ``topic`` (image, depth,
    camera_info); ``next_stamp()`` gives increasing stamps; ``on_loop()`` runs when the sequence
    starts again (the stress driver resets tracking there); with ``bounce`` it plays backwards
    instead, so the view never jumps.
    """

    def __init__(self, publish: Callable[[str, Any], None], next_stamp: Callable[[], Any],
                 width: int = 320, height: int = 240, depth: bool = True,
                 frames: int = LOOP_FRAMES, gap_s: float = 0.0,
                 bounce: bool = False, stereo_baseline_m: float = 0.0) -> None:
        self.publish = publish
        self.next_stamp = next_stamp
        self.camera, self.frames = synthetic(frames, width, height)
        self.with_depth = depth
        self.gap_s = gap_s
        stamp = frame_stamp(0)
        self._images = [image_msg(f.rgb, "rgb8", stamp) for f in self.frames]
        self._depths = [depth_msg(f.depth, "32FC1", stamp) for f in self.frames] if depth \
            else None
        self._info = camera_info_msg(self.camera, stamp)
        self._rights = [image_msg(rgb, "rgb8", stamp) for rgb in synthetic_right(
            frames, width, height, stereo_baseline_m)] if stereo_baseline_m > 0 else None
        self._right_info = right_camera_info_msg(self.camera, stamp, stereo_baseline_m) \
            if stereo_baseline_m > 0 else None
        self.mutate: Callable[[Shot], Shot] | None = None
        self.send_camera_info = True
        self.on_loop: Callable[[], None] | None = None
        self.bounce = bounce
        self.direction = 1
        self.index = 0           # next content frame
        self.sent: dict[tuple[int, int], float] = {}   # stamp -> monotonic publish time
        self.count = 0           # shots published
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def play(self, bounce: bool) -> None:
        """Play the sequence forth and back (``bounce``: a camera that moves on continuously) or
        looped from its start, ``on_loop`` at each loop (the view jumps back there)."""
        self.bounce = bounce
        if not bounce:
            self.direction = 1

    # --- one frame --------------------------------------------------------------------------------
    def shot(self) -> Shot:
        """The next frame of the sequence with the next stamp (not sent yet)."""
        if not 0 <= self.index < len(self.frames):
            if self.bounce:
                self.direction = -self.direction
                self.index += 2 * self.direction
            else:
                self.index = 0
                if self.on_loop is not None:
                    self.on_loop()
        i = self.index
        self.index += self.direction
        stereo = self._rights is not None
        return Shot(i, self.next_stamp(), self._images[i],
                    self._depths[i] if self._depths is not None else None,
                    self._info if self.send_camera_info else None,
                    self._rights[i] if stereo else None,
                    self._right_info if stereo and self.send_camera_info else None)

    def send(self, shot: Shot | None = None) -> Shot:
        """Publish the calibrations, depth or the right image, then the image of a shot (the
        next one when None), after ``mutate``; returns the shot as sent."""
        shot = shot or self.shot()
        if self.mutate is not None:
            shot = self.mutate(shot)
        for field_name, topic in TOPICS:
            msg = getattr(shot, field_name)
            if msg is None:
                continue
            msg.header.stamp = shot.stamp
            if topic == "image":
                self.sent[stamp_key(shot.stamp)] = time.monotonic()
            self.publish(topic, msg)
            if topic in ("depth", "right/image") and self.gap_s:
                time.sleep(self.gap_s)
        self.count += 1
        return shot

    # --- streams ----------------------------------------------------------------------------------
    def run(self, rate_hz: float | None, count: int | None = None, seconds: float | None = None,
            answered: Callable[[Any, float], bool] | None = None, answer_timeout: float = 30.0,
            on_shot: Callable[[Shot], None] | None = None) -> int:
        """Publish ``count`` shots or for ``seconds``: at ``rate_hz`` (no catch-up burst when
        late), or, with ``answered``, each after the node answered the one before (wait mode).
        Returns the number of shots sent."""
        start = time.monotonic()
        next_at = start
        sent = 0
        while not self._stop.is_set():
            if count is not None and sent >= count:
                break
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            if rate_hz:
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at = max(next_at + 1.0 / rate_hz, time.monotonic())
            shot = self.send()
            sent += 1
            if on_shot is not None:
                on_shot(shot)
            if answered is not None and shot.image is not None:
                answered(shot.stamp, answer_timeout)
        return sent

    def start(self, rate_hz: float, **kwargs) -> None:
        """``run`` on a thread until ``stop``."""
        self._stop.clear()

        def target() -> None:
            try:
                self.run(rate_hz, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc

        self._thread = threading.Thread(target=target, name="synthetic-camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
            self._thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise RuntimeError(f"the synthetic camera failed: {error}") from error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


# --- the camera as a process of its own ----------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m lightglue_ros_tools.reliability.camera --namespace /camera --rate 5``: publish
    the synthetic sequence on ``<namespace>/image``, ``camera_info`` (and ``depth``) with reliable
    QoS until killed, in the domain of the environment."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from .session import reliable_qos

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--namespace", default="/")
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--depth", action="store_true")
    p.add_argument("--start-ns", type=int, default=EPOCH_SEC * NS,
                   help="stamp of the first frame (ns); the next ones are 1/30 s apart")
    p.add_argument("--start-frame", type=int, default=0, help="content frame to start from")
    p.add_argument("--bounce", action="store_true", help="play back and forth, never jump")
    p.add_argument("--go-on-signal", action="store_true",
                   help="print 'ready' once connected, and start publishing on SIGUSR1")
    args = p.parse_args(argv)
    go = threading.Event()
    if args.go_on_signal:
        signal.signal(signal.SIGUSR1, lambda *_: go.set())
    else:
        go.set()
    rclpy.init()
    node = Node("lightglue_synthetic_camera")
    ns = args.namespace.rstrip("/")
    pubs = {t: node.create_publisher(CameraInfo if t == "camera_info" else Image, f"{ns}/{t}",
                                     reliable_qos())
            for t in ("image", "camera_info") + (("depth",) if args.depth else ())}
    camera = SyntheticCamera(lambda topic, msg: pubs[topic].publish(msg),
                             StampClock(args.start_ns), args.width, args.height, args.depth,
                             bounce=args.bounce)
    camera.index = args.start_frame
    deadline = time.monotonic() + 30.0
    while pubs["image"].get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"ready to publish on {ns}/image at {args.rate} Hz", flush=True)
    try:
        while not go.wait(0.05):
            pass
        camera.run(args.rate)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
