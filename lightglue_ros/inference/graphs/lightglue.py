"""LightGlue as graphs: one per stage of :class:`~lightglue_ros.models.lightglue.Stages`
(``encode``, ``layer{i}``, ``confidence{i}``, ``matchability{i}``, ``assign{i}``) with dynamic
keypoint counts. :class:`GraphStages` implements the protocol on top of any runner, so the
unchanged :func:`~lightglue_ros.models.lightglue.run_adaptive` makes the early-exit and pruning
decisions on every backend."""
from __future__ import annotations

import torch
from torch import nn

from ...models.lightglue import LightGlue
from .spec import GraphRunner, GraphSpec


class _Encode(nn.Module):
    def __init__(self, lg: LightGlue) -> None:
        super().__init__()
        self.lg = lg

    def forward(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lg.encode(kpts, desc)


class _Stage(nn.Module):
    def __init__(self, lg: LightGlue, stage: str, i: int) -> None:
        super().__init__()
        self.lg, self.stage, self.i = lg, stage, i

    def forward(self, *args: torch.Tensor):  # noqa: ANN201
        return getattr(self.lg, self.stage)(self.i, *args)


def matcher_graphs(lg: LightGlue) -> list[GraphSpec]:
    """One graph per stage of LightGlue (see :class:`~lightglue_ros.models.lightglue.Stages`)."""
    d_in = lg.conf["input_dim"]
    d = lg.conf["descriptor_dim"]
    head = d // lg.conf["num_heads"]
    m, n = 37, 53  # tracing sizes

    def pair() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(1, m, d), torch.randn(1, n, d)

    def layer_example() -> tuple[torch.Tensor, ...]:
        enc0 = lg.encode(torch.rand(1, m, 2) * 2 - 1, torch.randn(1, m, d_in))[1]
        enc1 = lg.encode(torch.rand(1, n, 2) * 2 - 1, torch.randn(1, n, d_in))[1]
        return (*pair(), enc0.detach(), enc1.detach())

    desc_pair = {"desc0": (1, "n0", d), "desc1": (1, "n1", d)}
    specs = [GraphSpec("encode", _Encode(lg).eval(), ("kpts", "desc"), ("desc_out", "encoding"),
                       {"kpts": (1, "n", 2), "desc": (1, "n", d_in)},
                       lambda: (torch.rand(1, m, 2) * 2 - 1, torch.randn(1, m, d_in)),
                       fp16=False)]
    for i in range(lg.n_layers):
        specs.append(GraphSpec(
            f"layer{i}", _Stage(lg, "layer", i).eval(), ("desc0", "desc1", "enc0", "enc1"),
            ("desc0_out", "desc1_out"),
            {**desc_pair, "enc0": (2, 1, 1, "n0", head), "enc1": (2, 1, 1, "n1", head)},
            layer_example))
        if i < lg.n_layers - 1:
            specs.append(GraphSpec(f"confidence{i}", _Stage(lg, "confidence", i).eval(),
                                   ("desc0", "desc1"), ("token0", "token1"), desc_pair, pair))
            specs.append(GraphSpec(f"matchability{i}", _Stage(lg, "matchability", i).eval(),
                                   ("desc",), ("matchability",), {"desc": (1, "n", d)},
                                   lambda: (torch.randn(1, m, d),)))
        specs.append(GraphSpec(f"assign{i}", _Stage(lg, "assign", i).eval(), ("desc0", "desc1"),
                               ("scores",), desc_pair, pair))
    return specs


class GraphStages:
    """The :class:`~lightglue_ros.models.lightglue.Stages` protocol over LightGlue's graphs."""

    def __init__(self, runner: GraphRunner, n_layers: int) -> None:
        self.runner, self.n_layers = runner, n_layers

    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        desc, enc = self.runner.run("encode", kpts, desc)
        return desc, enc

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        desc0, desc1 = self.runner.run(f"layer{i}", desc0, desc1, enc0, enc1)
        return desc0, desc1

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        token0, token1 = self.runner.run(f"confidence{i}", desc0, desc1)
        return token0, token1

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor:
        return self.runner.run(f"matchability{i}", desc)[0]

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        return self.runner.run(f"assign{i}", desc0, desc1)[0]
