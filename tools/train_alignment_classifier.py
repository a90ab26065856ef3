"""Train the text-alignment judge on real moving-shapes clips and write it as safetensors.

The judges of the default clip size and of configs/shapes_128.yaml and shapes_256.yaml ship with
the package; this is how they were made:

    python tools/train_alignment_classifier.py            # -> gan_video/assets/alignment_v6_64px_32f_800.safetensors
    python tools/train_alignment_classifier.py --resolution 128   # -> ..._128px_32f_800.safetensors
    python tools/train_alignment_classifier.py --resolution 256   # -> ..._256px_32f_800.safetensors (27 min, 9.3 GB)

Other sizes are trained and cached on first use, so this tool is only for replacing a shipped judge
(after a change to the classifier or to the built-in data, with CLASSIFIER_VERSION raised).
"""
import argparse
import time

from gan_video.metrics.alignment import ASSETS, classifier_name, save_classifier, train_classifier


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=None, help="output file (default: the package's assets folder)")
    args = ap.parse_args(argv)
    t0 = time.time()
    model, acc = train_classifier(args.resolution, args.frames, args.steps, seed=args.seed)
    out = args.out or ASSETS / f"alignment_{classifier_name(args.resolution, args.frames, args.steps)}.safetensors"
    save_classifier(model, acc, out, resolution=args.resolution, frames=args.frames, steps=args.steps,
                    seed=args.seed)
    print(f"accuracy on 1024 unseen real clips: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    print(f"wrote {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
