"""The fastnn command line: ``python -m fastnn demo``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train on scikit-learn's digits, print accuracy and time")
    demo.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.epochs < 1:
            parser.error("--epochs must be at least 1")
        from ._demo import run

        run(epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
