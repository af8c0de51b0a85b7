"""Times the evaluate peers against `models/benches/evaluate.rs`.

Same model, input and map as the convlens bench: resnet18 (torchvision, synthetic weights),
one 224x224 input, a 7x7 map resized bilinearly to the input (as a Grad-CAM map), target 0.

  deletion+insertion        RISE's CausalMetric.single_run as published (github.com/eclique/RISE,
                            evaluation.py): one copy a forward pass, 224 pixels a step, 225
                            passes a curve; zeros for deletion, its gkern(11, 5) blur for
                            insertion; both curves
  deletion+insertion-b16    the same curves with the copies batched by 16 (convlens' batch):
                            what a careful PyTorch user would write
  confidence-change         pytorch-grad-cam's CamMultImageConfidenceChange with
                            ClassifierOutputSoftmaxTarget(0)
  road-combined             pytorch-grad-cam's ROADCombined at the percentiles 10..90 (both
                            orders: 18 noisy linear imputations, SciPy's spsolve, and 18 + 18
                            forward passes, one a copy as it runs them)
  infidelity                captum.metrics.infidelity, 10 Gaussian perturbations of 0.003,
                            normalize=True, the map resized and repeated on the channels

Prints one JSON object per line: {"bench", "model", "median_ms", "runs"}.

    python benches/peer/evaluate_peer.py [--runs N]
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
warnings.filterwarnings("ignore")

from make_evaluate import blur  # noqa: E402
from synthetic import fill_synthetic  # noqa: E402

STEP = 224


def timed(fn, runs):
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def curves(model, x, rel, c, batch):
    _, _, h, w = x.shape
    hw = h * w
    n_steps = (hw + STEP - 1) // STEP
    order = torch.from_numpy(np.argsort(-rel.reshape(hw), kind="stable").copy())
    rank = torch.empty(hw, dtype=torch.long)
    rank[order] = torch.arange(hw)
    rank = rank.reshape(1, 1, h, w)
    out = []
    for mode in ["deletion", "insertion"]:
        start, finish = (x, torch.zeros_like(x)) if mode == "deletion" else (blur(x), x)
        scores = []
        with torch.no_grad():
            for first in range(0, n_steps + 1, batch):
                steps = torch.arange(first, min(first + batch, n_steps + 1))
                changed = rank < (steps * STEP).clamp(max=hw).reshape(-1, 1, 1, 1)
                copies = torch.where(changed, finish, start)
                scores.append(torch.softmax(model(copies), dim=1)[:, c])
        out.append(torch.cat(scores))
    return out


def rise_as_published(model, x, rel, c):
    """CausalMetric.single_run, both modes: one copy per forward pass, numpy indexing."""
    _, _, h, w = x.shape
    hw = h * w
    n_steps = (hw + STEP - 1) // STEP
    salient_order = np.flip(np.argsort(rel.reshape(-1, hw), axis=1), axis=-1)
    for mode in ["del", "ins"]:
        if mode == "del":
            start, finish = x.clone(), torch.zeros_like(x)
        else:
            start, finish = blur(x), x.clone()
        scores = np.empty(n_steps + 1)
        for i in range(n_steps + 1):
            with torch.no_grad():
                pred = torch.softmax(model(start), dim=1)
            scores[i] = pred[0, c]
            if i < n_steps:
                coords = salient_order[:, STEP * i:STEP * (i + 1)]
                start.cpu().numpy().reshape(1, 3, hw)[0, :, coords] = \
                    finish.cpu().numpy().reshape(1, 3, hw)[0, :, coords]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    fill_synthetic(model, seed=0)
    x = torch.randn(1, 3, 224, 224)
    cam7 = torch.rand(7, 7)
    rel = F.interpolate(cam7[None, None], size=(224, 224), mode="bilinear",
                        align_corners=False)[0, 0].numpy()
    rows = [
        ("deletion+insertion", lambda: rise_as_published(model, x, rel, 0)),
        ("deletion+insertion-b16", lambda: curves(model, x, rel, 0, 16)),
    ]
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    cam = scale_cam_image(cam7.numpy()[None], (224, 224))
    metric = CamMultImageConfidenceChange()
    rows.append(("confidence-change",
                 lambda: metric(x, cam, [ClassifierOutputSoftmaxTarget(0)], model)))
    from pytorch_grad_cam.metrics.road import ROADCombined
    road = ROADCombined(percentiles=[10, 20, 30, 40, 50, 60, 70, 80, 90])
    rows.append(("road-combined",
                 lambda: road(x, cam, [ClassifierOutputSoftmaxTarget(0)], model)))
    from captum.metrics import infidelity
    attr = torch.from_numpy(rel)[None, None].expand(1, 3, 224, 224).contiguous()

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.003
        return noise, inputs - noise
    rows.append(("infidelity", lambda: infidelity(model, perturb, x, attr, target=0,
                                                   n_perturb_samples=10, normalize=True)))
    for name, fn in rows:
        print(json.dumps({"bench": name, "model": "resnet18", "median_ms": round(timed(fn, args.runs), 1),
                          "runs": args.runs, "torch_threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
