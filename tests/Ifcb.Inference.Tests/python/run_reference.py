#!/usr/bin/python3
"""Reference RUN results from torchvision 0.14 for the C# parity tests (run with Debian's /usr/bin/python3).

  run_reference.py prepare SPEC.json
      SPEC: {"outdir", "arch", "num_classes", "seed", "size", "calibration_images": [...],
             "lossless_sources": [...], "classify": {"NAME": {"images": [...], "norm": null | [mean, std]}}}
      Builds a seeded torchvision model whose BatchNorm statistics are calibrated on the calibration images (so scores
      differ from image to image), writes OUTDIR/model.pth (state dict) and OUTDIR/model.ptl (a neuston-style Lightning
      checkpoint dict), writes SIZE x SIZE grayscale PNGs of the lossless sources into OUTDIR/lossless/, classifies each
      named image set with neuston's transform (PIL bilinear resize, ToTensor, optional Normalize) and writes
      OUTDIR/reference.json: {"NAME": {"path": [scores...]}, "lossless_images": [...]}.

  run_reference.py inspect-h5 FILE.h5
      Prints a JSON description of an HDF5 result file: datasets (dtype, shape, compression, values) and attributes.
"""
import json
import os
import sys

import h5py
import numpy
import torch
import torchvision
from PIL import Image
from torchvision import transforms


class ModelCheckpoint:
    """Stands in for pytorch_lightning's callback class, which neuston checkpoints use as a dict key."""


def build(arch, num_classes):
    factory = getattr(torchvision.models, arch)
    if arch == "inception_v3":
        return factory(weights=None, num_classes=num_classes, aux_logits=True, init_weights=False)
    return factory(weights=None, num_classes=num_classes)


def transform(size, norm):
    steps = [transforms.Resize([size, size]), transforms.ToTensor()]
    if norm is not None:
        mean, std = ([float(v) for v in s.split(",")] for s in norm)
        mean, std = (v * 3 if len(v) == 1 else v for v in (mean, std))
        steps.append(transforms.Normalize(mean, std))
    return transforms.Compose(steps)


def load(paths, size, norm):
    t = transform(size, norm)
    return torch.stack([t(Image.open(p).convert("RGB")) for p in paths])


def prepare(spec):
    outdir = spec["outdir"]
    size = spec["size"]
    torch.manual_seed(spec["seed"])
    model = build(spec["arch"], spec["num_classes"])
    with torch.no_grad():
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        calibration = load(spec["calibration_images"], size, None)
        model(calibration)
        model.eval()
        # Centre and scale the head on the calibration features, so each class wins on some images (a random head on
        # look-alike plankton images gives every image the same class, and the winner check would prove nothing).
        head = model.fc
        model.fc = torch.nn.Identity()
        features = model(calibration)
        model.fc = head
        spread = (features @ head.weight.t()).std(dim=0)
        head.weight.div_(spread[:, None])
        head.bias.copy_(-(features.mean(dim=0) @ head.weight.t()))
    torch.save(model.state_dict(), os.path.join(outdir, "model.pth"))

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    checkpoint = {
        "epoch": 3,
        "global_step": 12,
        "pytorch-lightning_version": "1.3.8",
        "state_dict": {"model." + k: v for k, v in model.state_dict().items()},
        "callbacks": {ModelCheckpoint: {"monitor": "val_loss", "best_model_score": torch.tensor(0.25)}},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hparams_name": "hparams",
        "hyper_parameters": {
            "SRC": "training-data", "MODEL": spec["arch"], "TRAIN_ID": "train-42", "pretrained": False,
            "img_norm": ["0.5", "0.25"], "seed": spec["seed"], "split": "80:20", "class_config": None,
            "class_min": 2, "class_max": None, "flip": None, "model_id": "neuston-model", "emax": 60, "emin": 16,
            "estop": 10, "batch_size": 108, "version": "v0.3.1", "gpus": [0], "resize": size,
            "classes": ["class_%d" % i for i in range(spec["num_classes"])],
            "cmd_timestamp": "2021-05-01T12:00:00",
        },
    }
    torch.save(checkpoint, os.path.join(outdir, "model.ptl"))

    lossless_dir = os.path.join(outdir, "lossless")
    os.makedirs(lossless_dir, exist_ok=True)
    lossless = []
    for path in spec["lossless_sources"]:
        target = os.path.join(lossless_dir, os.path.basename(path))
        Image.open(path).convert("L").resize((size, size), Image.BILINEAR).save(target)
        lossless.append(target)

    result = {"lossless_images": lossless}
    with torch.no_grad():
        for name, job in spec["classify"].items():
            images = lossless if job["images"] == "lossless" else job["images"]
            scores = torch.softmax(model(load(images, size, job["norm"])), dim=1)
            result[name] = {p: s.tolist() for p, s in zip(images, scores)}
    with open(os.path.join(outdir, "reference.json"), "w") as f:
        json.dump(result, f)


def plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, numpy.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return None  # NaN (e.g. a class without a threshold) is not JSON
    return value


def inspect_h5(path):
    out = {}
    with h5py.File(path, "r") as f:
        for name, item in f.items():
            entry = {
                "dtype": str(item.dtype),
                "shape": list(item.shape) if item.shape is not None else None,
                "compression": item.compression,
                "space": {h5py.h5s.NULL: "null", h5py.h5s.SCALAR: "scalar", h5py.h5s.SIMPLE: "simple"}[
                    item.id.get_space().get_simple_extent_type()],
                "attrs": {k: plain(v) for k, v in item.attrs.items()},
            }
            if item.shape:
                entry["values"] = plain(item.asstr()[()] if item.dtype.kind == "O" else item[()])
            out[name] = entry
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        with open(sys.argv[2]) as f:
            prepare(json.load(f))
    elif sys.argv[1] == "inspect-h5":
        inspect_h5(sys.argv[2])
    else:
        sys.exit("unknown command " + sys.argv[1])
