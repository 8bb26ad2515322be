"""LHT's ``src/train.py`` in its shape: rootutils' setup, then a Hydra app that instantiates
data, model, callbacks and trainer from config and fits."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

# rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)
ROOT = next(p for p in Path(__file__).resolve().parents if (p / ".project-root").exists())
os.environ["PROJECT_ROOT"] = str(ROOT)
sys.path.insert(0, str(ROOT))


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> None:
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    trainer.fit(model=model, datamodule=datamodule)


if __name__ == "__main__":
    main()
