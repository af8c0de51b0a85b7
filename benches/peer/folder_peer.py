"""The PyTorch peer of a `convlens top` sweep over a big folder (scripts/bench-folder.sh): a
DataLoader with worker processes decoding ahead (PIL, torchvision Resize(28), CenterCrop(28),
Grayscale, ToTensor, Fashion-MNIST normalization) feeding small-vgg (the twin of convlens'
`random:small-vgg`, tests/fixtures/make_train.py) in eval mode, keeping what `top` keeps: per
image and unit of features.3, the maximum over positions and where it is, folded into a top-9
per unit and running sums (so the peer's memory does not grow with the folder either).

Prints one JSON line: images, seconds, images/s, peak RSS of the process and its workers (MiB).

    python benches/peer/folder_peer.py DIR [--workers 4] [--batch 32] [--threads 2]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torchvision.transforms as T
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
from make_train import MEAN, STD, SmallVGG  # noqa: E402

PRE = T.Compose([T.Resize(28), T.CenterCrop(28), T.Grayscale(), T.ToTensor(),
                 T.Normalize([MEAN], [STD])])


class Folder(torch.utils.data.Dataset):
    def __init__(self, root):
        self.paths = sorted(
            os.path.join(d, f) for d, _, files in os.walk(root) for f in files
            if f.lower().endswith((".png", ".jpg", ".jpeg")))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            return PRE(img.convert("RGB"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = SmallVGG().eval()
    trunk = model.features[:4]  # up to features.3, the layer convlens' bench ranks
    data = Folder(args.folder)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, num_workers=args.workers)
    k, top, sums, seen = 9, None, None, 0
    start = time.perf_counter()
    with torch.no_grad():
        for x in loader:
            out = trunk(x).flatten(2)
            best, where = out.max(2)
            sums = out.mean(2).double().sum(0) if sums is None else sums + out.mean(2).double().sum(0)
            ids = torch.arange(seen, seen + x.shape[0]).expand(best.shape[1], -1).T
            cand = best if top is None else torch.cat([top[0], best])
            cand_ids = ids if top is None else torch.cat([top[1], ids])
            order = cand.topk(min(k, cand.shape[0]), dim=0).indices
            top = (cand.gather(0, order), cand_ids.gather(0, order))
            seen += x.shape[0]
    seconds = time.perf_counter() - start
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
           + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({"peer": "torch DataLoader + small-vgg", "workers": args.workers,
                      "images": seen, "seconds": round(seconds, 2),
                      "images_per_s": round(seen / seconds, 1), "peak_rss_mib": round(rss, 1),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
