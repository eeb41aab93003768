"""The devices and CPU threads the backends run on, checked before anything is built."""
from __future__ import annotations

import torch

from ..errors import BackendError


def torch_device(name: str) -> torch.device:
    """The device named in the config, or a clear error when CUDA is asked for and absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device '{name}' requested but CUDA is not available to torch "
                           f"{torch.__version__} here; use device:=cpu")
    return device


def set_cpu_threads(threads: int) -> None:
    """torch's intra-op threads (process-wide, as torch has it); 0 keeps the library default."""
    if threads:
        torch.set_num_threads(threads)
