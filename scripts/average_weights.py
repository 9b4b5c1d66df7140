"""Average the weights of MedEIR model folders of one shape (a "model soup", e.g. two stages of one run).

Usage: ``python scripts/average_weights.py runs/small/final runs/small-stage2/final --output runs/soup/final``;
``--weights 3 1`` takes a weighted mean instead (here 3/4 of the first folder, 1/4 of the second). The result is a
float32 model folder, with the first folder's config, tokenizer and query/document prompts, that ``medeir eval
--model`` and ``medeir.hub.refresh_root`` take.
"""

from __future__ import annotations

import argparse

from medeir.hub import average_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="model folders to average (two or more)")
    parser.add_argument("--output", required=True, help="folder to write the averaged model into")
    parser.add_argument("--weights", nargs="+", type=float, help="one positive weight per folder (default: equal)")
    args = parser.parse_args()
    print(average_models(args.sources, args.output, weights=args.weights))


if __name__ == "__main__":
    main()
