"""Peak memory of an unlabeled image folder at real resolution: held in memory vs read from the build's cache.

Writes ``--images`` 224×224 RGB crops of scikit-image's photos to a folder, then, in a fresh process per
mode, prepares the data as a build does (decode, hold out 20 %), labels nothing (no teacher needed to
measure the data path) and reads ``--epochs`` epochs of random batches of 64 as training does. Reports
the process's peak anonymous memory (what the OS cannot reclaim; sampled every 50 ms), its peak RSS
(which also counts the cache file's pages while they are resident: clean, reclaimable) and the wall
time of each phase; JSON in bench/results/disk_images.json.

    python bench/disk_images.py --images 3000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def write_folder(folder: Path, count: int, size: int = 224) -> None:
    from PIL import Image
    from skimage import data as photos

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"]
    images = [np.asarray(getattr(photos, n)()) for n in names]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        y, x = rng.integers(0, h - size), rng.integers(0, w - size)
        crop = img[y : y + size, x : x + size]
        Image.fromarray(crop[:, ::-1] if i % 2 else crop).save(folder / f"{i:05d}.png")


def _anon_mb() -> float:
    """Resident anonymous memory now (process memory the OS cannot drop; mapped file pages are not in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(folder: Path, cache: Path, epochs: int) -> dict:
    import threading

    import torch

    from edgekd.stages import prepare_data

    peak = {"anon": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak["anon"] = max(peak["anon"], _anon_mb())

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    data = prepare_data(None, None, None, None, 0.2, 0, data_dir=folder, image_size=224, channels=3,
                        cache_dir=cache)
    prepared = time.perf_counter()
    total = 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order), 64):
            total += float(data.train.x[order[i : i + 64]].mean())
    done.set()
    return {"prepare_s": prepared - started, "read_epochs_s": time.perf_counter() - prepared,
            "peak_anon_mb": max(peak["anon"], _anon_mb()),
            "train_images": len(data.train), "val_images": len(data.val), "mapped": data.train.disk is not None,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "checksum": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        write_folder(folder, args.images)
        rows = {}
        for mode, limit in (("in memory", "1000000"), ("from disk", "0")):
            env = {**os.environ, "EDGEKD_IN_MEMORY_MB": limit}
            out = subprocess.run([sys.executable, __file__, "--child", str(folder), str(Path(tmp) / mode),
                                  str(args.epochs)], capture_output=True, text=True, env=env, check=True)
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:10s} peak anonymous {rows[mode]['peak_anon_mb']:6.0f} MB, peak RSS with mapped file pages "
                  f"{rows[mode]['peak_rss_mb']:6.0f} MB  prepare {rows[mode]['prepare_s']:6.1f} s"
                  f"  {args.epochs} epochs of reads {rows[mode]['read_epochs_s']:6.1f} s")
    float_mb = args.images * 3 * 224 * 224 * 4 / 2**20
    result = {"images": args.images, "input_shape": [3, 224, 224], "float32_mb": float_mb, "epochs": args.epochs,
              "modes": rows, "cpus": len(os.sched_getaffinity(0))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "disk_images.json").write_text(json.dumps(result, indent=2))
    print(f"dataset as float32: {float_mb:.0f} MB; results in {RESULTS / 'disk_images.json'}")


if __name__ == "__main__":
    main()
