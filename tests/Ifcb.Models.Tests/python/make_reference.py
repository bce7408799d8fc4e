#!/usr/bin/python3
"""Reference outputs from torchvision 0.14 for the C# parity tests (run with Debian's /usr/bin/python3).

  make_reference.py reference OUTDIR NAME=ARCH,SIZE[,transform] ...
      With ",f64" the weights, input and logits are float64: deep nets (resnet101/152, densenet, inception) amplify
      float32 rounding differences between libtorch builds to ~5e-4, which says nothing about the architecture.
      For each model: seeded torchvision model with num_classes=5 and calibrated random BatchNorm statistics, writes OUTDIR/NAME.pth (state dict) and OUTDIR/NAME.io.pth
      ({"input": [2,3,S,S], "logits": eval-mode logits}).

  make_reference.py check-export OUTDIR NAME=ARCH,NUM_CLASSES[,transform] ...
      Loads OUTDIR/NAME.export.pth (written by C#) into torchvision with strict=True, runs OUTDIR/NAME.input.pth's
      "input" in eval mode, writes OUTDIR/NAME.torchvision.pth ({"logits": ...}) and prints "OK NAME".
"""
import sys

import torch
import torchvision

NUM_CLASSES = 5
BATCH = 2


def build(arch, num_classes, transform_input):
    factory = getattr(torchvision.models, arch)
    if arch == "inception_v3":
        return factory(weights=None, num_classes=num_classes, aux_logits=True, init_weights=False,
                       transform_input=transform_input)
    return factory(weights=None, num_classes=num_classes)


def parse(spec):
    name, rest = spec.split("=", 1)
    fields = rest.split(",")
    return name, fields[0], int(fields[1]), "transform" in fields[2:], "f64" in fields[2:]


def calibrate_batch_norm(model, size):
    """Random BN affine parameters, then running statistics measured on random images (cumulative average).

    Non-trivial buffers show a buffer loaded into the wrong layer, and calibrated statistics keep eval-mode activations
    O(1) even in resnet152, so an absolute logit tolerance stays meaningful.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.reset_running_stats()
            m.momentum = None
        # Inception's aux head needs 299-pixel inputs in training mode; it is not part of the eval-mode logits.
        aux = getattr(model, "AuxLogits", None)
        if aux is not None:
            model.AuxLogits = None
        model.train()
        model(torch.rand(16, 3, size, size))
        if aux is not None:
            model.AuxLogits = aux
        for m in norms:
            m.momentum = 0.1


def reference(outdir, specs):
    for index, spec in enumerate(specs):
        name, arch, size, transform, f64 = parse(spec)
        torch.manual_seed(1000 + index)
        model = build(arch, NUM_CLASSES, transform)
        calibrate_batch_norm(model, size)
        model.eval()
        x = torch.rand(BATCH, 3, size, size)
        if f64:
            model.double()
            x = x.double()
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), f"{outdir}/{name}.pth")
        torch.save({"input": x, "logits": logits}, f"{outdir}/{name}.io.pth")
        print(f"wrote {name} {arch} {size} transform={transform} max|logit|={logits.abs().max().item():.4g}", flush=True)


def check_export(outdir, specs):
    for spec in specs:
        name, arch, num_classes, transform, _ = parse(spec)
        model = build(arch, num_classes, transform)
        model.load_state_dict(torch.load(f"{outdir}/{name}.export.pth"), strict=True)
        model.eval()
        x = torch.load(f"{outdir}/{name}.input.pth")["input"]
        with torch.no_grad():
            logits = model(x)
        torch.save({"logits": logits}, f"{outdir}/{name}.torchvision.pth")
        print(f"OK {name}", flush=True)


if __name__ == "__main__":
    command, outdir, *specs = sys.argv[1:]
    {"reference": reference, "check-export": check_export}[command](outdir, specs)
