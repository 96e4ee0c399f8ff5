"""Built-in executors: where sweep cells and tuning workers run.

``local`` runs them in this process, one at a time (what ``mmbench sweep`` always did);
``process`` in a pool of local worker processes, each with its own thread count and GPU;
``ray`` as tasks on a Ray cluster; ``slurm`` as SLURM (array) jobs through submitit. Importing
this package imports neither Ray nor submitit: an engine is imported when its executor starts.
Install them with ``pip install 'mmbench[ray]'`` or ``pip install 'mmbench[slurm]'``.
"""

from __future__ import annotations

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.executors"

_BUILTIN = (
    ("local", f"{_PKG}.local:LocalExecutor", "this process, one cell at a time"),
    ("process", f"{_PKG}.process:ProcessExecutor", "a pool of local processes, threads and a GPU each"),
    ("ray", f"{_PKG}.ray:RayExecutor", "tasks on a Ray cluster (needs the ray extra)"),
    ("slurm", f"{_PKG}.slurm:SlurmExecutor", "SLURM array jobs through submitit (needs the slurm extra)"),
)


@hookimpl
def mmbench_register_executors(registry: Registry) -> None:
    for name, target, summary in _BUILTIN:
        registry.add_executor(name, target, summary)
