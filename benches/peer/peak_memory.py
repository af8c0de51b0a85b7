"""Measures the PyTorch peer of `models/examples/peak_memory.rs`: the peak resident set of a
process that loads one model and runs its forward pass and input gradient (backward of the sum
of the logits to the input, parameters frozen, as in `torch_engine.py`) on a random batch.

Each measurement runs in a process of its own (a peak is per process), read from Linux's
/proc/self/status: `VmRSS` after the model is built, `VmHWM` after each round. Prints one JSON
object per line.

    python benches/peer/peak_memory.py [--model resnet50] [--batch 8] [--rounds 2]
"""
import argparse
import json


def status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/self/status has no {key} line")


def build(name):
    import torchvision

    if name == "demo":
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name("efficientnet-lite0")
    return getattr(torchvision.models, name)()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    model = build(args.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    loaded = status_mib("VmRSS")
    x = torch.randn(args.batch, 3, 224, 224)
    peaks = []
    for _ in range(args.rounds):
        xg = x.clone().requires_grad_(True)
        model(xg).sum().backward()
        float(xg.grad.sum())
        del xg
        peaks.append(status_mib("VmHWM"))
    print(json.dumps({"bench": "peak_memory", "who": "torch", "model": args.model, "batch": args.batch,
                      "rounds": args.rounds, "loaded_mib": round(loaded, 1), "peak_mib": round(peaks[-1], 1),
                      "peak_after_round_mib": [round(p, 1) for p in peaks],
                      "beyond_loaded_mib": round(peaks[-1] - loaded, 1),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
