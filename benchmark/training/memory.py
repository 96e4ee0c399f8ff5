"""Peak memory of a block of work: CUDA allocator peak, or the process's peak RSS on CPU.

On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's peak-RSS counter
(VmHWM), so the peak can be measured per run instead of per process; elsewhere the process-wide
peak (``ru_maxrss``) is reported.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _vm_hwm() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager; ``bytes`` holds the peak after exit."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes = 0
        self._reset = False

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._reset = _reset_hwm()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated())
            return
        hwm = _vm_hwm() if self._reset else None
        self.bytes = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
