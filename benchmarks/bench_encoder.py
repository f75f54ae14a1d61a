#!/usr/bin/env python3
"""Seconds per pre-training epoch per hour of audio, SCAE and CPC, by width (CPU or CUDA).

  python benchmarks/bench_encoder.py [--widths 8 16 32] [--runs 3] [--batches 3]

Times `--batches` training steps (forward, backward, Adam) on random patches, `--runs` times,
and reports the median seconds per patch times the patches in one hour of audio (one patch
every 15 frames of 512 samples at 16 kHz: 7500 per hour; CPC sees each patch about once per
epoch, in 6-patch sequences).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trompa_mer import encoder as E  # noqa: E402
from trompa_mer import logmel  # noqa: E402

PATCHES_PER_HOUR = 3600 * logmel.SAMPLE_RATE / logmel.HOP_LENGTH / logmel.PATCH_HOP


def seconds_per_patch(method, width, runs, batches, device):
    torch.manual_seed(0)
    model = E.make_model(method, width).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=E.LR, amsgrad=True)
    size = E.DEFAULT_BATCH[method]
    shape = (size, 128, 31) if method == "scae" else (size, E.CPC_SEQUENCE, 128, 31)
    x = torch.randn(shape, device=device)
    patches = size * (1 if method == "scae" else E.CPC_SEQUENCE)

    def step():
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batches):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / (batches * patches))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32], help="encoder widths (default 8 16 32)")
    p.add_argument("--methods", nargs="+", default=list(E.METHODS), help="scae and/or cpc (default both)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per cell; the median is reported (default 3)")
    p.add_argument("--batches", type=int, default=3, help="training steps per run (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = E.resolve_device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {PATCHES_PER_HOUR:.0f} patches per hour, "
          f"median of {args.runs} runs x {args.batches} batches")
    print("| method | width | ms / patch | s / epoch / hour of audio |")
    print("|---|---|---|---|")
    for method in args.methods:
        for width in args.widths:
            s = seconds_per_patch(method, width, args.runs, args.batches, device)
            print(f"| {method} | {width} | {1000 * s:.2f} | {s * PATCHES_PER_HOUR:.0f} |", flush=True)


if __name__ == "__main__":
    main()
