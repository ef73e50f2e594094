"""datatrove executors (local, Slurm, Ray) for one stage of a data build or of the tokenize stage."""

from __future__ import annotations

import sys
from typing import Any

from ayakit.errors import DataError


def make_executor(kind: str, stage: str, pipeline: list, tasks: int, workers: int, logging_dir: str, prev: Any,
                   options: dict[str, Any]) -> Any:
    """A datatrove executor of the chosen kind for one stage."""
    if kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        if sys.platform == "linux":
            # forkserver (datatrove's default) re-imports ayakit and datatrove in every worker of every stage:
            # measured 23 s instead of 6 s for 1e5 examples on 2 cores; `executor_options: {start_method: ...}`
            options = {"start_method": "fork", **options}
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=max(1, min(workers, tasks)),
                                     logging_dir=logging_dir, **options)
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        # data.workers is a local setting: on Slurm every array task may run at once unless options say so
        opts = {"time": "24:00:00", "partition": "cpu", "job_name": f"ayakit-data-{stage}", **options}
        return SlurmPipelineExecutor(pipeline=pipeline, tasks=tasks, logging_dir=logging_dir, depends=prev, **opts)
    if kind == "ray":
        try:
            import ray
        except ImportError:
            raise DataError("the ray executor needs ray: pip install 'ayakit[ray]'") from None
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True)
        return RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                   **options)
    raise DataError(f"unknown executor {kind!r}: choose local, slurm or ray")
