"""Convert the musicnn release's MSD checkpoint to the .npz that trompa_mer.musicnn loads.

Run once, outside the project's environment, in a throwaway virtualenv that has TensorFlow and
the `musicnn` wheel (it ships the checkpoint):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 librosa
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfvenv/bin/python tools/convert_musicnn.py

It writes trompa_mer/weights/musicnn_msd.npz (the model's variables without the optimiser's
slots) and tests/golden/musicnn_reference.npz: the original TensorFlow graph's outputs on a
fixed, seeded input, which tests/test_musicnn.py compares the torch port against.
"""
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import musicnn
    import tensorflow as tf
    from musicnn import models

    checkpoint = os.path.join(os.path.dirname(musicnn.__file__), "MSD_musicnn") + "/"
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint)
    names = sorted(n for n in reader.get_variable_to_shape_map()
                   if "Adam" not in n and not n.startswith("beta"))
    weights = {n: reader.get_tensor(n).astype(np.float32) for n in names}
    out = ROOT / "trompa_mer" / "weights" / "musicnn_msd.npz"
    np.savez(out, **weights)
    print(f"{out}: {len(weights)} arrays, {sum(v.size for v in weights.values())} parameters")

    # Reference outputs of the original graph on a seeded input shaped like three patches
    # of a log-compressed mel spectrogram (values in the range real music gives, 0..4).
    rng = np.random.default_rng(20261205)
    x = (rng.random((3, 187, 96)) * 4).astype(np.float32)
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            inp = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
            training = tf.compat.v1.placeholder(tf.bool)
            logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
                inp, training, "MSD_musicnn", 50)
        with tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.train.Saver().restore(sess, checkpoint)
            tags, pen, mx, mn = sess.run([tf.nn.sigmoid(logits), penultimate, max_pool, mean_pool],
                                         feed_dict={inp: x, training: False})
    ref = ROOT / "tests" / "golden" / "musicnn_reference.npz"
    np.savez_compressed(ref, input=x, tags=tags, penultimate=pen, max_pool=mx, mean_pool=mn)
    print(f"{ref}: tags {tags.shape}, penultimate {pen.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
