"""Deformable convolution (DCN v1) in plain PyTorch, as torchvision.ops.deform_conv2d computes it.

Each output pixel applies the kernel to input values read not on the regular grid but at the grid
positions shifted by a learnt, per-pixel offset. The values are read by bilinear interpolation, and
any of the four neighbours that falls outside the image counts as zero, exactly as torchvision's
kernel does, so that torchvision-trained weights (ALIKED's) give the same outputs without it.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
                  padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1
                  ) -> torch.Tensor:
    """Deformable 2-D convolution of ``x`` (B, C_in, H, W) with ``weight`` (C_out, C_in, kh, kw).

    ``offset`` is (B, 2 * kh * kw, H_out, W_out) in torchvision's layout: for the kernel tap
    k = i * kw + j, channel 2k holds the row (y) shift and channel 2k + 1 the column (x) shift.
    """
    batch, c_in, _, _ = x.shape
    c_out, c_w, kh, kw = weight.shape
    if c_w != c_in:
        raise ValueError(f"deform_conv2d: weight expects {c_w} input channels, "
                         f"the input has {c_in}")
    if offset.shape[1] != 2 * kh * kw:
        raise ValueError(f"deform_conv2d: offset needs {2 * kh * kw} channels for a {kh}x{kw} "
                         f"kernel, got {offset.shape[1]}")
    h_out, w_out = offset.shape[-2:]
    ys, xs = _sampling_positions(offset, (kh, kw), _pair(stride), _pair(padding), _pair(dilation))
    columns = _bilinear_zero_padded(x, ys, xs)  # (B, C_in, kh * kw * H_out * W_out)
    out = weight.reshape(c_out, -1) @ columns.reshape(batch, c_in * kh * kw, -1)
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(batch, c_out, h_out, w_out)


def _sampling_positions(offset: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                        padding: tuple[int, int], dilation: tuple[int, int]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute input row and column, (B, kh * kw, H_out, W_out) each, that every tap reads."""
    batch, _, h_out, w_out = offset.shape
    kh, kw = kernel
    shifts = offset.reshape(batch, kh * kw, 2, h_out, w_out)

    def grid(n_out: int, n_taps: int, axis: int) -> torch.Tensor:
        # integer part of the position, (taps, out): tap * dilation + out * stride - padding
        out = torch.arange(n_out, device=offset.device) * stride[axis] - padding[axis]
        taps = torch.arange(n_taps, device=offset.device) * dilation[axis]
        return (taps[:, None] + out[None, :]).to(offset.dtype)

    rows = grid(h_out, kh, 0).repeat_interleave(kw, dim=0)[:, :, None]  # (K, H_out, 1)
    cols = grid(w_out, kw, 1).repeat(kh, 1)[:, None, :]                 # (K, 1, W_out)
    return rows + shifts[:, :, 0], cols + shifts[:, :, 1]


def _bilinear_zero_padded(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``x`` at the positions (B, ...) -> (B, C, prod(...)); a neighbour
    outside the image contributes zero (torchvision's rule, unlike a border clamp)."""
    batch, channels, height, width = x.shape
    ys, xs = ys.reshape(batch, 1, -1), xs.reshape(batch, 1, -1)
    y0, x0 = ys.floor(), xs.floor()
    ly, lx = ys - y0, xs - x0
    hy, hx = 1 - ly, 1 - lx
    y0, x0 = y0.long(), x0.long()
    flat = x.reshape(batch, channels, height * width)
    corners = ((y0, x0, hy * hx), (y0, x0 + 1, hy * lx),
               (y0 + 1, x0, ly * hx), (y0 + 1, x0 + 1, ly * lx))
    return sum(_gather_corner(flat, row, col, corner_weight, height, width)
               for row, col, corner_weight in corners)


def _gather_corner(flat: torch.Tensor, row: torch.Tensor, col: torch.Tensor, weight: torch.Tensor,
                   height: int, width: int) -> torch.Tensor:
    """One bilinear neighbour's weighted values, zero where it lies outside the image."""
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    index = row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
    values = torch.gather(flat, 2, index.expand(-1, flat.shape[1], -1))
    return values * (weight * inside)


class DeformConv2d(nn.Module):
    """ALIKED's deformable 3x3 convolution: a plain convolution predicts the offsets (no
    modulation mask), which are clamped to a quarter of the larger side of the feature map, and the
    weights of ``regular_conv`` are applied at the shifted positions. The submodule names are those
    of the official checkpoints (``offset_conv.*``, ``regular_conv.weight``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int = 1) -> None:
        super().__init__()
        self.padding = padding
        self.offset_conv = nn.Conv2d(in_channels, 2 * kernel_size * kernel_size, kernel_size,
                                     padding=padding, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                                      bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        max_offset = max(x.shape[-2:]) / 4.0
        offset = self.offset_conv(x).clamp(-max_offset, max_offset)
        return deform_conv2d(x, offset, self.regular_conv.weight, self.regular_conv.bias,
                             padding=self.padding)
