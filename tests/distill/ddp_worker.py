"""Run by test_ddp.py under torchrun (and alone): distill on digits, rank 0 writes the accuracy."""

import json
import sys

import torch

import edgekd
from edgekd.data import load_dataset, split
from edgekd.distill import ddp, evaluate, fit, TrainConfig
from edgekd.distill.losses import CE
from edgekd.models import TeacherCNN, create_student

torch.set_num_threads(1)
out = sys.argv[1]
ctx = ddp.setup()
val, train = split(load_dataset("digits").train, 360, seed=0)
torch.manual_seed(0)
teacher = TeacherCNN((1, 8, 8), 10, width=8)
fit(teacher, train, None, CE(), None, TrainConfig(epochs=3, lr=5e-3, progress=False))  # same on every rank
torch.manual_seed(1)
student = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 16))
model = edgekd.distill(teacher, student, train, val, epochs=3, lr=5e-3, batch_size=64, out_dir=out,
                       progress=False)
first = next(model.parameters()).detach().flatten()[:8].tolist()
if ctx.is_main:
    with open(f"{out}/result.json", "w") as fh:
        json.dump({"world": ctx.world, "accuracy": evaluate(model, val), "param0": first}, fh)
else:
    with open(f"{out}/rank{ctx.rank}.json", "w") as fh:
        json.dump({"param0": first}, fh)
ddp.teardown()
