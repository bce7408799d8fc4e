"""Checks exported ONNX files with the official ONNX checker (Debian's python3-onnx).

One process serves a whole test run: it reads one file path per line on stdin and answers one JSON line per path,
{"ok": true} or {"ok": false, "error": "..."}.
check_model(path) is the checker proper; infer_shapes_path(check_type, strict_mode) is what full_check=True adds
(a declared output shape that the graph does not produce is an error). Both read the file in C++: going through a Python
ModelProto would serialise a VGG's 0.5 GB of weights twice more.
"""
import json
import os
import sys

import onnx

for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        onnx.checker.check_model(path)
        onnx.shape_inference.infer_shapes_path(path, os.devnull, check_type=True, strict_mode=True)
        answer = {"ok": True}
    except Exception as e:  # the checker's ValidationError, shape inference errors, unreadable files
        answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer), flush=True)
