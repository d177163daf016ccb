#!/usr/bin/env python3
"""The Python pipeline a user would write, as the baseline for hub-vision's benchmark.

Pillow decode (+ EXIF transpose) + bilinear resize to 224x224, numpy normalisation to NCHW f32,
onnxruntime 1.31.1 on one thread with spinning off. Prints one JSON object with the median
milliseconds of each case. Run by hub_vision::run_vision_bench in a venv it sets up; usage:

    python py_pipeline.py --model M.onnx --img-1080p A.jpg --img-12mp B.jpg --reps 15
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

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


def median_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--img-1080p", required=True)
    ap.add_argument("--img-12mp", required=True)
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()

    session = make_session(a.model)
    prepared = preprocess(a.img_1080p, False)
    out = {
        "onnxruntime_version": ort.__version__,
        "pillow_version": Image.__version__,
        "numpy_version": np.__version__,
        "py_1080p_ms": median_ms(lambda: full(session, a.img_1080p, False), a.reps),
        "py_12mp_ms": median_ms(lambda: full(session, a.img_12mp, False), a.reps),
        "py_draft_12mp_ms": median_ms(lambda: full(session, a.img_12mp, True), a.reps),
        "ort_infer_ms": median_ms(lambda: session.run(None, {"input": prepared}), a.reps * 2),
        "py_top1_1080p": full(session, a.img_1080p, False),
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
