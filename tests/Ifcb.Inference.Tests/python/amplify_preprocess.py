#!/usr/bin/python3
"""Prepares ROI images the way amplify_onnx_inference does before its ONNX session (run with Debian's /usr/bin/python3).

  amplify_preprocess.py SIZE OUT.f32 IMAGE...
Each image: opened by Pillow, converted to RGB, resized to SIZE x SIZE with bilinear filtering, scaled to [0,1]
(torchvision's Resize((S, S)) then ToTensor, without Normalize); written as little-endian float32, [N, 3, S, S].
"""
import sys

import numpy
from PIL import Image

size = int(sys.argv[1])
bilinear = Image.Resampling.BILINEAR if hasattr(Image, "Resampling") else Image.BILINEAR
arrays = []
for path in sys.argv[3:]:
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), bilinear)
    arrays.append(numpy.asarray(rgb, dtype=numpy.float32).transpose(2, 0, 1) / 255.0)
numpy.stack(arrays).astype("<f4").tofile(sys.argv[2])
