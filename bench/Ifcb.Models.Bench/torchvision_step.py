#!/usr/bin/python3
"""One torchvision training step (forward + backward + Adam) per "step" line on stdin; prints its seconds
as "total forward backward adam".

  torchvision_step.py ARCH BATCH SIZE THREADS [SCRIPT_PATH]

With SCRIPT_PATH, the same freshly built torchvision model is also saved there as TorchScript (torch.jit.script), so the
benchmark can train torchvision's exact graph inside TorchSharp's libtorch and separate "our module code" from "a
different libtorch build".
"""
import sys
import time
import warnings

import torch
import torchvision

arch, batch, size, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
model = getattr(torchvision.models, arch)(weights=None, num_classes=10, **kwargs)
model.train()
if len(sys.argv) > 5:
    warnings.filterwarnings("ignore", module="torch.jit")  # torchvision 0.14 + torch 1.13 warn about an annotation
    torch.jit.script(model).save(sys.argv[5])
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
criterion = torch.nn.CrossEntropyLoss()
x = torch.rand(batch, 3, size, size)
y = torch.randint(0, 10, (batch,))
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "step":
        break
    start = time.perf_counter()
    out = model(x)
    loss = criterion(out.logits, y) + 0.4 * criterion(out.aux_logits, y) if arch == "inception_v3" else criterion(out, y)
    forward = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    backward = time.perf_counter()
    optimizer.step()
    end = time.perf_counter()
    print(f"{end - start:.6f} {forward - start:.6f} {backward - forward:.6f} {end - backward:.6f}", flush=True)
