"""``python -m edge_classify ARTIFACT (FOLDER | --frames PATH|- --frame-size WxH) [--batch N] [--json OUT]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge_classify.classify import Classifier, Summary, folder_images, raw_frames


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edge_classify", description="Classify images with an edgekd artifact.")
    p.add_argument("artifact", help="artifact folder (e.g. build/x86-cpu-onnxruntime), artifact.json or model file")
    p.add_argument("folder", nargs="?", help="folder of images (recursive); <class>/<image> also gives accuracy")
    p.add_argument("--frames", help="raw frame stream: a file, or - for stdin (e.g. from ffmpeg -f rawvideo)")
    p.add_argument("--frame-size", help="WxH of each raw frame, e.g. 64x64")
    p.add_argument("--frame-format", choices=("rgb", "gray"), default="rgb", help="rgb24 or 8-bit gray frames")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--batch", type=int, default=32, help="images per runtime call")
    p.add_argument("--threads", type=int, default=1, help="runtime threads")
    p.add_argument("--json", type=Path, help="also write the summary as JSON here")
    p.add_argument("--predictions", type=Path, help="write name,label,probability per image (CSV)")
    args = p.parse_args(argv)
    if (args.folder is None) == (args.frames is None):
        p.error("give a FOLDER or --frames, not both")
    if args.frames is not None and not args.frame_size:
        p.error("--frames needs --frame-size WxH")
    return args


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"edge_classify: --frame-size must look like 64x64, got {text!r}") from None
    return w, h


def render(summary: Summary) -> str:
    """The human-readable report: throughput, then one line per class."""
    lines = [f"{summary.images} images in {summary.seconds:.3f} s: {summary.images_per_second:.1f} images/s "
             f"({summary.inference_seconds:.3f} s in the {summary.backend} runtime, target {summary.target})"]
    if summary.accuracy is not None:
        lines.append(f"accuracy on {summary.labelled} labelled images: {summary.accuracy * 100:.2f}%")
    width = max((len(k) for k in summary.counts), default=5)
    lines += [f"  {label:<{width}}  {n:6d}" for label, n in sorted(summary.counts.items())]
    lines += [f"skipped {name}: {reason}" for name, reason in summary.skipped]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    classifier = Classifier(args.artifact, threads=args.threads)
    if args.folder is not None:
        if not Path(args.folder).is_dir():
            raise SystemExit(f"edge_classify: {args.folder} is not a folder")
        summary = classifier.classify(folder_images(args.folder), args.batch)
    else:
        width, height = _frame_size(args.frame_size)
        stream = sys.stdin.buffer if args.frames == "-" else open(args.frames, "rb")  # noqa: SIM115
        with stream:
            summary = classifier.classify(raw_frames(stream, width, height, args.frame_format, args.max_frames),
                                          args.batch)
    try:
        print(render(summary), flush=True)
    except BrokenPipeError:  # piped into `head`: the report was cut, the run succeeded (Python docs' recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.json:
        args.json.write_text(json.dumps(summary.to_json(), indent=2))
    if args.predictions:
        args.predictions.write_text("name,label,probability\n" + "".join(
            f"{n},{label},{p:.6f}\n" for n, label, p in summary.predictions))
    return 0 if summary.images else 1


if __name__ == "__main__":
    sys.exit(main())
