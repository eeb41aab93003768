"""Turn user and camera images into the float tensors the extractors expect, or say why not."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ImageError

MIN_SIZE = 16  # smaller images hold no detectable structure for any of the networks
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as kornia's rgb_to_grayscale


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB (or grayscale) keeping its bit depth."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"cannot read image {path} (missing or not an image)")
    return from_opencv(image)


def from_opencv(image: np.ndarray) -> np.ndarray:
    """An image as OpenCV decodes files (BGR or BGRA) in the channel order of the core (RGB)."""
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def to_float(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] from uint8, uint16 or float input; rejects what cannot be used."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.size == 0:
        raise ImageError(f"empty image of shape {image.shape}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageError(f"unsupported image shape {image.shape}: need HxW, HxWx1, HxWx3 or HxWx4")
    h, w = image.shape[:2]
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ImageError(f"image of {w}x{h} pixels is too small (at least {MIN_SIZE}x{MIN_SIZE})")
    if image.shape[2] == 4:
        image = image[..., :3]  # alpha carries no texture
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ImageError("image contains NaN or Inf values")
        return np.clip(image.astype(np.float32), 0.0, 1.0)
    raise ImageError(f"unsupported image dtype {image.dtype}: need uint8, uint16 or float")


def to_gray8(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey image, e.g. for optical flow; rejects what ``to_float`` rejects."""
    img = to_float(image)
    if img.shape[2] == 3:
        img = img @ np.asarray(GRAY_WEIGHTS, np.float32)
    return np.rint(img.reshape(img.shape[:2]) * 255.0).astype(np.uint8)


def resize_scale(width: int, height: int, resize: int) -> float:
    """Scale factor that makes the longer side ``resize`` pixels (1 when resize is 0)."""
    return 1.0 if resize <= 0 else resize / max(width, height)


def to_tensor(image: np.ndarray, channels: int, resize: int = 0) -> tuple[torch.Tensor, float]:
    """(1, channels, H', W') float32 tensor and the scale applied (H' = round(H * scale))."""
    img = to_float(image)
    h, w = img.shape[:2]
    scale = resize_scale(w, h, resize)
    if scale != 1.0:
        size = (max(round(w * scale), MIN_SIZE), max(round(h * scale), MIN_SIZE))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, size, interpolation=interp)
        img = img[..., None] if img.ndim == 2 else img
    if channels == 1 and img.shape[2] == 3:
        img = (img @ np.asarray(GRAY_WEIGHTS, np.float32))[..., None]
    elif channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    tensor = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    return tensor, scale
