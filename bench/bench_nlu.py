"""Classifier speed and dev-set accuracy.

    python bench/bench_nlu.py [--rounds 20]

Prints microseconds per message over the dev set and intent / category accuracy on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.nlu import classify  # noqa: E402

DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "requests_dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dev", type=Path, default=DEV)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["text"] for row in rows]
    classify(texts[0])
    start = time.perf_counter()
    for _ in range(args.rounds):
        for text in texts:
            classify(text)
    per_message = (time.perf_counter() - start) / (args.rounds * len(texts))
    results = [classify(text) for text in texts]
    intent_ok = sum(r.intent == row["intent"] for r, row in zip(results, rows, strict=True))
    requests = [(r, row) for r, row in zip(results, rows, strict=True) if row["intent"] == "request_service"]
    category_ok = sum(r.category == row["category"] for r, row in requests)
    print(f"{len(texts)} messages x {args.rounds} rounds: {per_message * 1e6:.0f} µs per message")
    print(f"intent accuracy {intent_ok}/{len(rows)} = {intent_ok / len(rows):.3f}; "
          f"category accuracy {category_ok}/{len(requests)} = {category_ok / max(len(requests), 1):.3f}")


if __name__ == "__main__":
    main()
