"""Times the PyTorch peer of `models/benches/engine.rs` on the same machine.

Forward pass (no_grad) and input gradient (backward of the sum of the logits to the input, with
the parameters frozen so that no weight gradient is computed, as in convlens) of resnet18,
resnet50 (torchvision) and EfficientNet-Lite0 (efficientnet-lite-pytorch) at 224x224, batch 1 and
8. Prints one JSON object per line: {"bench", "model", "batch", "median_ms", "runs"}.

    python benches/peer/torch_engine.py [--device cpu|cuda] [--runs N]
"""
import argparse
import json
import statistics
import time

import torch
import torchvision


def lite0():
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    models = {
        "resnet18": torchvision.models.resnet18(),
        "resnet50": torchvision.models.resnet50(),
    }
    try:
        models["demo"] = lite0()
    except ImportError:
        print(json.dumps({"skipped": "demo", "why": "efficientnet_lite_pytorch is not installed"}), flush=True)
    for name, model in models.items():
        model = model.eval().to(args.device)
        for p in model.parameters():
            p.requires_grad_(False)
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224, device=args.device)

            def forward():
                with torch.no_grad():
                    return model(x)

            def input_gradient():
                xg = x.clone().requires_grad_(True)
                model(xg).sum().backward()
                return xg.grad

            for bench, fn in (("forward", forward), ("input_gradient", input_gradient)):
                ms = timed(fn, args.device, args.runs)
                print(json.dumps({"bench": bench, "model": name, "batch": batch, "median_ms": round(ms, 3),
                                  "runs": args.runs, "threads": torch.get_num_threads(),
                                  "torch": torch.__version__, "device": args.device}), flush=True)


if __name__ == "__main__":
    main()
