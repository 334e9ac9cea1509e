"""Command line: ``python -m hdr predict|evaluate|push|read|ensemble ...``."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from hdr.evaluate import evaluate_folder, evaluate_mnist
from hdr.loading import InvalidImageError
from hdr.recognizer import Recognizer


def add_model_options(parser: argparse.ArgumentParser, line_reader: bool = False) -> None:
    parser.add_argument("--model", default=None, help="model folder or hub repo id (default: the shipped model)")
    parser.add_argument("--revision", default=None, help="hub branch, tag or commit")
    if line_reader:
        parser.add_argument("--line-reader", default=None,
                            help="line reader (whole numbers): folder or hub repo id (default: the shipped one)")
        parser.add_argument("--line-reader-revision", default=None, help="hub branch, tag or commit of --line-reader")


def report_each(paths: list[str], analyse, summary, as_json: bool) -> int:
    """Print one line (or one JSON object) per image; unreadable images are reported, not fatal."""
    failures = 0
    for path in paths:
        try:
            result = analyse(path)
            record, line = {"file": path, **result.to_dict()}, f"{path}: {summary(result)}"
        except (InvalidImageError, OSError) as error:
            failures += 1
            record, line = {"file": path, "error": str(error)}, f"{path}: error: {error}"
        print(json.dumps(record) if as_json else line)
    return 1 if failures else 0


def run_predict(args: argparse.Namespace) -> int:
    """One digit per image."""
    recognizer = Recognizer.from_pretrained(args.model, args.revision)

    def summary(prediction) -> str:
        answer = f"{prediction.digit} ({prediction.confidence:.1%})"
        if prediction.several_digits:
            return answer + "  unsure: looks like several digits (read a number with: python -m hdr read)"
        return answer + ("  unsure: may not be a digit" if prediction.unsure else "")

    return report_each(args.images, recognizer.predict, summary, args.json)


def run_evaluate(args: argparse.Namespace) -> int:
    """Accuracy, per-class accuracy and a confusion-matrix picture on MNIST test or a labelled folder."""
    recognizer = Recognizer.from_pretrained(args.model, args.revision)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.folder:
        report = evaluate_folder(recognizer, Path(args.folder), output / "confusion_matrix.png")
    else:
        report = evaluate_mnist(recognizer, args.data_root, output / "confusion_matrix.png")
    (output / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['dataset']}: accuracy {report['accuracy']:.2%} on {report['images']} images"
              f" ({report['errors']} wrong, {report['unsure']} flagged unsure, {report['unreadable']} unreadable)")
        print("per class: " + "  ".join(f"{digit}: {value:.2%}" for digit, value in report["per_class_accuracy"].items()))
        print(f"confusion matrix: {output / 'confusion_matrix.png'}")
    return 0


def add_push_command(commands) -> None:
    """``push CHECKPOINT_DIR --repo USER/NAME [--revision BRANCH] [--tag v3] [--private]``."""

    def run_push(args: argparse.Namespace) -> int:
        from hdr.hub import push_model, push_error_message

        try:
            commit = push_model(args.folder, args.repo, args.revision, args.tag, args.private, args.message)
        except Exception as error:
            print(f"error: {push_error_message(error)}", file=sys.stderr)
            return 1
        tag = f", tagged {args.tag}" if args.tag else ""
        print(f"pushed {args.folder} to {args.repo} @ {args.revision or 'main'}: commit {commit}{tag}")
        return 0

    push = commands.add_parser("push", help="upload an exported model folder to a Hugging Face model hub")
    push.add_argument("folder", help="model folder (digit model or line reader) with config.json, "
                                     "model.safetensors and README.md")
    push.add_argument("--repo", required=True, help="hub repo id, USER/NAME (created if missing)")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--tag", default=None, help="tag to put on the new commit, e.g. v3")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--message", default=None, help="commit message")
    push.set_defaults(handler=run_push)


def add_ensemble_command(commands) -> None:
    """``ensemble RUN... --output DIR``: combine training runs of one recipe into one calibrated model."""

    def run_ensemble(args: argparse.Namespace) -> int:
        from hdr.ensemble import build_ensemble
        from hdr.hub import ModelLoadError

        command = "python -m hdr " + shlex.join(sys.argv[1:])
        try:
            metrics = build_ensemble([Path(run) for run in args.runs], Path(args.output), args.data_root,
                                     args.escalate_below, command)
        except (OSError, ValueError, ModelLoadError) as error:  # missing files, runs that do not fit together
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{len(args.runs)} members → {args.output}: MNIST test accuracy {metrics['mnist_test_accuracy']:.2%} "
              f"(validation {metrics['mnist_val_accuracy']:.2%}), "
              f"{metrics['mnist_test_share_read_by_all_members']:.1%} of the test digits read by all members")
        return 0

    ensemble = commands.add_parser("ensemble", help="combine digit-model training runs (other seeds) into one model")
    ensemble.add_argument("runs", nargs="+", help="run folders of train.py (each with model/ and version_*/)")
    ensemble.add_argument("--output", required=True, help="where the ensemble model folder is written")
    ensemble.add_argument("--data-root", default="../shared/data", help="MNIST root (torchvision layout)")
    ensemble.add_argument("--escalate-below", type=float, default=0.99,
                          help="consult all members when the first one's top probability is below this (default 0.99)")
    ensemble.set_defaults(handler=run_ensemble)


def add_read_command(commands) -> None:
    """``read IMAGE... [--json]``: read a whole number from each image."""

    def run_read(args: argparse.Namespace) -> int:
        recognizer = Recognizer.from_pretrained(args.model, args.revision, args.line_reader, args.line_reader_revision)
        for name, source in (("model", recognizer.source), ("line reader", recognizer.line_reader_source)):
            if source.note:  # e.g. the hub was unreachable and the shipped model is used instead
                print(f"hdr: {name}: {source.describe()}", file=sys.stderr)

        def summary(reading) -> str:
            return f"{reading.one_line()} ({reading.confidence:.1%})" + ("  unsure" if reading.unsure else "")

        return report_each(args.images, recognizer.read, summary, args.json)

    read = commands.add_parser("read", help="read a whole number (several digits) from each image")
    read.add_argument("images", nargs="+", help="image files (PNG, JPEG, WEBP, BMP, GIF, TIFF)")
    read.add_argument("--json", action="store_true", help="one JSON object per line")
    add_model_options(read, line_reader=True)
    read.set_defaults(handler=run_read)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hdr", description="Handwritten digit recognition.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="read one digit from each image")
    predict.add_argument("images", nargs="+", help="image files (PNG, JPEG, WEBP, BMP, GIF, TIFF)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    add_model_options(predict)
    predict.set_defaults(handler=run_predict)

    evaluate = commands.add_parser("evaluate", help="accuracy on MNIST test or on a labelled folder")
    evaluate.add_argument("--folder", help="labelled images as FOLDER/<digit>/*.png (default: MNIST test)")
    evaluate.add_argument("--data-root", default="../shared/data", help="MNIST root (torchvision layout)")
    evaluate.add_argument("--output", default="evaluation", help="where the report and confusion matrix go")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    add_model_options(evaluate)
    evaluate.set_defaults(handler=run_evaluate)
    add_push_command(commands)
    add_read_command(commands)
    add_ensemble_command(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.handler(args))
