"""Short-chunk CNN speed: forward and training-step times, batch 1 and 16, CPU (and GPU).

    .venv/bin/python benchmarks/bench_cnn.py                       # widths 128 (paper), 32, 16
    .venv/bin/python benchmarks/bench_cnn.py --widths 16 --epoch-songs 8   # + one real epoch

Prints the median over --repeats runs after one warm-up run. The baseline row is the mel front
end alone (what every width pays). A training step is forward + BCE + backward + Adam step on
59049-sample chunks; with batch 1 the batch-norm layers run in inference mode, as they do when
`CNNMember.update_songs` fine-tunes (batch norm cannot train on a single example).

--epoch-songs N times one real training epoch (one random chunk per song, the paper's loader)
plus the validation pass on N Emotify songs from ../shared/data, and extrapolates to the
400-song corpus, so the cost of pre-training on this machine can be judged without running it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cnn import CHUNK_SAMPLES, CNNMember, MelFrontEnd, ShortChunkCNN  # noqa: E402


def median_time(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_device(device: torch.device, widths, batches, repeats: int) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"\n# device {device} ({torch.get_num_threads()} CPU threads), median of {repeats} runs, ms")
    print(f"{'model':<22}{'batch':>6}{'forward':>12}{'train step':>12}")
    for batch in batches:
        x = torch.randn(batch, CHUNK_SAMPLES, device=device)
        front = MelFrontEnd().to(device)
        with torch.no_grad():
            t = median_time(lambda: front(x), repeats, sync)
        print(f"{'front end (baseline)':<22}{batch:>6}{t * 1e3:>12.1f}{'-':>12}")
    for width in widths:
        model = ShortChunkCNN(width).to(device)
        params = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss_fn = nn.BCEWithLogitsLoss()
        for batch in batches:
            x = torch.randn(batch, CHUNK_SAMPLES, device=device)
            target = torch.zeros(batch, 4, device=device)
            target[:, 0] = 1

            def forward():
                model.eval()
                with torch.no_grad():
                    model(x)

            def step():
                model.train()
                if batch == 1:
                    for m in model.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), target).backward()
                optimizer.step()

            f, s = median_time(forward, repeats, sync), median_time(step, repeats, sync)
            label = f"n_channels={width} ({params / 1e6:.2f}M)"
            print(f"{label:<22}{batch:>6}{f * 1e3:>12.1f}{s * 1e3:>12.1f}")


def bench_epoch(width: int, n_songs: int, device: torch.device) -> None:
    from trompa_mer.audio_cache import AudioCache

    audio_dir = settings.SHARED_DATA_DIR / "emotify" / "audio"
    if not audio_dir.is_dir():
        print(f"\n# epoch timing skipped: {audio_dir} not found")
        return
    files = {str(i): audio_dir / f"{i}.mp3" for i in range(1, 401, max(1, 400 // n_songs))}
    files = dict(list(files.items())[:n_songs])
    cache = AudioCache(files, settings.CACHE_DIR / "audio16k_emotify")
    start = time.perf_counter()
    cache.prepare()
    decode_s = time.perf_counter() - start
    ids = list(files)
    labels = np.arange(len(ids)) % 4  # timing only: the labels do not change the cost
    member = CNNMember(n_channels=width, epochs=1, val_fraction=0.0, progress=False, device=device)
    start = time.perf_counter()
    member.fit_songs(ids, labels, cache)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    member.predict_proba_songs(ids, cache)
    eval_s = time.perf_counter() - start
    per_song_train, per_song_eval = train_s / len(ids), eval_s / len(ids)
    # One epoch over the corpus: 90 % of 400 songs train (1 chunk each), 10 % validate.
    epoch_400 = 360 * per_song_train + 40 * per_song_eval
    print(f"\n# one real epoch, n_channels={width}, {len(ids)} Emotify songs, device {device}")
    print(f"decode+resample+cache: {decode_s / len(ids) * 1e3:.0f} ms/song (once)")
    print(f"train: {per_song_train:.3f} s/song (1 random chunk); "
          f"evaluate: {per_song_eval:.3f} s/song (all 9 chunks of a 30 s clip)")
    print(f"extrapolated 400-song epoch: {epoch_400:.0f} s; 200 epochs (paper) x 5 members: "
          f"{epoch_400 * 200 * 5 / 3600:.1f} h; 30 epochs x 5 members: {epoch_400 * 30 * 5 / 3600:.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="128,32,16", help="comma-separated n_channels values")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--epoch-songs", type=int, default=0,
                        help="also time one real epoch on this many Emotify songs (0: skip)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU table (GPU only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, chunk {CHUNK_SAMPLES} samples at 16 kHz")
    if not args.no_cpu:
        bench_device(torch.device("cpu"), widths, batches, args.repeats)
    if torch.cuda.is_available():
        print(f"\nGPU: {torch.cuda.get_device_name()}")
        bench_device(torch.device("cuda"), widths, batches, args.repeats)
    else:
        print("\n# no CUDA device: GPU table skipped")
    if args.epoch_songs:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        for width in widths:
            bench_epoch(width, args.epoch_songs, device)


if __name__ == "__main__":
    main()
