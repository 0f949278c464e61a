"""A small linear model for the classifier: softmax regression over sparse features.

Pure Python, no numpy: a message has a few hundred features at most (character 1–3-grams, words
and word pairs of the normalised text, plus the rule lexicons' scores, see ``handlers.nlu``), so
scoring is a few hundred dictionary look-ups. The trained weights are a JSON file shipped in
``common/data/nlu/model.json`` (written by ``volunteer-bot nlu train``), read once, lazily.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["Head", "Model", "category_view", "load_model", "ngram_features", "train_head"]

MODEL_NAME = "model.json"
# the scores are divided by this before the softmax: a model trained to fit its corpus is too sure
# of itself, and the engine's ask-back threshold needs probabilities that mean something
TEMPERATURE = 1.5
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")
_HAN_RUN = re.compile(r"[^\sa-z0-9,.!?;:'\"()，。！？；：、（）…~～\-]+")

Features = dict[str, float]
_SUFFIXES = ("ing", "ies", "ied", "ed", "es", "s", "ly", "er")


# English function words: they say nothing about which kind of help is asked for, and in a small
# corpus they pick up whichever category wrote most English sentences ("won't" → repair)
_FUNCTION_WORDS = frozenset(
    "a an the my our your his her their its is are was were be been am i me we you he she it they them him us "
    "to of in on at for with and or but so that this these those do does did have has had can could would will "
    "won't can't don't doesn't isn't it's i'm i've not no some any there here what who when where how please "
    "just very really also now then".split())


# lexicon features the category head does not read: the verdict on the whole text, people included (it
# reads the scores of both, and the verdict on the text with its people masked, "lex:needcat:")
_WHOLE_TEXT_LEXICON = ("lex:rulecat:",)


def category_view(features: Features) -> Features:
    """The features the category head reads: without English function words and pairs of them, nor the
    lexicon scores that count who the request is for."""
    def content(name: str) -> bool:
        if name.startswith(_WHOLE_TEXT_LEXICON):
            return False
        if not name.startswith("w:"):
            return True
        return not all(part in _FUNCTION_WORDS for part in name[2:].split("_"))
    return {name: value for name, value in features.items() if content(name)}


def _stem(word: str) -> str | None:
    """A crude English stem ("visitor"/"visits"/"visiting" → "visit"), so that an inflection the
    corpus never showed still meets its family's weights; None when nothing is stripped."""
    if len(word) < 5 or not word.isalpha():
        return None
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    if word.endswith("or") and len(word) > 5:
        return word[:-2]
    return None


def ngram_features(norm: str) -> Features:
    """Presence features of a normalised text: character 1–3-grams inside each run of non-Latin text
    (with run edges marked), and Latin words and word pairs."""
    found: set[str] = set()
    for run in _HAN_RUN.findall(norm):
        padded = f"<{run}>"
        size = len(padded)
        for i in range(size):
            if i + 1 < size or padded[i] != ">":
                found.add(padded[i])
            if i + 2 <= size:
                found.add(padded[i:i + 2])
            if i + 3 <= size:
                found.add(padded[i:i + 3])
    found.discard("<")
    words = _WORD.findall(norm)
    found.update("w:" + w for w in words)
    found.update("s:" + stem for stem in map(_stem, words) if stem)
    found.update(f"w:{a}_{b}" for a, b in zip(words, words[1:], strict=False))
    if not found:
        return {}
    scale = 1 / math.sqrt(len(found))
    return dict.fromkeys(found, scale)


@dataclass(frozen=True, slots=True)
class Head:
    """One classification: its labels, a bias and a weight row (one weight per label) per feature."""

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, list[float]]
    temperature: float = TEMPERATURE

    def probabilities(self, features: Features) -> list[float]:
        # rows grouped by feature value (the n-grams share one), each group summed column-wise in C
        weights = self.weights
        groups: dict[float, list[list[float]]] = {}
        for name, value in features.items():
            row = weights.get(name)
            if row is not None:
                groups.setdefault(value, []).append(row)
        scores = list(self.bias)
        for value, rows in groups.items():
            for k, total in enumerate(map(sum, zip(*rows, strict=True))):
                scores[k] += total * value
        top = max(scores)
        exps = [math.exp((s - top) / self.temperature) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def ranked(self, features: Features) -> list[tuple[str, float]]:
        probs = self.probabilities(features)
        return sorted(zip(self.labels, probs, strict=True), key=lambda pair: -pair[1])

    def to_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "temperature": self.temperature, "bias": [round(b, 4) for b in self.bias],
                "weights": {name: [round(w, 3) for w in row] for name, row in sorted(self.weights.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Head:
        return cls(tuple(data["labels"]), tuple(data["bias"]), data["weights"], data.get("temperature", TEMPERATURE))


@dataclass(frozen=True, slots=True)
class Model:
    intent: Head
    category: Head
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "intent": self.intent.to_json(), "category": self.category.to_json()}


def model_path() -> Path:
    return Path(str(files("common").joinpath("data", "nlu", MODEL_NAME)))


@cache
def load_model() -> Model | None:
    """The shipped model, parsed once; None when there is none (the rules alone then classify)."""
    path = model_path()
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Model(Head.from_json(data["intent"]), Head.from_json(data["category"]), data.get("meta", {}))


def train_head(examples: Sequence[tuple[Features, str]], labels: Iterable[str], *, epochs: int = 40,
               rate: float = 0.5, l2: float = 3e-5, min_count: int = 2, seed: int = 14,
               learn_bias: bool = True) -> Head:
    """Softmax regression by AdaGrad over the examples; features seen in fewer than ``min_count``
    examples are dropped (they only memorise), and near-zero weights are not kept."""
    names = tuple(labels)
    index = {name: k for k, name in enumerate(names)}
    size = len(names)
    counts = Counter(f for features, _label in examples for f in features)
    kept = {f for f, n in counts.items() if n >= min_count or f.startswith("lex:")}
    data = [({f: v for f, v in features.items() if f in kept}, index[label]) for features, label in examples]
    weights: dict[str, list[float]] = {f: [0.0] * size for f in kept}
    grads: dict[str, list[float]] = {f: [1e-8] * size for f in kept}
    bias, bias_grad = [0.0] * size, [1e-8] * size
    rng = random.Random(seed)
    order = list(range(len(data)))
    for _epoch in range(epochs):
        rng.shuffle(order)
        for i in order:
            features, gold = data[i]
            scores = list(bias)
            for f, v in features.items():
                row = weights[f]
                for k in range(size):
                    scores[k] += row[k] * v
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            total = sum(exps)
            delta = [e / total for e in exps]
            delta[gold] -= 1.0
            for k in range(size if learn_bias else 0):
                bias_grad[k] += delta[k] ** 2
                bias[k] -= rate * delta[k] / math.sqrt(bias_grad[k])
            for f, v in features.items():
                row, acc = weights[f], grads[f]
                for k in range(size):
                    g = delta[k] * v + l2 * row[k]
                    acc[k] += g * g
                    row[k] -= rate * g / math.sqrt(acc[k])
    pruned = {f: row for f, row in weights.items() if max(abs(w) for w in row) >= 0.01}
    return Head(names, tuple(bias), pruned)
