#!/usr/bin/env python3
"""Interaction latency of the terminal UI as a person sees it: a key sent through tmux until the
screen (tmux capture-pane, polled every ~2 ms) shows the answer. Warm daemon, demo model.

    python3 tui/scripts/latency.py [path/to/convlens] [--rounds N]

Each measure is repeated N times after one warm-up round (the daemon and its caches warm), and
the median and the spread are printed. Timings include tmux's own delay (a few ms): they are an
upper bound of the TUI's key-to-frame time. Not run by CI.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
rounds = 10
if "--rounds" in sys.argv:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
binary = os.path.abspath(args[0] if args else "target/release/convlens")
server = f"convlens-latency-{os.getpid()}"
work = tempfile.mkdtemp()
socket = os.path.join(work, "daemon.sock")


def tmux(*a):
    return subprocess.run(["tmux", "-L", server, *a], capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", "t")


def wait_for(ok, timeout=120.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        s = screen()
        if ok(s):
            return s
        time.sleep(0.002)
    raise SystemExit("timed out; screen:\n" + screen())


def title(s):
    return s.splitlines()[1] if len(s.splitlines()) > 1 else ""


def timed(key, ok):
    """Seconds from sending `key` to a screen that satisfies `ok`."""
    start = time.perf_counter()
    tmux("send-keys", "-t", "t", key)
    wait_for(ok)
    return time.perf_counter() - start


def report(name, samples):
    ms = sorted(1000 * s for s in samples)
    print(f"{name:<46} median {statistics.median(ms):7.1f} ms   min {ms[0]:7.1f}   max {ms[-1]:7.1f}   (n={len(ms)})")


try:
    tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", "-e", "TERM=xterm-256color",
         f"{binary} --socket {socket} --graphics halfblocks")
    wait_for(lambda s: "% " in s and "_conv_stem" in s)
    # Layer tree: Down/Up, a local redraw (plus the grid's request for the new layer).
    tree = []
    for i in range(rounds + 1):
        t = timed("Down", lambda s: "Units _bn0" in title(s))
        t2 = timed("Up", lambda s: "Units _conv_stem" in title(s))
        if i:
            tree += [t, t2]
    report("layer cursor → redrawn tree and grid title", tree)
    # Unit grid: a new layer's grid from the daemon (unit/activations; cached after round 1) ...
    if "not available from this daemon" in screen():
        print("unit grid                                       not measurable: this daemon has no unit/activations method")
    else:
        grid = []
        for i in range(rounds + 1):
            t = timed("Down", lambda s: "Units _bn0" in title(s) and "unit 0 of 0–31 · max" in s)
            t2 = timed("Up", lambda s: "Units _conv_stem" in title(s) and "unit 0 of 0–31 · max" in s)
            if i:
                grid += [t, t2]
        report("layer cursor → new layer's unit grid drawn", grid)
        # ... and the unit cursor moving over it (no daemon call).
        tmux("send-keys", "-t", "t", "Tab")
        tmux("send-keys", "-t", "t", "Tab")
        units = []
        for i in range(rounds + 1):
            t = timed("Right", lambda s: "unit 1 of 0–31 · max" in s)
            t2 = timed("Left", lambda s: "unit 0 of 0–31 · max" in s)
            if i:
                units += [t, t2]
        report("unit cursor → redrawn unit grid", units)
        tmux("send-keys", "-t", "t", "Tab")
        tmux("send-keys", "-t", "t", "Tab")
    # Next image → its top-5 (a daemon round trip: image/predict, cached after the first round).
    images = []
    for i in range(rounds + 1):
        t = timed("]", lambda s: "chelsea.jpg ▶" not in s and "▶ chelsea.jpg" in s and "% " in s)
        t2 = timed("[", lambda s: "▶ astronaut.jpg" in s and "% " in s)
        if i:
            images += [t, t2]
    report("next image → its top-5 (image/predict)", images)
    # Overlay method → new overlay picture (image/explain; cached by the daemon after round 1).
    timed("o", lambda s: "Overlay gradcam at " in title(s))
    overlay = []
    for i in range(rounds + 1):
        t = timed("m", lambda s: "Overlay gradcam++ at " in title(s))
        t2 = timed("M", lambda s: "Overlay gradcam at " in title(s))
        if i:
            overlay += [t, t2]
    report("overlay method → new overlay (image/explain)", overlay)
finally:
    tmux("kill-server")
    out = subprocess.run([binary, "--socket", socket, "status"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("daemon pid"):
            try:
                os.kill(int(line.split()[2]), 15)
            except (ValueError, ProcessLookupError):
                pass
    shutil.rmtree(work, ignore_errors=True)
