"""Classifier speed and dev-set accuracy: the model (lexicons + trained weights) beside the rules alone.

    python bench/bench_nlu.py [--rounds 20]

Prints microseconds per message (mean; wall clock and this process's CPU time, which a busy machine
inflates less) over the NLU dev split (common/data/nlu/dev.jsonl) and
intent / category accuracy on it, for ``classify`` and the old rule classifier ``classify_rules``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.nlu import classify, classify_rules  # noqa: E402
from handlers.nlu_model import load_model  # noqa: E402
from handlers.nlu_train import corpus_path, evaluate, load_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dev", type=Path, default=corpus_path("dev"))
    args = parser.parse_args()
    rows = load_corpus(args.dev)
    texts = [row["text"] for row in rows]
    start = time.perf_counter()
    load_model()
    print(f"model load: {(time.perf_counter() - start) * 1e3:.0f} ms (once per process)")
    for name, func in (("classify (model)", classify), ("classify_rules (old)", classify_rules)):
        func(texts[0])
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.rounds):
            for text in texts:
                func(text)
        count = args.rounds * len(texts)
        per_message = (time.perf_counter() - start) / count
        cpu_per_message = (time.process_time() - cpu) / count
        report = evaluate(rows, rules_only=func is classify_rules)
        print(f"{name:22} {len(texts)} messages x {args.rounds} rounds: {per_message * 1e6:.0f} µs per message "
              f"(CPU {cpu_per_message * 1e6:.0f} µs); intent {report.intent_accuracy:.3f}, "
              f"category {report.category_accuracy:.3f}")


if __name__ == "__main__":
    main()
