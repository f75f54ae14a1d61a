#!/usr/bin/env python3
"""How a saved committee does on a corpus it never trained on: song macro F1, accuracy and the
confusion of its mean song probability on every clip of 4Q or Emotify.

  python experiments/cross_corpus.py --committee models/pretrained --corpus emotify
  python experiments/cross_corpus.py --committee OLD_EMOTIFY_COMMITTEE --corpus 4q

Only meaningful for a committee that has not seen the corpus (its model card names its corpus);
the 4Q committee's own held-out scores come from deam_classifier.py's cross-validation.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import settings  # noqa: E402
from trompa_mer.cli import main_wrapper, positive_int  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--committee", required=True, help="committee folder (committee.json)")
    p.add_argument("--corpus", choices=("4q", "emotify"), required=True,
                   help="4q: its quadrants; emotify: the av-median quadrants of its GEMS ticks")
    p.add_argument("--shared", default=str(settings.SHARED_DATA_DIR), help="folder with 4q/ and emotify/ (default %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS, help="extraction processes")
    args = p.parse_args()

    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from trompa_mer.committee import Committee
    from trompa_mer.datasets import emotify, fourq
    from trompa_mer.datasets.corpus_cache import corpus_features
    from trompa_mer.errors import MERError
    from trompa_mer.pool import load_pool

    committee = Committee.load(args.committee)
    corpus = committee.manifest.get("corpus") or {}
    trained_on = corpus.get("name", "?") if isinstance(corpus, dict) else str(corpus)
    root = Path(args.shared) / args.corpus
    if args.corpus == "4q":
        labels = fourq.read_quadrants(root / "annotations.csv")
    else:
        labels = emotify.track_labels(root / "annotations.csv", "av-median").to_dict()
    corpus_name = fourq.CORPUS["name"] if args.corpus == "4q" else "Emotify"
    if trained_on == corpus_name:
        raise MERError(f"{args.committee}: trained on {trained_on}; evaluate it on the other corpus")
    pool = load_pool(corpus_features(args.corpus, root / "audio", settings.CACHE_DIR, args.jobs, True), jobs=args.jobs)
    ids = np.asarray(pool.song_ids).astype(str)
    keep = np.array([s in labels for s in ids])
    songs = pool
    if committee.of_kind("audio"):  # its audio members (the default's musicnn) read the clips
        from trompa_mer.audio_cache import AudioCache
        from trompa_mer.committee import Songs
        from trompa_mer.datasets.corpus_cache import folder_signature

        # the cache folder deam_classifier.py --dataset uses, so embeddings made there are reused
        audio = AudioCache.from_folder(root / "audio", settings.CACHE_DIR
                                       / f"{args.corpus}-audio-{folder_signature(root / 'audio')}")
        songs = Songs.from_offsets(pool.X, pool.offsets, ids.tolist(), audio=audio)
    proba = committee.song_proba(songs).mean(axis=0)[keep]
    truth = np.array([labels[s] for s in ids[keep]])
    predicted = proba.argmax(axis=1)
    print(f"committee {args.committee} (trained on {trained_on}) on {len(truth)} {args.corpus} songs: "
          f"macro F1 {f1_score(truth, predicted, average='macro'):.3f}, accuracy {accuracy_score(truth, predicted):.3f}")
    print("confusion (rows: true Q1..Q4, columns: predicted):")
    for row in confusion_matrix(truth, predicted, labels=range(4)):
        print("  " + " ".join(f"{v:5d}" for v in row))


if __name__ == "__main__":
    main_wrapper(main)
