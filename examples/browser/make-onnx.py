#!/usr/bin/python3
"""Convert the tfjs MNIST MLP fixture (fixtures/mnist/mlp-linear.json) to ONNX for the browser demo.

Run from the repository root with Debian's Python (python3-torch 1.13, python3-onnx 1.12):

    /usr/bin/python3 examples/browser/make-onnx.py

Writes examples/browser/public/mnist-mlp-linear.onnx: the same weights as the tfjs model, exported by
torch.onnx.export (opset 13, dynamic batch axis) as Gemm(transB=1) -> Relu -> Gemm -> Relu -> Gemm, input
"pixels" [N, 784], output "scores" [N, 10]. tfjs Dense kernels are [in, out]; nn.Linear weights are [out, in],
so every kernel is transposed. The script checks the export with onnx.checker and compares torch's output with
a float64 NumPy forward pass of the tfjs weights. Running it again reproduces the same bytes.
"""

import base64
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SOURCE = os.path.join(ROOT, "fixtures", "mnist", "mlp-linear.json")
OUT = os.path.join(HERE, "public", "mnist-mlp-linear.onnx")

torch.set_num_threads(1)


def read_tfjs_weights(path):
    """name -> float32 array, from the layers-model-json@1 file (base64, little-endian, in weightSpecs order)."""
    with open(path) as f:
        model = json.load(f)
    assert model["format"] == "lva-transfer/layers-model-json@1", model["format"]
    raw = base64.b64decode(model["weightDataBase64"])
    out, off = {}, 0
    for spec in model["weightSpecs"]:
        assert spec["dtype"] == "float32", spec
        n = int(np.prod(spec["shape"]))
        out[spec["name"]] = np.frombuffer(raw, dtype="<f4", count=n, offset=off).reshape(spec["shape"]).copy()
        off += 4 * n
    assert off == len(raw), (off, len(raw))
    return out


def main():
    w = read_tfjs_weights(SOURCE)
    net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for layer, name in ((net[0], "fc1"), (net[2], "fc2"), (net[4], "head")):
            layer.weight.copy_(torch.from_numpy(w[f"{name}/kernel"].T.copy()))
            layer.bias.copy_(torch.from_numpy(w[f"{name}/bias"]))
    net.eval()

    x = np.random.default_rng(7).random((16, 784), dtype=np.float32)
    h = np.maximum(x.astype(np.float64) @ w["fc1/kernel"] + w["fc1/bias"], 0)
    h = np.maximum(h @ w["fc2/kernel"] + w["fc2/bias"], 0)
    ref = h @ w["head/kernel"] + w["head/bias"]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    err = float(np.abs(got - ref).max())
    assert err < 1e-4, f"torch and the tfjs weights disagree by {err}"

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    torch.onnx.export(
        net,
        torch.from_numpy(x[:1]),
        OUT,
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes={"pixels": {0: "N"}, "scores": {0: "N"}},
        opset_version=13,
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(OUT), full_check=True)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes); torch vs float64 NumPy: {err:.2e}")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
