"""Times the PyTorch / scikit-learn peers of `models/benches/represent.rs` on the same machine.

- embed: images per second of a folder pass in PyTorch -- PIL decode, torchvision Resize(256),
  CenterCrop(224), ToTensor, EfficientNet-Lite0's normalization, the forward pass of
  EfficientNet-Lite0 (efficientnet-lite-pytorch, the demo weights when safetensors is installed)
  keeping the penultimate layer's output -- over the first N images of
  tests/fixtures/fashion_folder (labels.csv order, as the Rust bench), at batch 1, 8, 32.
- t-SNE: seconds of scikit-learn's TSNE (defaults: Barnes-Hut, perplexity 30, init "pca") on the
  same 50-D clustered points as the Rust bench (`synthetic_array`, the twin of convlens'
  `synthetic_tensor`), for each size.

Prints one JSON object per line.

    python benches/peer/represent_peer.py [--device cpu|cuda] [--images 64] [--runs 5]
                                          [--tsne-sizes 5000,20000]

Quick check: --images 4 --runs 1 --tsne-sizes 300
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
from synthetic import synthetic_array  # noqa: E402

FOLDER = os.path.join(REPO, "tests", "fixtures", "fashion_folder")


def demo_model():
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    try:
        from safetensors.torch import load_file

        state = load_file(os.path.join(REPO, "models", "assets", "efficientnet_lite0.safetensors"))
        model.load_state_dict(state)
    except ImportError:
        pass
    return model.eval()


def image_paths(count):
    with open(os.path.join(FOLDER, "labels.csv")) as f:
        rows = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    return [os.path.join(FOLDER, r) for r in rows[:count]]


PRE = T.Compose([
    T.Resize(256),
    T.CenterCrop(224),
    T.ToTensor(),
    T.Normalize(mean=[127.0 / 255] * 3, std=[128.0 / 255] * 3),
])


def embed_pass(model, paths, batch, device):
    codes = []
    kept = {}
    hook = model._avg_pooling.register_forward_hook(lambda m, i, o: kept.__setitem__("code", o))
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            x = torch.stack([PRE(Image.open(p).convert("RGB")) for p in paths[start:start + batch]])
            logits = model(x.to(device))
            code = kept["code"].flatten(1)
            codes.append((code.cpu(), logits.softmax(1).max(1).values.cpu()))
    hook.remove()
    if device == "cuda":
        torch.cuda.synchronize()
    return codes


def cluster_points(n):
    noise = synthetic_array("tsne_points", (n, 50), 0)
    centres = synthetic_array("tsne_centres", (10, 50), 0)
    return (noise + np.float32(3.0) * centres[np.arange(n) % 10]).astype(np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tsne-sizes", default="5000,20000")
    args = parser.parse_args()

    model = demo_model().to(args.device)
    paths = image_paths(args.images)
    for batch in (1, 8, 32):
        embed_pass(model, paths, batch, args.device)  # warm-up
        samples = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            embed_pass(model, paths, batch, args.device)
            samples.append(time.perf_counter() - t0)
        seconds = statistics.median(samples)
        print(json.dumps({"bench": "embed", "model": "demo", "batch": batch,
                          "images": len(paths), "images_per_s": round(len(paths) / seconds, 2),
                          "threads": torch.get_num_threads(), "device": args.device}))

    from sklearn import __version__ as sklearn_version
    from sklearn.manifold import TSNE

    for n in (int(s) for s in args.tsne_sizes.split(",") if s.strip()):
        x = cluster_points(n)
        t0 = time.perf_counter()
        TSNE(n_components=2, perplexity=30.0, init="pca", random_state=0).fit_transform(x)
        seconds = time.perf_counter() - t0
        print(json.dumps({"bench": "tsne", "points": n, "seconds": round(seconds, 3),
                          "library": f"scikit-learn {sklearn_version}",
                          "method": "barnes_hut"}))


if __name__ == "__main__":
    main()
