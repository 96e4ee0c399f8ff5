"""The run's own peak memory: the increase over what was in use when the run started.

* CUDA: ``torch.cuda.max_memory_allocated`` during the block minus ``memory_allocated`` at its
  start: the tensors the run allocates on the device (model, optimizer state, gradients,
  activations, the best-epoch copy of the weights), not the data splits already on the device and
  not the CUDA context or the caching allocator's reserve.
* CPU: the process's peak resident set size (VmHWM) during the block minus the resident size at
  its start. On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's peak counter
  to the current size, so the peak is measured per run; the data already loaded and the torch
  runtime are in the baseline and do not count. Memory that an earlier run in the same process
  freed and the allocator kept is reused without raising the resident size, so later runs of a
  sweep can show a smaller increment than the first: compare runs made the same way. Where the
  counter cannot be reset (not Linux), the process-wide peak (``ru_maxrss``) minus the starting
  size is reported, an upper bound.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
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
    """Context manager; after exit ``bytes`` holds the block's peak increase (bytes, >= 0) and
    ``source`` what was measured (``cuda-allocated``, ``rss`` or ``rss-process-peak``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes = 0
        self.source = ""
        self._reset = False
        self._start = 0

    def __enter__(self) -> PeakMemory:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> PeakMemory:
        """Take the baseline and reset the peak counter."""
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
            self._start = int(torch.cuda.memory_allocated())
        else:
            self._start = _status_bytes("VmRSS") or 0
            self._reset = _reset_hwm()
        return self

    def stop(self) -> None:
        """Set ``bytes`` and ``source``."""
        if self.device.startswith("cuda"):
            import torch

            self.bytes = max(0, int(torch.cuda.max_memory_allocated()) - self._start)
            self.source = "cuda-allocated"
            return
        hwm = _status_bytes("VmHWM") if self._reset else None
        if hwm is not None:
            self.bytes, self.source = max(0, hwm - self._start), "rss"
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.bytes, self.source = max(0, peak - self._start), "rss-process-peak"
