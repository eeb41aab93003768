"""Which differences from the reference float32 rounding can explain: the tolerance and near-ties.

Where the values come from. A match score is ``P_ij = exp(l_ij)`` with the log assignment
``l = log_softmax_rows(S) + log_softmax_columns(S) + logsigmoid(z_i) + logsigmoid(z_j)``, S the
similarity of the descriptors after the last layer run and z their matchability; token confidences
(early exit) and matchability (pruning) are sigmoids of the same descriptors. Each layer before
that is a chain of float32 reductions: products over the descriptor width (64 to 512 terms),
attention softmaxes and sums over up to 1024 keypoints, LayerNorm.

What another machine changes. Another CPU (AVX2's 8 lanes instead of AVX-512's 16, or no SIMD),
another library (ONNX Runtime's MLAS) or another thread count (a reduction split in two) adds the
same terms in another order. Each rounding errs by at most ``u = 2**-24`` relative, and a K-term
sum taken in another order moves by about ``sqrt(K) * u`` relative (independent roundings; the
worst case is ``K * u``): a few u to a few tens of u per stage output here, which the layers after
it amplify.

How far that moves the values, measured without depending on this machine:
``lightglue-ros parity --golden ../shared/golden --perturb U --json`` multiplies every stage
output (input projection, each layer, token confidence, matchability, assignment) by
``1 + U * u * r``, r uniform in [-1, 1] from fixed seeds: a simulated machine whose every stage
rounds differently by up to U u. Largest score difference from the golden outputs where no decision
flipped, in every mode (``--matcher-only``; docs/parity/perturb_16.json, perturb_64.json):

    ALIKED and DISK: U = 16: 9.8e-5 (1 near-tie flip)   U = 64: 5.8e-4 (2 near-tie flips)
    XFeat (LighterGlue): U = 16: 6.4e-4 (2 flips)       U = 64: 4.0e-3 (8 flips: bar missed)

For ALIKED and DISK, below U ~ 16 the largest difference stays near 1e-4 (the same near-ties set
it); from there it grows about linearly, so 1e-3 is reached near U ~ 100. LighterGlue (one head,
96 channels, six layers) amplifies rounding more: 1e-3 is reached near U ~ 25. The real kernels at
hand move the values as much as U <= 16 does: against the golden outputs, torch with
``ATEN_CPU_CAPABILITY=avx2`` (1.3e-4 ALIKED and DISK, 3.0e-4 XFeat;
docs/parity/torch_avx2_1thread.json) or ``default``, no SIMD (1.8e-4, 2.7e-4;
torch_noSIMD_matcher.json), and ONNX Runtime with 1 or 2 threads (1.0e-4, 3.5e-4;
onnxruntime_*.json); compared entry by entry (every
value of the final score matrices, all token confidences and matchabilities on the golden pairs)
these runs differ from the AVX-512 one by at most 1.8e-4 in a score, 3e-5 in a token confidence
and 1.2e-4 in a matchability. Thread count: torch's 1- and 2-thread runs are bit-identical to
each other; ONNX Runtime's differ by up to 1e-7 (some of its kernels split work by thread). ONNX
Runtime has no switch for its kernels (MLAS picks them from CPUID); run under ``qemu-x86_64 -cpu
Haswell`` (a CPU without AVX-512, so MLAS and torch take their AVX2 paths) on the ALIKED full-depth
pair whose mutual check ties within 5e-8 (freiburg 1341847984.743352__1341847985.746954), it flips
that near-tie and stays within 8.9e-5 elsewhere.

The tolerance. ``SCORE_TOLERANCE = 1e-3``: every stage rounding differently by about 100 u (a
reordered sum of 10^4 terms at sqrt(K) u), more than five times what any kernel variant above
changed for ALIKED and DISK, and 2.8 times for XFeat, whose margin is the smallest. It bounds
the probabilities that decide exits and pruning as well (they move less). The golden ALIKED and
DISK matches are bit-identical to this machine's torch run with AVX-512 kernels (1 or 2 threads);
XFeat's golden outputs, made elsewhere, are not.

Near-ties. A point's decision may differ from the reference's (a flip) only where some run whose
every value lies within the tolerance of ours gives the reference's output: its mutual nearest
neighbour with a score within tol of ours and nothing in its row or column above that by more than
tol; a mutual check it may fail because a competitor in its column lies within 2 tol (both values
within tol of the tie); a score within tol of the filter threshold on both sides; a pruning or exit
decision whose matchability or token confidences lie within tol of their thresholds. These are
necessary conditions, checked per point on our trace (:mod:`lightglue_ros.evaluation.match_trace`);
a difference that meets none of them is a disagreement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..features import Matches
from ..models.lightglue import AdaptiveConf, confidence_threshold
from .match_trace import MatchTrace

UNIT_ROUNDOFF = 2.0 ** -24  # u: the largest relative error of one float32 rounding
SCORE_TOLERANCE = 1e-3


@dataclass
class PairComparison:
    """One pair against the reference. A point's decision is its match (or none) and whether it
    passed the mutual check (a non-zero score); ``flips`` are points whose decision differs only by
    a near-tie (every value involved within the tolerance of its boundary), ``disagreements`` the
    other differing points. When the exit layer differs by a near-tie (``exit_flip``), the outputs
    come from different depths and are not compared point by point: ``differ_after_exit_flip``
    counts the points that differ."""

    points: int
    same: int
    flips: int
    disagreements: int
    max_score_diff: float  # over the points whose decision did not flip, at the same depth
    stop_same: bool
    exit_flip: bool
    differ_after_exit_flip: int
    identical: bool  # matches, scores and exit layer bit-identical


def compare_pair(ours: Matches, trace: MatchTrace | None, ref: Mapping[str, np.ndarray],
                 conf: AdaptiveConf | None, n_layers: int, tol: float = SCORE_TOLERANCE
                 ) -> PairComparison:
    """Compare our match of a pair with the reference outputs (``matches0``,
    ``matching_scores0``, ``matches1``, ``stop``), given the thresholds and layer count it ran
    with. Without a trace (and its conf), every difference counts as a disagreement."""
    m0, s0 = np.asarray(ref["matches0"]).astype(np.int64), np.asarray(ref["matching_scores0"])
    stop = int(ref["stop"])
    identical = (np.array_equal(ours.matches0, m0) and np.array_equal(ours.scores0, s0)
                 and np.array_equal(ours.matches1, np.asarray(ref["matches1"]))
                 and ours.layers == stop)
    same = (ours.matches0 == m0) & ((ours.scores0 > 0) == (s0 > 0))
    traced = trace is not None and conf is not None
    stop_same = ours.layers == stop
    exit_flip = (not stop_same and traced
                 and _stop_is_near_tie(ours, trace, stop, conf, n_layers, tol))
    flipped = np.zeros_like(same)
    if stop_same and traced and not same.all():
        ties = _NearTies(ours, trace, conf, n_layers, tol)
        for p in np.flatnonzero(~same):
            flipped[p] = ties.explains(int(p), int(m0[p]), float(s0[p]))
    differ = int((~same & ~flipped).sum())
    diffs = np.abs(ours.scores0 - s0)[same] if stop_same else np.zeros(0)
    return PairComparison(points=len(m0), same=int(same.sum()), flips=int(flipped.sum()),
                          disagreements=0 if exit_flip else differ,
                          max_score_diff=float(diffs.max()) if diffs.size else 0.0,
                          stop_same=stop_same, exit_flip=exit_flip,
                          differ_after_exit_flip=differ if exit_flip else 0, identical=identical)


class _NearTies:
    """Our final probabilities P (M, N), zero for pruned points, our pruning decisions, and the
    tests of whether the reference's output for a point is what a run whose every value lies
    within ``tol`` of ours would give."""

    def __init__(self, ours: Matches, trace: MatchTrace, conf: AdaptiveConf, n_layers: int,
                 tol: float) -> None:
        self.tol = tol
        m, n = len(ours.matches0), len(ours.matches1)
        rows, cols = _remaining(ours.pruned0), _remaining(ours.pruned1)
        self.P = np.zeros((m, n))
        if trace.log_scores is not None:
            log = trace.log_scores[:-1, :-1].astype(np.float64)
            if log.shape != (len(rows), len(cols)):
                raise ValueError(f"trace scores {log.shape} do not fit the "
                                 f"{len(rows)} x {len(cols)} remaining points")
            self.P[np.ix_(rows, cols)] = np.exp(log)
        self.kept = [np.isin(np.arange(m), rows), np.isin(np.arange(n), cols)]
        self.keepable = [np.zeros(m, bool), np.zeros(n, bool)]  # we pruned, the reference might not
        self.droppable = [np.zeros(m, bool), np.zeros(n, bool)]  # the converse
        width = conf.width_confidence
        for i, layer in trace.layers.items():
            threshold = confidence_threshold(i, n_layers)
            for side, pruned in enumerate((ours.pruned0, ours.pruned1)):
                matchability = (layer.matchability0, layer.matchability1)[side]
                if matchability is None:
                    continue
                tokens = (layer.tokens0, layer.tokens1)[side]
                present = np.flatnonzero(pruned > i)  # the points this layer saw, in order
                keep_near = matchability >= 1 - width - tol
                drop_near = matchability <= 1 - width + tol
                if tokens is not None:  # uncertain points (token <= threshold) are kept
                    keep_near |= tokens <= threshold + tol
                    drop_near &= tokens > threshold - tol
                here = pruned[present] == i + 1  # pruned after this layer
                self.keepable[side][present[here & keep_near]] = True
                self.droppable[side][present[~here & drop_near]] = True
        # the best value in each row / column among the points the reference surely kept
        sure0 = np.where(self.droppable[0], 0.0, 1.0)[:, None]
        sure1 = np.where(self.droppable[1], 0.0, 1.0)[None, :]
        self.row_max = (self.P * sure1).max(1, initial=0.0)
        self.col_max = (self.P * sure0).max(0, initial=0.0)

    def explains(self, p: int, ref_match: int, ref_score: float) -> bool:
        if not self.kept[0][p]:  # we pruned p: could the reference have kept it?
            return bool(self.keepable[0][p])
        if ref_match >= 0:
            if not self.kept[1][ref_match]:
                return bool(self.keepable[1][ref_match])
            return self._could_match(p, np.array([ref_match]), ref_score)
        if ref_score > 0:  # mutual, below the filter threshold, partner not recorded
            return self._could_match(p, np.flatnonzero(self.kept[1]), ref_score)
        return bool(self.droppable[0][p]) or self._could_fail_mutual(p)

    def _could_match(self, p: int, js: np.ndarray, score: float) -> bool:
        """Some j in js could be p's mutual nearest neighbour with this score: P[p, j] within tol
        of it and nothing in p's row or j's column above it by more than tol."""
        t = self.tol
        ok = ((np.abs(self.P[p, js] - score) <= t) & (self.row_max[p] <= score + t)
              & (self.col_max[js] <= score + t))
        return bool(ok.any())

    def _could_fail_mutual(self, p: int) -> bool:
        """p's nearest neighbour could be another point's: some j within 2 tol of p's best, and
        another row within 2 tol of P[p, j] in j's column (both values within tol of the tie)."""
        t2 = 2 * self.tol
        for j in np.flatnonzero(self.kept[1] & (self.P[p] >= self.row_max[p] - t2)):
            column = np.delete(self.P[:, j], p)
            if column.size and column.max() >= self.P[p, j] - t2:
                return True
        return False


def _remaining(pruned: np.ndarray) -> np.ndarray:
    """Indices of the points that reached the exit layer (they carry the largest count)."""
    return np.flatnonzero(pruned == pruned.max()) if pruned.size else np.zeros(0, np.int64)


def _stop_is_near_tie(ours: Matches, trace: MatchTrace, ref_stop: int, conf: AdaptiveConf,
                      n_layers: int, tol: float) -> bool:
    """The first layer where the exit decisions differ: could the reference's decision come from
    token confidences within tol of ours? Exit when the share of settled tokens (confidence >=
    threshold) exceeds depth_confidence."""
    i = min(ours.layers, ref_stop) - 1
    layer = trace.layers.get(i)
    if conf.depth_confidence <= 0 or layer is None or layer.tokens0 is None:
        return False
    tokens = np.concatenate([layer.tokens0, layer.tokens1]).astype(np.float64)
    threshold = confidence_threshold(i, n_layers)
    total = len(ours.matches0) + len(ours.matches1)
    uncertain = int((tokens < threshold).sum())
    settle = int(((tokens >= threshold - tol) & (tokens < threshold)).sum())
    unsettle = int(((tokens >= threshold) & (tokens <= threshold + tol)).sum())
    we_exit = ours.layers == i + 1
    # the reference's count of uncertain tokens, as far from ours as the tolerance allows
    theirs = uncertain + unsettle if we_exit else uncertain - settle
    reference_exits = bool(np.float32(1.0) - np.float32(theirs) / np.float32(total)
                           > np.float32(conf.depth_confidence))  # float32, as run_adaptive
    return reference_exits != we_exit
