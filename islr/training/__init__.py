"""Training: config (dataclasses + YAML), data batching with augmentation, the loop."""

from islr.training.config import TrainConfig, config_from_dict, load_config, save_config
from islr.training.data import TrainingData, load_training_data
from islr.training.loop import EpochRecord, TrainResult, train

__all__ = [
    "EpochRecord",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "config_from_dict",
    "load_config",
    "load_training_data",
    "save_config",
    "train",
]
