"""Combine training runs of one recipe (different seeds) into one ensemble :class:`DigitNet`, calibrated and measured.

A run is the folder of one ``train.py`` run of the digit classifier: its export in ``model/`` and its logs in
``version_*/`` (the CSVLogger's ``save_dir/name``), e.g. ``checkpoints/runs/mnist_seed7``.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from hdr.datamodule import MNISTDataModule
from hdr.export import calibrate_and_save
from hdr.hub import load_folder
from hdr.mnist import SPLIT_SEED, VALIDATION_SIZE
from hdr.model import DigitNet
from hdr.plots import learning_curves_figure


def combine(model_folders: list[Path], escalate_below: float | None) -> DigitNet:
    """One :class:`DigitNet` whose members are the single-network models in ``model_folders``, in that order."""
    nets = [load_folder(folder) for folder in model_folders]
    first = nets[0]
    for folder, net in zip(model_folders, nets):
        if len(net.members) != 1 or (net.widths, net.dropout) != (first.widths, first.dropout):
            raise ValueError(f"{folder} is not a single network with widths={first.widths}, dropout={first.dropout}")
    ensemble = DigitNet(widths=first.widths, dropout=first.dropout, members=len(nets), escalate_below=escalate_below)
    for member, net in zip(ensemble.members, nets):
        member.load_state_dict(net.members[0].state_dict())
    return ensemble.eval()


def latest_log(run: Path) -> Path:
    """The ``metrics.csv`` of a run's latest ``version_*`` folder."""
    logs = sorted(run.glob("version_*/metrics.csv"), key=lambda path: int(path.parent.name.split("_")[1]))
    if not logs:
        raise FileNotFoundError(f"no version_*/metrics.csv under {run}")
    return logs[-1]


def member_summary(run: Path) -> dict:
    """A run's seed, validation split and measured figures, from its export's ``train_config.yaml`` and
    ``metrics.json``."""
    metrics = json.loads((run / "model" / "metrics.json").read_text())
    config = yaml.safe_load((run / "model" / "train_config.yaml").read_text())
    data = config["data"].get("init_args", config["data"])  # configs written without class_path hold it directly
    minutes, seconds = divmod(int(metrics["training_seconds"]), 60)
    return {"run": run.name, "seed": config.get("seed_everything"),
            "split": {"val_size": data.get("val_size", VALIDATION_SIZE), "split_seed": data.get("split_seed", SPLIT_SEED)},
            "val_accuracy": metrics["mnist_val_accuracy"], "test_accuracy": metrics["mnist_test_accuracy"],
            "training_seconds": metrics["training_seconds"], "training_time": f"{minutes} min {seconds} s"}


def build_ensemble(runs: list[Path], output: Path, data_root: str, escalate_below: float | None, command: str) -> dict:
    """Combine ``runs`` into an ensemble, fit its calibration on the validation split the runs were selected on
    (they must share it), measure it on the test split and save it with a model card to ``output``."""
    if len(runs) < 2:
        raise ValueError("an ensemble needs at least two runs")
    net = combine([run / "model" for run in runs], escalate_below)
    members = [member_summary(run) for run in runs]
    split = members[0]["split"]
    if any(member["split"] != split for member in members):
        raise ValueError("the runs were validated on different splits: " + ", ".join(
            f"{member['run']} {member['split']}" for member in members))
    output.mkdir(parents=True, exist_ok=True)
    learning_curves_figure({f"seed {member['seed']}": latest_log(run) for member, run in zip(members, runs)},
                           output / "learning_curves.png")
    data = MNISTDataModule(data_root=data_root, download=False, **split)
    data.setup("fit")
    return calibrate_and_save(net, data, output, command, sum(m["training_seconds"] for m in members),
                              runs[0] / "model" / "train_config.yaml", init_from=None, members=members)
