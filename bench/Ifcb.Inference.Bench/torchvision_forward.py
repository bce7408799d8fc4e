#!/usr/bin/python3
"""Times torchvision's forward pass on the tensors the C# benchmark wrote (run with Debian's /usr/bin/python3).

  torchvision_forward.py ARCH NUM_CLASSES WEIGHTS.pth INPUT.pth BATCH THREADS REPEATS
Prints one line: "ROIS_PER_SECOND SECONDS".
"""
import sys
import time

import torch
import torchvision

arch, num_classes, weights, inputs, batch, threads, repeats = sys.argv[1:8]
torch.set_num_threads(int(threads))
factory = getattr(torchvision.models, arch)
kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
model = factory(weights=None, num_classes=int(num_classes), **kwargs)
model.load_state_dict(torch.load(weights), strict=True)
model.eval()
images = torch.load(inputs)["input"]
batch = int(batch)
with torch.no_grad():
    torch.softmax(model(images[:batch]), dim=1)  # warm-up
    start = time.perf_counter()
    for _ in range(int(repeats)):
        for i in range(0, images.shape[0], batch):
            torch.softmax(model(images[i:i + batch]), dim=1)
    seconds = time.perf_counter() - start
print(images.shape[0] * int(repeats) / seconds, seconds)
