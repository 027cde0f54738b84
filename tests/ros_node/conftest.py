from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained anyseg_tiny checkpoint for all four modalities (fast on CPU)."""
    from anyseg_model import create_model, save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "anyseg_tiny.pt"
    save_checkpoint(
        create_model("anyseg_tiny", num_classes=25, modalities=("rgb", "depth", "event", "lidar")),
        path,
    )
    return path
