"""Training: QLoRA over a materialized mix, run registry and exposure ledger."""

from training.config import TrainConfig, load_config
from training.errors import TrainingError
from training.models import load_for_inference, load_for_training
from training.run_import import ImportResult, import_run
from training.runs import Run, get_run, impact, list_runs
from training.trainer import RunResult, train

__all__ = [
    "ImportResult",
    "Run",
    "RunResult",
    "TrainConfig",
    "TrainingError",
    "get_run",
    "impact",
    "import_run",
    "list_runs",
    "load_config",
    "load_for_inference",
    "load_for_training",
    "train",
]
