"""Train the small custom CNN on Fashion-MNIST with PyTorch, writing checkpoints convlens can watch.

    /work/venv/bin/python examples/train_torch.py --out torch-run --steps 300 --every 100
    convlens ... torch-run/model.pt2        # the daemon binds each checkpoint.pt to the program

The network is `CustomCNN` from tests/fixtures/custom_cnn.py (1x28x28 in, 10 logits out). The
data are the gzip'd IDX files of Fashion-MNIST (the repository's 3000/1000-image subset in
tests/fixtures/fashion-mnist by default; the full set works too), normalized as convlens does:
(pixel / 255 - 0.2860) / 0.3530. Adam at a constant learning rate, CPU, seeded.

What it writes into --out, the same layout as `convlens train-demo` (see
models/src/train/checkpoint.rs) with torch.save files instead of safetensors:

  model.pt2             torch.export.save of the model at batch 1 (input [1, 1, 28, 28]), written
                        once BEFORE training, so its weights are the initial ones; a checkpoint's
                        state_dict is bound to it by key. Its extra/convlens.json gives convlens
                        the normalization and the class names.
  checkpoint.pt         the latest weights (torch.save of model.state_dict(), BatchNorm's
                        num_batches_tracked included), replaced at every checkpoint: watch this.
  checkpoint.json       its metrics (written just before it).
  step-000200.pt        a numbered copy of each checkpoint (the same bytes),
  step-000200.json      and its metrics.
  metrics.jsonl         every checkpoint's metrics, one JSON object a line (appended to).

A checkpoint is written every --every steps, at the end of each epoch and at the last step, in the
order: numbered weights, numbered metrics, checkpoint.json, checkpoint.pt, a metrics.jsonl line.
Each file is written to `.<name>.tmp-<pid>` in the same folder, flushed to disk and renamed into
place (os.replace), so a watcher never reads half a file. The metrics are the fields of
convlens' `Metrics`: arch, step, epoch (from 1), steps_per_epoch, loss (mean training loss since
the previous checkpoint), train_accuracy (on the current epoch's batches so far), test_accuracy
(on the first --eval-images test images; null when there are none), test_images, learning_rate,
elapsed_s, unix_time, checkpoint (the numbered weights file's name).
"""
import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
sys.path.insert(0, FIXTURES)
from custom_cnn import CustomCNN  # noqa: E402

ARCH = "custom-cnn"
MEAN, STD = 0.2860, 0.3530
# Fashion-MNIST's classes, in label order.
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
          "Bag", "Ankle boot"]


def read_idx(path):
    """The array of a gzip'd (or plain) IDX file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {stem}[.gz] in {folder}")


def load_split(folder, prefix):
    images = read_idx(find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(folder, f"{prefix}-labels-idx1-ubyte"))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def write_atomically(path, data):
    folder, name = os.path.split(path)
    temp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def save_program(model, out):
    """torch.export.save of `model` at batch 1 as out/model.pt2 (archive root `model/`), written
    in a temporary folder inside `out` and renamed into place. The archive carries convlens's
    `extra/convlens.json`: the input normalization and the class names."""
    model.eval()
    ep = torch.export.export(model, (torch.zeros(1, 1, 28, 28),))
    extra = {"convlens.json": json.dumps({"mean": [MEAN], "std": [STD], "labels": LABELS})}
    temp = tempfile.mkdtemp(prefix=".tmp-model-", dir=out)
    try:
        torch.export.save(ep, os.path.join(temp, "model.pt2"), extra_files=extra)
        os.replace(os.path.join(temp, "model.pt2"), os.path.join(out, "model.pt2"))
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def accuracy(model, images, labels, batch=500):
    if len(labels) == 0:
        return 0.0
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch):
            logits = model(images[start:start + batch])
            correct += int((logits.argmax(1) == labels[start:start + batch]).sum())
    model.train(was_training)
    return correct / len(labels)


def write_checkpoint(out, model, metrics):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    weights = buf.getvalue()
    pretty = json.dumps(metrics, indent=2).encode()
    numbered = os.path.join(out, metrics["checkpoint"])
    write_atomically(numbered, weights)
    write_atomically(os.path.splitext(numbered)[0] + ".json", pretty)
    write_atomically(os.path.join(out, "checkpoint.json"), pretty)
    write_atomically(os.path.join(out, "checkpoint.pt"), weights)
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write(json.dumps(metrics, separators=(",", ":")) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="convlens-torch-train", help="output folder")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps in all")
    p.add_argument("--every", type=int, default=100,
                   help="checkpoint every N steps (and at each epoch's end and the last step)")
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the order")
    p.add_argument("--data", default=os.path.join(FIXTURES, "fashion-mnist"),
                   help="folder of the Fashion-MNIST IDX files")
    p.add_argument("--eval-images", type=int, default=None,
                   help="evaluate on the first N test images at each checkpoint (all by default)")
    args = p.parse_args()
    if min(args.steps, args.every, args.batch) < 1:
        p.error("--steps, --every and --batch must be at least 1")

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    if args.eval_images is not None:
        test_x, test_y = test_x[:args.eval_images], test_y[:args.eval_images]
    steps_per_epoch = len(train_y) // args.batch
    if steps_per_epoch == 0:
        p.error(f"the training set has {len(train_y)} images, fewer than one batch")
    os.makedirs(args.out, exist_ok=True)

    model = CustomCNN()
    for m in model.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    save_program(model, args.out)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    started = time.time()
    step = 0
    window = []
    epoch = 0
    while step < args.steps:
        epoch += 1
        order = torch.from_numpy(rng.permutation(len(train_y)))
        seen = correct = 0
        for i in range(steps_per_epoch):
            index = order[i * args.batch:(i + 1) * args.batch]
            x, y = train_x[index], train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            window.append(loss.item())
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            last = step == args.steps
            if step % args.every == 0 or i + 1 == steps_per_epoch or last:
                test_acc = accuracy(model, test_x, test_y)
                metrics = {
                    "arch": ARCH,
                    "step": step,
                    "epoch": epoch,
                    "steps_per_epoch": steps_per_epoch,
                    "loss": sum(window) / len(window),
                    "train_accuracy": correct / seen,
                    "test_accuracy": test_acc if len(test_y) else None,
                    "test_images": len(test_y),
                    "learning_rate": args.lr,
                    "elapsed_s": time.time() - started,
                    "unix_time": time.time(),
                    "checkpoint": f"step-{step:06d}.pt",
                }
                window = []
                write_checkpoint(args.out, model, metrics)
                print(f"step {step:6d}  epoch {epoch}  loss {metrics['loss']:.4f}  "
                      f"train {metrics['train_accuracy']:.3f}  test {test_acc:.3f}", flush=True)
            if last:
                break


if __name__ == "__main__":
    main()
