"""Times the PyTorch peer of `daemon/benches/warm_latency.rs`: a warm PyTorch process with the
demo EfficientNet-Lite0 loaded, asked about the same photo again and again.

- predict:  open chelsea.jpg, resize 256 / crop 224 / normalize, forward (no_grad), softmax, top-5
            (a warm process recomputes each time: compare with the daemon's `predict_fresh`,
            and `predict_repeated` for what the daemon's cache gives).
- gradcam:  pytorch_grad_cam.GradCAM at the head activation on the preprocessed photo, for the
            top class (compare with `gradcam_fresh`; `gradcam_repeated` is the result cache).

Prints one JSON object per line: {"bench", "median_ms", "runs"}.

    python benches/peer/warm_latency.py [--device cpu|cuda] [--runs N]
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import torch
import torchvision
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
warnings.filterwarnings("ignore")


def timed(fn, device, runs):
    fn()  # warm-up
    fn()
    samples = []
    for _ in range(runs):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def preprocess(path, device):
    img = Image.open(path).convert("RGB")
    x = torchvision.transforms.Resize(256)(img)
    x = torchvision.transforms.CenterCrop(224)(x)
    x = torchvision.transforms.ToTensor()(x)
    x = (x * 255.0 - 127.0) / 128.0
    return x.unsqueeze(0).to(device)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from make_explain import prepare_demo
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = prepare_demo()[0].eval().to(args.device)
    photo = os.path.join(REPO, "models", "assets", "photos", "chelsea.jpg")

    def predict():
        with torch.no_grad():
            logits = model(preprocess(photo, args.device))
            return torch.softmax(logits, dim=1).topk(5)

    ms = timed(predict, args.device, args.runs)
    print(json.dumps({"bench": "predict", "median_ms": ms, "runs": args.runs}), flush=True)

    cam = GradCAM(model=model, target_layers=[model._bn1.act])
    x = preprocess(photo, args.device)
    with torch.no_grad():
        top = int(model(x).argmax())

    def gradcam():
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(top)])

    ms = timed(gradcam, args.device, args.runs)
    print(json.dumps({"bench": "gradcam", "median_ms": ms, "runs": args.runs}), flush=True)


if __name__ == "__main__":
    main()
