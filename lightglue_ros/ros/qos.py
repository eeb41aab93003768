"""Input subscriptions whose QoS matches their publishers, and that count samples lost in transport.

Why: over UDP (Fast DDS defaults) a large message sent best effort is lost whole when one of its
fragments is, so a best-effort subscription to a reliable camera loses most 640x480 frames, while
a reliable keep-last-1 subscription gets every one (latest-frame-wins at the DDS level). A
reliable subscription, though, does not match a best-effort publisher at all. So in ``auto`` mode
the subscription does what ``ros2 topic echo`` and ``ros2 bag record`` do: reliable when every
publisher on the topic is reliable (or none is there yet: most drivers and ``ros2 bag play`` are),
best effort as soon as one is not. It is re-evaluated when publishers appear or leave (the
subscription's matched and incompatible-QoS events, and a slow poll of the graph, which can lag
the events). The fixed modes (``reliable``, ``sensor_data``, ``system_default``) never change.

Samples the middleware knows it lost (``message_lost`` event: a best-effort sample that never
completed, or was overtaken) are counted in ``lost``; the node reports them in /diagnostics.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_system_default)

CHECK_PERIOD_S = 0.2   # how soon a graph event is acted on
POLL_PERIOD_S = 2.0    # graph poll without an event (the graph can lag the match events)


def matching_reliability(publishers: Iterable[QoSProfile]) -> ReliabilityPolicy:
    """RELIABLE when every publisher is reliable or there is none yet, else BEST_EFFORT (which
    matches publishers of both kinds)."""
    kinds = {p.reliability for p in publishers}
    return ReliabilityPolicy.BEST_EFFORT if ReliabilityPolicy.BEST_EFFORT in kinds \
        else ReliabilityPolicy.RELIABLE


def profile(mode: str, depth: int, reliability: ReliabilityPolicy | None = None) -> QoSProfile:
    """The subscription QoS of a mode (``auto`` with the ``reliability`` its publishers ask)."""
    if mode == "system_default":
        return qos_profile_system_default
    if mode == "sensor_data":
        reliability = ReliabilityPolicy.BEST_EFFORT
    elif mode == "reliable":
        reliability = ReliabilityPolicy.RELIABLE
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=reliability or ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)  # matches volatile and latched


class InputSubscription:
    """One input topic of the node: a subscription recreated when its publishers ask for
    another reliability (``auto``), and the count of samples lost in transport."""

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                 mode: str, depth: int) -> None:
        self.node, self.msg_type, self.topic, self.callback = node, msg_type, topic, callback
        self.mode, self.depth = mode, depth
        self.lost = 0                 # samples the middleware reported lost
        self.counts_losses = True     # False when the rmw has no message_lost event
        self._dirty = False
        self._ticks = 0
        self.subscription = self._create(profile(mode, depth))
        if mode == "auto":
            node.create_timer(CHECK_PERIOD_S, self._tick,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def name(self) -> str:
        """The resolved (namespaced, remapped) topic name."""
        return self.subscription.topic_name

    @property
    def reliability(self) -> ReliabilityPolicy:
        return self.subscription.qos_profile.reliability

    def _create(self, qos: QoSProfile):
        def events(lost: bool) -> SubscriptionEventCallbacks:
            return SubscriptionEventCallbacks(
                message_lost=self._on_lost if lost else None, matched=self._on_graph,
                incompatible_qos=self._on_graph)

        try:
            return self.node.create_subscription(self.msg_type, self.topic, self.callback, qos,
                                                 event_callbacks=events(self.counts_losses))
        except UnsupportedEventTypeError:
            self.counts_losses = False
            self.node.get_logger().warning(
                f"{self.topic}: this rmw has no message_lost event: samples lost in transport "
                "cannot be counted")
            return self.node.create_subscription(self.msg_type, self.topic, self.callback, qos,
                                                 event_callbacks=events(False))

    def _on_lost(self, info) -> None:
        self.lost += int(info.total_count_change)

    def _on_graph(self, _info) -> None:
        self._dirty = True

    def _tick(self) -> None:
        self._ticks += 1
        if self._dirty or self._ticks * CHECK_PERIOD_S >= POLL_PERIOD_S:
            self._dirty, self._ticks = False, 0
            self.refresh()

    def refresh(self) -> bool:
        """Match the publishers now on the topic (``auto`` only); True when the subscription
        was recreated with another reliability."""
        if self.mode != "auto":
            return False
        publishers = [p.qos_profile for p in self.node.get_publishers_info_by_topic(self.name)]
        wanted = matching_reliability(publishers)
        if wanted == self.reliability:
            return False
        old = self.subscription
        self.subscription = self._create(profile(self.mode, self.depth, wanted))
        self.node.destroy_subscription(old)
        kind = "reliable" if wanted == ReliabilityPolicy.RELIABLE else "best effort"
        self.node.get_logger().info(
            f"{self.name}: {len(publishers)} publisher(s), subscribing {kind} to match them")
        return True
