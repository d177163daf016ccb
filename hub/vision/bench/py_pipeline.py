#!/usr/bin/env python3
"""The Python pipeline a user would write, as the baseline for hub-vision's benchmark.

Pillow opens the file, decodes it (with draft(): libjpeg-turbo's DCT scaling to the largest
reduction that stays >= 224x224, the same library and scale the hub uses; without: the full
picture), turns it upright per EXIF, resizes to 224x224 (bilinear); numpy normalises to NCHW
f32; onnxruntime 1.31.1 runs the model on one thread with spinning off. Each case is timed from
the file on disk to the top class. Prints one JSON object with the median milliseconds of each
photo, with and without draft(), and of inference alone. Run by the hub's bench command in a
venv it sets up; usage:

    python py_pipeline.py --model M.onnx --reps 15 --photos A.jpg B.jpg ...
"""

import argparse
import json
import statistics
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


def median_ms(fn, reps):
    for _ in range(min(max(reps, 1), 3)):
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
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--photos", nargs="+", required=True)
    a = ap.parse_args()
    reps = max(a.reps, 1)

    session = make_session(a.model)
    photos = []
    for path in a.photos:
        photos.append(
            {
                "path": path,
                "draft_ms": median_ms(lambda: full(session, path, True), reps),
                "plain_ms": median_ms(lambda: full(session, path, False), reps),
                "draft_top1": full(session, path, True),
                "plain_top1": full(session, path, False),
            }
        )
    prepared = preprocess(a.photos[0], True)
    out = {
        "onnxruntime_version": ort.__version__,
        "pillow_version": Image.__version__,
        "numpy_version": np.__version__,
        "libjpeg_turbo_version": features.version("libjpeg_turbo"),
        "ort_infer_ms": median_ms(lambda: session.run(None, {"input": prepared}), reps * 2),
        "photos": photos,
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
