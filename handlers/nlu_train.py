"""Training and measuring the classifier's model on the corpus in ``common/data/nlu/``.

Used by ``volunteer-bot nlu train`` and ``volunteer-bot nlu eval`` (and the regression test):
a corpus line is ``{"text", "intent", "category" (for request_service, else null), "action"?}``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from common.taxonomy import CATEGORIES, INTENTS
from handlers.nlu import Classification, classify, classify_rules, features, without_people
from handlers.nlu_model import Model, category_view, train_head
from handlers.understanding import options

__all__ = ["Report", "corpus_path", "evaluate", "load_corpus", "train"]


CATEGORY_TEMPERATURE = 1.8
# the weights are less regularised than they were (l2 3e-5), so the intent softmax is softened to match:
# a bare "帮忙" must still be asked about
INTENT_TEMPERATURE = 1.8


def corpus_path(split: str) -> Path:
    return Path(str(files("common").joinpath("data", "nlu", f"{split}.jsonl")))


def load_corpus(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, row in enumerate(rows, 1):
        request = row["intent"] == "request_service"
        if row["intent"] not in INTENTS or request != (row["category"] is not None) \
                or (request and row["category"] not in CATEGORIES):
            raise ValueError(f"{path}:{number}: bad labels {row}")
    return rows


def train(rows: list[dict[str, Any]], *, epochs: int = 40) -> Model:
    examples = [(features(row["text"]), row) for row in rows]
    intent = train_head([(f, row["intent"]) for f, row in examples], INTENTS, epochs=epochs)
    # who the request is for is left out: the need decides the category (see ``without_people``)
    category = train_head([(category_view(without_people(f)), row["category"]) for f, row in examples if row["category"]],
                          CATEGORIES, epochs=epochs, learn_bias=False, min_count=1)
    # no learned prior for categories (with few known words, a prior picks whichever category the corpus
    # wrote most of), and a softer softmax: a wrong category is then more often asked about than asserted
    category = replace(category, temperature=CATEGORY_TEMPERATURE)
    intent = replace(intent, temperature=INTENT_TEMPERATURE)
    meta = {"train_size": len(rows), "epochs": epochs,
            "features": {"intent": len(intent.weights), "category": len(category.weights)}}
    return Model(intent, category, meta)


@dataclass
class Report:
    size: int = 0
    intent_ok: int = 0
    category_size: int = 0
    category_ok: int = 0
    intents: Counter[tuple[str, str]] = field(default_factory=Counter)  # (gold, predicted)
    categories: Counter[tuple[str, str]] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)
    asked_wrong: int = 0  # wrong intents the engine would have asked back about instead of acting on
    asked_right: int = 0  # right intents it would still have asked about

    @property
    def intent_accuracy(self) -> float:
        return self.intent_ok / self.size if self.size else 1.0

    @property
    def category_accuracy(self) -> float:
        return self.category_ok / self.category_size if self.category_size else 1.0

    def table(self, which: str) -> str:
        labels = INTENTS if which == "intent" else CATEGORIES
        cells = self.intents if which == "intent" else self.categories
        width = max(len(label) for label in labels) + 1
        short = [label[:6] for label in labels]
        lines = [" " * width + " ".join(f"{s:>6}" for s in short) + "   (rows: gold, columns: predicted)"]
        for gold in labels:
            lines.append(f"{gold:<{width}}" + " ".join(f"{cells[(gold, p)] or '.':>6}" for p in labels))
        return "\n".join(lines)


def evaluate(rows: list[dict[str, Any]], *, rules_only: bool = False) -> Report:
    """Intent accuracy over all rows; category accuracy over the rows labelled request_service,
    counted only when the intent is right too (a wrong intent gives no category)."""
    report = Report()
    for row in rows:
        result: Classification = classify_rules(row["text"]) if rules_only else classify(row["text"])
        report.size += 1
        report.intents[(row["intent"], result.intent)] += 1
        report.intent_ok += result.intent == row["intent"]
        if options(result):
            report.asked_wrong += result.intent != row["intent"]
            report.asked_right += result.intent == row["intent"]
        if row["category"] is not None:
            predicted = result.category or "-"
            report.category_size += 1
            report.category_ok += predicted == row["category"]
            if predicted != "-":
                report.categories[(row["category"], predicted)] += 1
        if (result.intent, result.category) != (row["intent"], row["category"]):
            report.misses.append(f"{row['text']!r}: {result.intent}/{result.category} "
                                 f"(expected {row['intent']}/{row['category']}, p={result.confidence}"
                                 + (f", category p={result.category_confidence})" if result.category else ")"))
    return report
