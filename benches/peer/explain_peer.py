"""Times the explain peers (Captum, pytorch-grad-cam) against `models/benches/explain.rs`.

Same models, input size and settings as the convlens bench: resnet18 (torchvision, synthetic
weights) and the demo EfficientNet-Lite0 (efficientnet-lite-pytorch with the committed weights,
restructured as tests/fixtures/make_explain.py does so that the head ReLU6 is its own module),
224x224, one image, target = top-1.

Methods and the peer's own defaults unless the convlens default differs (said per line):
  gradcam     pytorch_grad_cam.GradCAM at the last spatial layer
  gradcam++, xgradcam, layercam, eigencam
              pytorch_grad_cam's GradCAMPlusPlus, XGradCAM, LayerCAM, EigenCAM, the same layer
  scorecam    pytorch_grad_cam.ScoreCAM (its batch of 16 masks; convlens uses 16 too)
  saliency    captum Saliency(abs=True)
  guided-backprop  captum GuidedBackprop
  smoothgrad  captum NoiseTunnel(Saliency(abs=False)), 50 samples in batches of 16, stdevs 0.15 x
              the input's range (convlens' defaults; its SmoothGrad is the mean signed gradient)
  integrated-gradients  captum IntegratedGradients, 50 steps, gausslegendre,
              internal_batch_size=16 (convlens batches 16 points too; captum's default is all 50
              at once); logs before 2026-12-07's gradients run name it `ig`
  occlusion   captum Occlusion window 16 stride 8, perturbations_per_eval=1 (captum's default;
              convlens batches 16 copies: that batching is the point of comparison)
  deeplift    captum DeepLift, baseline 0, on the models with each activation its own module
              (tests/fixtures/make_explain_more.py's unshare_activations; same cost)
  gradient-shap  captum GradientShap, 50 samples, stdevs 0.15 x the input's range (convlens'
              --noise), the zero baseline (captum runs the 50 samples as one batch; convlens 16)
  lrp-epsilon-plus-flat, lrp-epsilon-gamma-box, lrp-epsilon-alpha2-beta1
              zennit's composites of those names on the model canonized as
              tests/fixtures/make_lrp.py does (BatchNorm merged, residual sums zennit Sum
              modules); the composite's hooks are registered once, before the timed runs, and
              each run is a forward and a backward pass with a one-hot output gradient (what
              zennit's Gradient attributor does)

Prints one JSON object per line: {"bench", "model", "median_ms", "runs", ...}.

    python benches/peer/explain_peer.py [--device cpu|cuda] [--runs N] [--only METHOD,...]
"""
import argparse
import json
import os

# pytorch-grad-cam's progress bars (Score-CAM) would fill the log; tqdm reads this at import.
os.environ.setdefault("TQDM_DISABLE", "1")
import statistics
import sys
import time
import warnings

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")


def timed(fn, device, runs):
    fn()  # warm-up
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


def models():
    from synthetic import fill_synthetic

    resnet = torchvision.models.resnet18(weights=None).eval()
    fill_synthetic(resnet, seed=0)
    yield "resnet18", resnet, resnet.layer4[-1]
    try:
        from make_explain import prepare_demo
    except ImportError as e:
        print(json.dumps({"skipped": "demo", "why": str(e)}), flush=True)
        return
    demo = prepare_demo()[0].eval()
    yield "demo", demo, demo._bn1.act


LRP = ["lrp-epsilon-plus-flat", "lrp-epsilon-gamma-box", "lrp-epsilon-alpha2-beta1"]


def lrp_benches(name, x, c, device, runs):
    """Times zennit's three composites on `name` canonized as make_lrp.py does."""
    import make_lrp

    model = make_lrp.prepare(name)[0].to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in make_lrp.NORMALIZATION[name])
    for bench in LRP:
        which = bench.removeprefix("lrp-").replace("-", "_")
        composite = make_lrp.composite(which, ((0 - mean) / std).to(device),
                                       ((1 - mean) / std).to(device))

        def run():
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            onehot = torch.zeros_like(out)
            onehot[0, c] = 1.0
            return torch.autograd.grad(out, xg, grad_outputs=onehot)[0]

        with composite.context(model):
            ms = timed(run, device, runs)
        yield bench, ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only",
                        default="gradcam,gradcam++,xgradcam,layercam,eigencam,scorecam,saliency,"
                                "guided-backprop,smoothgrad,integrated-gradients,occlusion,deeplift,gradient-shap,"
                                + ",".join(LRP))
    args = parser.parse_args()
    only = set(args.only.split(","))
    from captum.attr import (DeepLift, GradientShap, GuidedBackprop, IntegratedGradients,
                             NoiseTunnel, Occlusion, Saliency)
    from make_explain_more import unshare_activations
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    for name, model, layer in models():
        unshare_activations(name, model)
        model = model.to(args.device)
        for p in model.parameters():
            p.requires_grad_(False)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, 224, 224, generator=g).to(args.device)
        with torch.no_grad():
            c = int(model(x).argmax(1))
        targets = [ClassifierOutputTarget(c)]
        gradcam = GradCAM(model=model, target_layers=[layer])
        family = {name: cls(model=model, target_layers=[layer]) for name, cls in
                  [("gradcam++", GradCAMPlusPlus), ("xgradcam", XGradCAM), ("layercam", LayerCAM),
                   ("eigencam", EigenCAM)]}
        scorecam = ScoreCAM(model=model, target_layers=[layer])
        benches = {
            # Parameters are frozen (no weight gradients, as in convlens), so the input carries
            # requires_grad for the layer's activations to get a gradient.
            "gradcam": lambda: gradcam(input_tensor=x.clone().requires_grad_(True), targets=targets),
            **{name: (lambda cam=cam: cam(input_tensor=x.clone().requires_grad_(True),
                                          targets=targets))
               for name, cam in family.items()},
            "scorecam": lambda: scorecam(input_tensor=x, targets=targets),
            "saliency": lambda: Saliency(model).attribute(x.clone().requires_grad_(True), target=c, abs=True),
            "guided-backprop": lambda: GuidedBackprop(model).attribute(x.clone(), target=c),
            # convlens' SmoothGrad: the mean signed gradient of 50 copies with noise of 0.15 of
            # the input's range, in batches of 16.
            "smoothgrad": lambda: NoiseTunnel(Saliency(model)).attribute(
                x.clone(), nt_type="smoothgrad", nt_samples=50, nt_samples_batch_size=16,
                stdevs=0.15 * float(x.max() - x.min()), target=c, abs=False),
            "integrated-gradients": lambda: IntegratedGradients(model).attribute(
                x, target=c, n_steps=50, method="gausslegendre", internal_batch_size=16),
            "occlusion": lambda: Occlusion(model).attribute(
                x, target=c, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=0),
            "deeplift": lambda: DeepLift(model).attribute(x, baselines=0, target=c),
            "gradient-shap": lambda: GradientShap(model).attribute(
                x, baselines=torch.zeros_like(x), target=c, n_samples=50,
                stdevs=0.15 * float(x.max() - x.min())),
        }
        def report(bench, ms, runs):
            print(json.dumps({"bench": bench, "model": name, "median_ms": round(ms, 2), "runs": runs,
                              "threads": torch.get_num_threads(), "torch": torch.__version__,
                              "device": args.device}), flush=True)

        for bench, fn in benches.items():
            if bench not in only:
                continue
            slow = ("scorecam", "occlusion", "gradient-shap")
            runs = 1 if bench in slow and args.device == "cpu" else args.runs
            report(bench, timed(fn, args.device, runs), runs)
        if only & set(LRP):
            for bench, ms in lrp_benches(name, x, c, args.device, args.runs):
                if bench in only:
                    report(bench, ms, args.runs)


if __name__ == "__main__":
    main()
