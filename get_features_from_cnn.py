#!/usr/bin/env python3
"""Stage 2: VGG-16 fc2 ("fc7") features of every downloaded poster, into HDF5."""

from __future__ import annotations

import sys

try:
    from posters_cnn import cli
except ModuleNotFoundError as exc:  # run with a Python that lacks the requirements
    sys.exit(f"{sys.argv[0]}: the Python package {exc.name!r} is missing: run `make setup`, then "
             f"`. .venv/bin/activate` (or run this script with .venv/bin/python)")

EXAMPLES = """\
examples:
  # the ImageNet weights, downloaded once by Keras into ~/.keras/models
  python get_features_from_cnn.py -i data/posters.csv -o data/features.h5

  # offline: a local Keras weights file, or the original project's vgg16_weights.h5
  python get_features_from_cnn.py -i data/posters.csv -o data/features.h5 \\
      --weights ~/Downloads/vgg16_weights_tf_dim_ordering_tf_kernels.h5

  # on a GPU, with float16 arithmetic and bigger batches
  python get_features_from_cnn.py -i data/posters.csv -o data/features.h5 --batch-size 64 --precision float16

  # float32 arithmetic even where the CPU computes bfloat16 natively (auto would pick bfloat16)
  python get_features_from_cnn.py -i data/posters.csv -o data/features.h5 --precision float32

Re-running computes only the posters not yet in the output file. Images that
cannot be read are logged and listed in the file's skipped_id dataset.
"""


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="get_features_from_cnn.py", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("-i", "--input", "--input_file", dest="input", default="data/posters.csv",
                        metavar="POSTERS_CSV", help="manifest written by get_posters.py (default: %(default)s)")
    parser.add_argument("-o", "--output", "--output_file", dest="output", default="data/features.h5",
                        metavar="FEATURES_H5", help="HDF5 file to create or extend (default: %(default)s)")
    parser.add_argument("--weights", default="imagenet", metavar="imagenet|random|PATH",
                        help="imagenet (Keras's download and cache), random (tests only: meaningless "
                             "features) or a weights file, Keras .h5 or the original vgg16_weights.h5 "
                             "(default: %(default)s)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=32, metavar="N",
                        help="images per forward pass (default: %(default)s)")
    parser.add_argument("--layer", default="fc2", choices=["fc2"],
                        help="layer whose output is stored; fc2 is the paper's fc7 (default: %(default)s)")
    parser.add_argument("--jobs", type=cli.positive_int, default=2, metavar="N",
                        help="threads decoding and resizing images (default: %(default)s)")
    parser.add_argument("--crop", choices=["none", "center"], default="none",
                        help="none: resize the whole poster to 224x224 as the original did; "
                             "center: cut the centred square first (default: %(default)s)")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                        help="arithmetic of the network; auto = bfloat16 on a CPU that computes it natively "
                             "(avx512_bf16 or amx_bf16: about twice as fast), else float32; features are "
                             "always stored as float32 (default: %(default)s)")
    parser.add_argument("--mixed-precision", action="store_const", dest="precision", const="float16",
                        help="the same as --precision float16 (for GPUs)")
    parser.add_argument("--xla", choices=["auto", "on", "off"], default="auto",
                        help="compile the forward pass with XLA; auto = on GPUs only (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --weights random (default: %(default)s)")
    parser.add_argument("--limit", type=cli.positive_int, default=None, metavar="N",
                        help="only the first N posters of the manifest")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the output file afresh instead of extending it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def body(args) -> int:
    import os

    # TensorFlow's start-up notices (CUDA probing on a CPU machine, oneDNN) look like failures:
    # shown with -v only. The device used is stated in one log line either way.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if args.verbosity > 0 else "3"
    from posters_cnn.features import stage as features

    with cli.OutputLock(args.output):  # one run per output file: a second one stops at once
        summary = features.extract(
            args.input, args.output, weights=args.weights, batch_size=args.batch_size, jobs=args.jobs,
            crop=None if args.crop == "none" else args.crop, seed=args.seed,
            precision=args.precision, jit={"auto": None, "on": True, "off": False}[args.xla],
            overwrite=args.overwrite, limit=args.limit, progress=not args.no_progress)
    print(f"{summary.line()} in {summary.seconds:.1f}s -> {args.output}")
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
