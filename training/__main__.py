"""python -m training reader|detector [options]: run one recipe (scripts/train is the way in)."""

import sys


def main() -> int:
    recipes = {"reader": "training.train_reader", "detector": "training.train_detector", "rules": "training.fit_rules",
               "text": "training.train_text"}
    if len(sys.argv) < 2 or sys.argv[1] not in recipes:
        print(f"usage: scripts/train {{{'|'.join(recipes)}}} [--help]", file=sys.stderr)
        return 2
    import importlib

    from training.data import DataError

    try:
        return importlib.import_module(recipes[sys.argv[1]]).main(sys.argv[2:])
    except DataError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
