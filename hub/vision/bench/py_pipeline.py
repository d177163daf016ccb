#!/usr/bin/env python3
"""The Python pipeline a user would write, as the baseline for hub-vision's benchmark.

Pillow opens the file, decodes it (with draft(): libjpeg-turbo's DCT scaling to the largest
reduction that stays >= 224x224, the same library and scale the hub uses; without: the full
picture), turns it upright per EXIF, resizes to 224x224 (bilinear); numpy normalises to NCHW
f32; onnxruntime 1.31.1 runs the model on one thread with spinning off. Each case is timed from
the file on disk to the top class.

It serves the hub's bench command, which runs it in a venv it sets up and alternates its runs
with the hub's so that both see the same load: it prints one JSON line with its versions, then
answers each JSON request line on stdin with one JSON line:

    {"case": "draft" | "plain", "path": "A.jpg"}  ->  {"ms": 12.3, "top1": 950}
    {"case": "infer", "path": "A.jpg"}            ->  {"ms": 6.1}   (inference alone)

Usage: python py_pipeline.py --model M.onnx   (then requests on stdin; EOF ends it)
"""

import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps, features

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
SIZE = (224, 224)


def make_session(model_path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])


def preprocess(path, draft):
    img = Image.open(path)
    if draft:
        # JPEG DCT scaling: the decoder picks the largest reduction that stays >= SIZE.
        img.draft("RGB", SIZE)
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB").resize(SIZE, Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x.transpose(2, 0, 1) - MEAN) / STD
    return x[np.newaxis].astype(np.float32)


def full(session, path, draft):
    x = preprocess(path, draft)
    logits = session.run(None, {"input": x})[0][0]
    e = np.exp(logits - logits.max())
    p = e / e.sum()
    return int(p.argmax())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    a = ap.parse_args()

    session = make_session(a.model)
    prepared = {}
    hello = {
        "onnxruntime_version": ort.__version__,
        "pillow_version": Image.__version__,
        "numpy_version": np.__version__,
        "libjpeg_turbo_version": features.version("libjpeg_turbo"),
    }
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            case, path = req["case"], req["path"]
            if case == "infer":
                if path not in prepared:
                    prepared[path] = preprocess(path, True)
                x = prepared[path]
                t = time.perf_counter()
                session.run(None, {"input": x})
                reply = {"ms": (time.perf_counter() - t) * 1000.0}
            elif case in ("draft", "plain"):
                t = time.perf_counter()
                top1 = full(session, path, case == "draft")
                reply = {"ms": (time.perf_counter() - t) * 1000.0, "top1": top1}
            else:
                reply = {"error": f"unknown case {case!r}"}
        except Exception as e:  # reported to the bench, which stops the baseline
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
