"""Ensembles: several trained networks served as one DigitNet, and `python -m hdr ensemble` that builds one."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from hdr import Recognizer
from hdr.model import MNIST_MEAN, MNIST_STD, DigitNet
from tests.conftest import REPO
from tests.test_training import run_train


def test_an_ensemble_keeps_its_first_members_answer_where_it_is_sure_and_averages_all_members_elsewhere():
    torch.manual_seed(0)
    net = DigitNet(widths=[8, 16], members=3).eval()
    images = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        each = torch.stack([member((images - MNIST_MEAN) / MNIST_STD) for member in net.members])
        first_confidence = each[0].softmax(-1).max(-1).values
        net.escalate_below = float(first_confidence.median())
        logits = net(images)
    hard = first_confidence < net.escalate_below
    assert 0 < hard.sum() < len(images)
    assert torch.allclose(logits[~hard], each[0][~hard])
    assert torch.allclose(logits[hard], each.mean(0)[hard], atol=1e-6)
    assert not torch.allclose(logits[hard], each[0][hard])

    net.escalate_below = None  # no threshold: always all members
    with torch.no_grad():
        assert torch.allclose(net(images), each.mean(0), atol=1e-6)


def test_weights_are_saved_in_half_precision_and_load_back_as_they_were_measured(tmp_path):
    net = DigitNet(widths=[8, 16], members=2, escalate_below=0.99)
    net.load_state_dict(net.stored_state())  # what calibrate_and_save does before measuring
    net.save_pretrained(tmp_path)
    loaded = DigitNet.from_pretrained(tmp_path)
    stored = safetensors.torch.load_file(tmp_path / "model.safetensors")
    assert {value.dtype for value in stored.values()} == {torch.float16, torch.int64}  # int64: batch-norm counters
    assert loaded.escalate_below == 0.99 and next(loaded.parameters()).dtype == torch.float32
    for name, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def run_ensemble(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hdr", "ensemble", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, data_root):
    """Two tiny runs of configs/smoke.yaml with different seeds, as train.py leaves them (model/ and version_0/)."""
    folder = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        result = run_train(folder, "--seed_everything", str(seed), "--trainer.logger.init_args.name", f"seed{seed}",
                           "--export_dir", str(folder / "runs" / f"seed{seed}" / "model"))
        assert result.returncode == 0, result.stderr[-3000:]
    return [folder / "runs" / "seed0", folder / "runs" / "seed1"]


def test_the_ensemble_command_combines_runs_into_one_calibrated_model_with_its_card(two_runs, tmp_path, data_root):
    output = tmp_path / "ensemble"
    result = run_ensemble(*map(str, two_runs), "--output", str(output), "--data-root", str(data_root))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 members" in result.stdout

    config = json.loads((output / "config.json").read_text())
    metrics = json.loads((output / "metrics.json").read_text())
    assert config["members"] == 2 and config["escalate_below"] == 0.99 and config["widths"] == [8, 16]
    assert config["temperature"] == metrics["temperature"] and config["min_evidence"] == metrics["min_evidence"]
    assert [member["seed"] for member in metrics["members"]] == [0, 1]
    assert 0 < metrics["mnist_test_share_read_by_all_members"] <= 1
    card = (output / "README.md").read_text()
    assert card.count("| seed0 | 0 |") == 1 and card.count("| seed1 | 1 |") == 1
    assert "An ensemble of 2 small CNNs" in card and "python -m hdr ensemble" in card
    assert f"| mnist_test_accuracy | {metrics['mnist_test_accuracy']} |" in card
    for picture in ("learning_curves.png", "confusion_matrix.png"):
        assert (output / picture).stat().st_size > 10_000, picture

    # The members are the runs' networks, unchanged apart from half-precision storage.
    recognizer = Recognizer.from_pretrained(str(output))
    for member, run in zip(recognizer.model.members, two_runs):
        single = Recognizer.from_pretrained(str(run / "model")).model.members[0]
        for name, value in single.state_dict().items():
            assert torch.allclose(member.state_dict()[name].float(), value.float(), rtol=1e-3, atol=1e-3), name

    # Trained further (as the pen stage trains the shipped ensemble), it keeps its members' table on the new card.
    further = run_train(tmp_path, "--model.members", "2", "--model.init_from", str(output),
                        "--export_dir", str(tmp_path / "further"))
    assert further.returncode == 0, further.stderr[-3000:]
    card = (tmp_path / "further" / "README.md").read_text()
    assert card.count("| seed0 | 0 |") == 1 and "trained them further, together" in card
    assert json.loads((tmp_path / "further" / "metrics.json").read_text())["members"] == metrics["members"]


def test_the_ensemble_command_refuses_runs_that_do_not_fit_together(two_runs, tmp_path, data_root):
    result = run_ensemble(str(two_runs[0]), "--output", str(tmp_path / "one"))
    assert result.returncode == 1 and "at least two runs" in result.stderr
    result = run_ensemble(str(two_runs[0]), str(tmp_path / "nothing"), "--output", str(tmp_path / "two"))
    assert result.returncode == 1 and "nothing" in result.stderr and "Traceback" not in result.stderr

    other = tmp_path / "wide"  # a run of another width cannot join
    trained = run_train(other, "--model.widths", "[8, 24]", "--export_dir", str(other / "runs" / "smoke" / "model"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = run_ensemble(str(two_runs[0]), str(other / "runs" / "smoke"), "--output", str(tmp_path / "three"))
    assert result.returncode == 1 and "is not a single network with widths=[8, 16]" in result.stderr
    assert not (tmp_path / "three").exists()


def test_the_shipped_model_is_the_ensemble_its_card_describes():
    folder = REPO / "checkpoints" / "hdr-mnist"
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    card = (folder / "README.md").read_text()
    assert config["members"] == len(metrics["members"]) > 1
    assert f"An ensemble of {config['members']} small CNNs" in card
    assert (folder / "model.safetensors").stat().st_size < 5_000_000  # "a few MB at most"
