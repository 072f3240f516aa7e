"""Tiny real careamics trainings for tests: a 64x64 image trains an N2V model in about a second."""

from __future__ import annotations

from typing import Any

import numpy as np


def tiny_config(**overrides: Any) -> Any:
    """An N2V configuration small enough to train on the CPU in a test (7 batches per epoch)."""
    from careamics.config import create_advanced_n2v_config

    params: dict[str, Any] = {
        "experiment_name": "tiny",
        "data_type": "array",
        "axes": "YX",
        "patch_size": (16, 16),
        "batch_size": 2,
        "num_epochs": 2,
        "masked_pixel_percentage": 5,
        "roi_size": 5,
        "n_val_patches": 2,
        "seed": 42,
    }
    params.update(overrides)
    return create_advanced_n2v_config(**params)


def tiny_image(shape: tuple[int, ...] = (64, 64), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)
