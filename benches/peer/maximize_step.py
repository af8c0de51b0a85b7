"""Times one Lucent activation-maximization step, the peer of `models/benches/maximize.rs`.

The step of Lucent's `render_vis` with its defaults: `param.image(224)` (Fourier parameter with
1/f scaling, decorrelated colour, sigmoid), `transform.standard_transforms` (pad 12, jitter 8,
random scale 0.9..1.1, random rotation -10..10, jitter 4), the model's normalization
(EfficientNet-Lite's (x - 127/255) / (128/255)), forward, the class logit's backward, Adam at
0.05. Batch 1 and 4. The model is efficientnet-lite-pytorch's EfficientNet-Lite0 with frozen
parameters (the weights do not change the time). Lucent's canvas varies with the random scale
(248 px on average); convlens keeps it at 238 (Lucid's crop-style jitters).

Prints one JSON object per line: {"bench", "batch", "median_ms", "runs", ...}.

    /work/venv/ref/bin/python benches/peer/maximize_step.py [--device cpu|cuda] [--runs N]

Needs `pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1` (Lucent's render module imports
IPython, so this script builds the same step from its param and transform modules).
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    # Lucent picks its device at import time from torch.cuda.is_available().
    from lucent.optvis import param, transform
    from efficientnet_lite_pytorch import EfficientNet

    device = torch.device(args.device)
    model = EfficientNet.from_name("efficientnet-lite0").eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    normalize = lambda x: (x - 127.0 / 255.0) / (128.0 / 255.0)
    np.random.seed(0)
    torch.manual_seed(0)
    for batch in (1, 4):
        params, image_f = param.image(args.size, batch=batch)
        optimizer = torch.optim.Adam(params, lr=5e-2)
        transform_f = transform.compose(transform.standard_transforms + [normalize])

        def step():
            optimizer.zero_grad()
            logits = model(transform_f(image_f()))
            loss = -logits[:, 309].mean()
            loss.backward()
            optimizer.step()

        step()  # warm-up
        step()
        samples = []
        for _ in range(args.runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"bench": "lucent_step", "batch": batch, "size": args.size,
                          "median_ms": round(statistics.median(samples), 3), "runs": args.runs,
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "device": args.device}), flush=True)


if __name__ == "__main__":
    main()
