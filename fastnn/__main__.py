"""The fastnn command line: ``fastnn demo``, ``fastnn bench``, ``fastnn cv-delta``.

Also ``python -m fastnn ...``. Progress bars go to stderr and only on a terminal.
"""

import argparse
import sys

DESCRIPTION = ("fastnn: multilayer perceptrons on the CPU with compiled hot loops. "
               "Run 'fastnn COMMAND --help' for a command's options.")

STORY_NAMES = {"1": "truth_table", "2": "outliers", "3": "digits", "4": "cnn"}


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_int(text):
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _n_jobs(text):
    """joblib's n_jobs: a positive count, or -1 for all cores (-2 all but one, ...)."""
    value = _integer(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a positive count or -1 (all cores), got 0")
    return value


def _seed(text):
    value = _integer(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**32 - 1, got {value}")
    return value


def _folds(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"cross-validation needs at least 2 folds, got {value}")
    return value


def _deltas(text):
    """One or more positive numbers; commas separate values too ("0.1,1")."""
    values = []
    for part in text.replace(",", " ").split():
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"delta must be a number, got {part!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"delta must be positive and finite, got {part}")
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError("expected at least one delta")
    return values


def _sizes(text):
    try:
        sizes = tuple(int(s) for s in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes such as 32 or 64,32, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers, got {text!r}")
    return sizes


def _stories(text):
    names = []
    for part in text.replace(",", " ").split():
        name = STORY_NAMES.get(part, part)
        if name not in STORY_NAMES.values():
            raise argparse.ArgumentTypeError(
                f"unknown story {part!r}; expected 1, 2, 3, 4 or {', '.join(STORY_NAMES.values())}")
        names.append(name)
    return names


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="fastnn", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")

    demo = sub.add_parser(
        "demo", help="four short stories about what a loss does to learning: tables, PNGs",
        description="1. a sigmoid network on a truth table, squared error vs log-loss; "
                    "2. a line through 40 points with 5 outliers: squared error, Huber, "
                    "absolute error; 3. digits: fastnn vs scikit-learn, accuracy and fit "
                    "time; 4. digits as images: a small CNN vs the MLP (or, with "
                    "--cifar10 DIR, the article's CIFAR-10 model). Each prints a table and "
                    "writes a PNG (with matplotlib).")
    demo.add_argument("--out", default="fastnn-demo", metavar="DIR",
                      help="folder for the PNGs (default ./fastnn-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=30,
                      help="training epochs of stories 3 and 4 (default 30)")
    demo.add_argument("--stories", type=_stories, default=list(STORY_NAMES.values()),
                      metavar="LIST", help="which stories, e.g. 1,3 (default all four)")
    demo.add_argument("--no-plots", action="store_true", help="print the tables only")
    demo.add_argument("--cifar10", metavar="DIR",
                      help="story 4 trains the article's model on CIFAR-10 from DIR (the "
                           "Python batches, cifar-10-batches-py; fastnn downloads nothing)")

    bench = sub.add_parser(
        "bench", help="fastnn vs scikit-learn (and PyTorch if installed): time per step",
        description="The side-by-side benchmark (fastnn.bench.compare, also "
                    "python -m fastnn.bench.compare), with quick settings (a few minutes "
                    "on 2 cores) unless --full. Prints a table and writes compare.json and "
                    "compare.png into --out (default ./fastnn-bench, in the current folder).")
    bench.add_argument("--full", action="store_true",
                       help="every row with more epochs and repeats (the published figures)")
    selection = bench.add_argument_group("what to time (default: every row the preset has)")
    selection.add_argument("--workloads", help="comma-separated: tiny,digits,mid,big,deep_tanh,wide or all")
    selection.add_argument("--impls", help="comma-separated: numba,cython,numpy,sklearn,jax,torch")
    selection.add_argument("--dtypes", help="float32,float64 (default both)")
    selection.add_argument("--threads", choices=("best", "1", "all"),
                           help="BLAS threads: 1, all cores, or the faster of both (default)")
    selection.add_argument("--epochs", type=_positive_int, help="epochs per timed fit")
    selection.add_argument("--repeats", type=_positive_int, help="timed fits per row")
    bench.add_argument("--out", default="fastnn-bench", metavar="DIR",
                       help="folder for compare.json/png (default ./fastnn-bench)")

    cv = sub.add_parser(
        "cv-delta", help="cross-validate the Huber delta of a standardized MLPRegressor on a CSV",
        description="Cross-validates the Huber delta of StandardScaler -> "
                    "MLPRegressor(loss='huber') with a standardized target (delta in units "
                    "of the target's standard deviation) on a CSV with a header row; every "
                    "other column is a feature. Prints delta against the mean and std of "
                    "the score, the best delta, and writes the validation curve as a PNG. "
                    "Example data: fastnn/data/outliers.csv (target y).")
    cv.add_argument("data", metavar="DATA.csv", help="CSV file with a header row")
    cv.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    cv.add_argument("--deltas", type=_deltas, nargs="+", metavar="DELTA",
                    help="deltas to try (default 0.03 0.1 0.3 1 3 10)")
    cv.add_argument("--cv", type=_folds, default=5, help="folds (default 5)")
    cv.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                    help="parallel fits (joblib; -1: all cores; default 1, or every worker "
                         "with --scheduler)")
    cv.add_argument("--scheduler", metavar="ADDRESS",
                    help="run the fits on a Dask cluster (e.g. tcp://host:8786) through "
                         "joblib's dask backend")
    cv.add_argument("--scoring", default="neg_median_absolute_error",
                    help="scikit-learn scorer name (default neg_median_absolute_error: "
                         "outliers in the test folds do not swamp it)")
    cv.add_argument("--hidden-layer-sizes", type=_sizes, default=(32,), metavar="SIZES",
                    help="e.g. 32 or 64,32 (default 32)")
    cv.add_argument("--max-iter", type=_positive_int, default=500, help="epochs (default 500)")
    cv.add_argument("--random-state", type=_seed, default=0,
                    help="seed of the folds and weights (default 0)")
    cv.add_argument("--out", default="fastnn-cv-delta.png", metavar="PNG",
                    help="validation curve PNG (default ./fastnn-cv-delta.png; '' for none)")
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 bad input data, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Invalid values are rejected by each sub-command's own parser (type=...), so the
    # error shows that command's usage, not the top-level one.
    if args.command == "demo":
        from . import _demo

        try:
            _demo.run(epochs=args.epochs, plot_dir=None if args.no_plots else args.out,
                      stories=args.stories, cifar10=args.cifar10)
        except (FileNotFoundError, ValueError) as exc:  # --cifar10's data: bad input
            if args.cifar10 is None:
                raise
            print(f"fastnn demo: error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "bench":
        from . import _bench

        try:
            plan = _bench.plan(full=args.full, workloads=args.workloads, impls=args.impls,
                               dtypes=args.dtypes, threads=args.threads, epochs=args.epochs,
                               repeats=args.repeats)
        except _bench.BenchUnavailable as exc:
            print(f"fastnn bench: error: {exc}", file=sys.stderr)
            return 1
        except ValueError as exc:  # an unknown workload, implementation or dtype
            print(f"fastnn bench: error: {exc}", file=sys.stderr)
            return 2
        _bench.run(plan, out=args.out)
        return 0
    if args.command == "cv-delta":
        from . import _cvdelta

        deltas = ([d for group in args.deltas for d in group] if args.deltas
                  else list(_cvdelta.DEFAULT_DELTAS))
        try:
            _cvdelta.run(args.data, args.target, deltas, cv=args.cv, n_jobs=args.n_jobs,
                         scheduler=args.scheduler, scoring=args.scoring,
                         hidden_layer_sizes=args.hidden_layer_sizes, max_iter=args.max_iter,
                         random_state=args.random_state, png=args.out or None)
        except _cvdelta.DataError as exc:
            print(f"fastnn cv-delta: error: {exc}", file=sys.stderr)
            return 1
        return 0
    parser.error(f"unknown command {args.command!r}")  # unreachable: argparse checks


if __name__ == "__main__":
    sys.exit(main())
