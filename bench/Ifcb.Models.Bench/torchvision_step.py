#!/usr/bin/python3
"""One torchvision training step (forward + backward + Adam) per "step" line on stdin; prints its seconds.

  torchvision_step.py ARCH BATCH SIZE THREADS
"""
import sys
import time

import torch
import torchvision

arch, batch, size, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
model = getattr(torchvision.models, arch)(weights=None, num_classes=10, **kwargs)
model.train()
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
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"{time.perf_counter() - start:.6f}", flush=True)
