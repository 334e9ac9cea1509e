"""Train a model from a YAML config, test it, and export it in the Hugging Face format.

    python train.py --config configs/mnist.yaml      # the digit classifier
    python train.py --config configs/lines.yaml      # the line reader (whole numbers)
    python train.py --config configs/mnist.yaml --ckpt_path checkpoints/runs/mnist/version_0/checkpoints/last.ckpt

The config names the LightningModule and LightningDataModule (``class_path``).

Any config value can be overridden on the command line (``--trainer.max_epochs 5``,
``--data.data_root ~/data``); ``python train.py --help`` lists them all.
"""
from __future__ import annotations

import shlex
import sys
import time

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from hdr.export import export_line_model, export_model
from hdr.lit_module import DigitClassifier


class TrainCLI(LightningCLI):
    """LightningCLI plus the options of a whole run: threads, resume, export."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="checkpoint to resume from")
        parser.add_argument("--export_dir", type=str, default="checkpoints/runs/model", help="where the best model is exported")

    def before_instantiate_classes(self) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)


def main() -> None:
    cli = TrainCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                   run=False, save_config_kwargs={"overwrite": True})
    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    started = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=cli.config.ckpt_path)
    training_seconds = time.perf_counter() - started
    best = trainer.checkpoint_callback.best_model_path
    export = export_line_model
    if isinstance(module, DigitClassifier):
        # Loaded directly (not via ckpt_path) so the test sees the weights that get exported: with
        # EMAWeightAveraging the checkpoint's state_dict holds the averaged weights.
        trainer.test(DigitClassifier.load_from_checkpoint(best), datamodule=data)
        export = export_model
    command = "python " + shlex.join(sys.argv)
    export(best, data, cli.config.export_dir, command=command, training_seconds=training_seconds,
           log_dir=trainer.logger.log_dir)


if __name__ == "__main__":
    main()
