"""Intent and service-category classifier: weighted lexicons combined with a trained linear model.

No network: messages (简体, 繁體 or English) are normalised (NFKC, traditional → simplified with
``zhconv``, lower-cased) and scored against weighted regular-expression lexicons
(``common/data/nlu_lexicon.json``, its ``_comment`` explains the format). Those scores, with the
message's character n-grams and words, are the features of a softmax model trained on the corpus in
``common/data/nlu/`` (``volunteer-bot nlu train``, see ``handlers.nlu_model``); its probabilities
are the confidence the engine uses to ask back rather than guess (``handlers.understanding``).
Without a model file the lexicons alone decide (``classify_rules``).

The codes are exactly those of the shared taxonomy (``common.taxonomy``). ``classify`` returns a
:class:`Classification`; a ``category`` is only given when the intent is ``request_service``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from common.lang import detect_language, to_simplified
from common.resources import load_json
from common.taxonomy import CATEGORIES, INTENTS
from handlers.nlu_model import Features, category_view, load_model, ngram_features

__all__ = ["Classification", "classify", "classify_category", "classify_rules", "features", "rank_categories",
           "without_people"]

LEXICON_FILE = "nlu_lexicon.json"


@dataclass(frozen=True, slots=True)
class Classification:
    intent: str  # one of INTENTS
    category: str | None  # one of CATEGORIES when intent == "request_service", else None
    language: str  # "zh-Hans", "zh-Hant" or "en"
    confidence: float  # 0..1: the model's probability of the intent (rough with the rules alone)
    category_confidence: float | None = None  # the model's probability of the category
    alternatives: tuple[tuple[str, float], ...] = ()  # intents, most likely first, with probabilities
    category_alternatives: tuple[tuple[str, float], ...] = ()  # likewise for categories


# ---------------------------------------------------------------------------------------------
# The lexicon file, parsed and compiled once
# ---------------------------------------------------------------------------------------------

# (weight, alternatives of that weight, what the text needs for them to be tried: ANY, HAN or LATIN)
_Compiled = tuple[tuple[int, re.Pattern[str], int], ...]
ANY, HAN, LATIN = 0, 1, 2
_LATIN = re.compile("[a-z]")


@dataclass(frozen=True, slots=True)
class _Lexicon:
    regional: tuple[tuple[str, str], ...]  # regional wording → the mainland terms the lexicons use
    intent_priority: tuple[str, ...]  # tie-break order, earlier wins on equal score
    category_priority: tuple[str, ...]  # "other" is not in it: it is what no keyword gives
    intents: dict[str, _Compiled]
    need: _Compiled  # cues that the sender needs help (resident side)
    categories: dict[str, _Compiled]
    thanks_past: re.Pattern[str]  # thanks for help already received: small talk
    question: re.Pattern[str]
    volunteer_cue: re.Pattern[str]  # the sender wants to help somewhere → activities
    seeking: re.Pattern[str]  # ...unless they are clearly looking for someone to help them
    people_han: re.Pattern[str]  # who a request is for, in 中文 n-grams ("奶奶", "孩子")
    people_words: frozenset[str]  # ...and in English words ("grandma", "son")
    people_en: re.Pattern[str]  # the English words as one pattern, to mask them in a text


def _compile(weights: dict[str, dict[str, list[str]]]) -> _Compiled:
    """``{"3": {"zh": [...], "en": [...]}}`` → alternations per weight; English gets word boundaries.

    Chinese fragments are tried only on a text with non-ASCII characters and English ones only on a
    text with Latin letters (a message is mostly one or the other: half the regex work)."""
    compiled = []
    for weight, groups in weights.items():
        zh = groups.get("zh", [])
        kinds = {HAN: [f"(?:{p})" for p in zh if not p.isascii()], ANY: [f"(?:{p})" for p in zh if p.isascii()],
                 LATIN: [rf"\b(?:{p})\b" for p in groups.get("en", [])]}
        compiled += [(int(weight), re.compile("|".join(parts)), kind) for kind, parts in kinds.items() if parts]
    return tuple(compiled)


@cache
def _lexicon() -> _Lexicon:
    data: dict[str, Any] = load_json(LEXICON_FILE)
    patterns = {name: re.compile("|".join(alternatives)) for name, alternatives in data["patterns"].items()}
    lexicon = _Lexicon(
        regional=tuple((old, new) for old, new in data["regional"]),
        intent_priority=tuple(data["intent_priority"]),
        category_priority=tuple(data["category_priority"]),
        intents={name: _compile(weights) for name, weights in data["intents"].items()},
        need=_compile(data["need"]),
        categories={name: _compile(weights) for name, weights in data["categories"].items()},
        thanks_past=patterns["thanks_past"],
        question=patterns["question"],
        volunteer_cue=patterns["volunteer_cue"],
        seeking=patterns["seeking"],
        people_han=re.compile("|".join(data["people"]["zh"])),
        people_words=frozenset(data["people"]["en"]),
        people_en=re.compile(r"\b(?:" + "|".join(map(re.escape, data["people"]["en"])) + r")\b"),
    )
    _check(lexicon)
    return lexicon


def _check(lexicon: _Lexicon) -> None:
    """The lexicon file must speak the taxonomy's codes (a typo would silently never match)."""
    scored = set(CATEGORIES) - {"other"}
    problems = []
    if sorted(lexicon.intent_priority) != sorted(INTENTS):
        problems.append(f"intent_priority {lexicon.intent_priority} != {INTENTS}")
    if sorted(lexicon.category_priority) != sorted(scored):
        problems.append(f"category_priority {lexicon.category_priority} != {sorted(scored)}")
    if not set(lexicon.intents) <= set(INTENTS) - {"request_service"}:
        problems.append(f"unknown intents {sorted(set(lexicon.intents) - set(INTENTS))}")
    if set(lexicon.categories) != scored:
        problems.append(f"categories {sorted(lexicon.categories)} != {sorted(scored)}")
    if problems:
        raise ValueError(f"{LEXICON_FILE}: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def _normalise(text: str, lexicon: _Lexicon) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = to_simplified(text).lower()
    for old, new in lexicon.regional:
        text = text.replace(old, new)
    return re.sub(r"\s+", " ", text).strip()


def _score(compiled: _Compiled, text: str) -> int:
    total = 0
    han, latin = not text.isascii(), _LATIN.search(text) is not None
    for weight, pattern, kind in compiled:
        if (kind == HAN and not han) or (kind == LATIN and not latin):
            continue
        hits = {m.group(0) for m in pattern.finditer(text)}
        total += weight * len(hits)
    return total


def _best_category(scores: dict[str, int], lexicon: _Lexicon) -> tuple[str, int]:
    best, best_score = "other", 0
    for name in lexicon.category_priority:
        if scores[name] > best_score:
            best, best_score = name, scores[name]
    return best, best_score


def classify_category(text: str) -> str:
    """Best service category for a text already known to be a request (``"other"`` if none)."""
    return rank_categories(text)[0][0]


def rank_categories(text: str) -> list[tuple[str, float]]:
    """Service categories for a text known to be a request, most likely first, with probabilities."""
    lexicon = _lexicon()
    norm = _normalise(text, lexicon)
    model = load_model()
    if model is None:
        scores = {name: _score(res, norm) for name, res in lexicon.categories.items()}
        return [(_best_category(scores, lexicon)[0], 0.9)]
    return model.category.ranked(category_view(_features(norm, lexicon)))


def _confidence(top: int, second: int) -> float:
    if top <= 0:
        return 0.3
    margin = (top - second) / top
    strength = min(top, 8) / 8
    return round(min(0.99, 0.35 + 0.35 * margin + 0.3 * strength), 2)


@dataclass(frozen=True, slots=True)
class _RuleScores:
    intents: dict[str, int]
    categories: dict[str, int]
    category: str
    need: int


def _rule_scores(norm: str, lexicon: _Lexicon) -> _RuleScores:
    scores = dict.fromkeys(INTENTS, 0)
    scores.update({name: _score(res, norm) for name, res in lexicon.intents.items()})
    cat_scores = {name: _score(res, norm) for name, res in lexicon.categories.items()}
    category, cat_score = _best_category(cat_scores, lexicon)
    need = _score(lexicon.need, norm)

    if lexicon.volunteer_cue.search(norm) and not lexicon.seeking.search(norm):
        scores["activities"] += 4
        need = max(0, need - 2)
        cat_score = min(cat_score, 1)

    if lexicon.thanks_past.search(norm) and not lexicon.question.search(norm):
        scores["other"] += 5

    request = need + min(cat_score, 4)
    # Context words alone ("孩子", "老人") are not a request; a need cue or a strong keyword is.
    scores["request_service"] = request if (need > 0 and request >= 2) or cat_score >= 3 else 0

    return _RuleScores(scores, cat_scores, category, need)


def _features(norm: str, lexicon: _Lexicon) -> Features:
    """The model's features: n-grams and words, and the lexicons' scores and verdict."""
    features = ngram_features(norm)
    rules = _rule_scores(norm, lexicon)
    for name, score in rules.intents.items():
        if score > 0:
            features[f"lex:i:{name}"] = min(score, 8) / 4
    for name, score in rules.categories.items():
        if score > 0:
            features[f"lex:c:{name}"] = min(score, 6) / 3
    if rules.need:
        features["lex:need"] = min(rules.need, 6) / 3
    verdict = _rule_intent(rules, lexicon)
    if verdict != "other":  # no rule firing says nothing: the n-grams decide
        features[f"lex:rule:{verdict}"] = 1.0
    if rules.category != "other":
        features[f"lex:rulecat:{rules.category}"] = 1.0
    # the category head reads the lexicons on the text without its people ("老人家…缴费" is no elderly
    # need): the lex:c/lex:rulecat features above are dropped from its view (``category_view``)
    masked = _mask_people(norm, lexicon)
    needs = rules.categories if masked == norm else {
        name: _score(res, masked) for name, res in lexicon.categories.items()}
    for name, score in needs.items():
        if score > 0:
            features[f"lex:n:{name}"] = min(score, 6) / 3
    need_category, _need_score = _best_category(needs, lexicon)
    if need_category != "other":
        features[f"lex:needcat:{need_category}"] = 1.0
    return features


def _mask_people(norm: str, lexicon: _Lexicon) -> str:
    """The text with the words naming who a request is for blanked out (each by one "□")."""
    masked = lexicon.people_han.sub("□", norm)
    return lexicon.people_en.sub("□", masked) if _LATIN.search(masked) else masked


def without_people(found: Features) -> Features:
    """The features that do not name who a request is for (training the category head on these, it has
    no weights for the others, so ``classify`` needs no filter): "my grandpa's radio" is a repair, and the
    corpus, where old people mostly ask for company, would otherwise file it under elderly."""
    lexicon = _lexicon()

    def names_person(name: str) -> bool:
        if name.startswith("lex:"):
            return False
        if name[1:2] == ":":  # an English word, pair or stem
            return any(part in lexicon.people_words for part in name[2:].split("_"))
        return lexicon.people_han.search(name) is not None

    return {name: value for name, value in found.items() if not names_person(name)}


def features(text: str) -> Features:
    """The model's features of one message (for training)."""
    lexicon = _lexicon()
    return _features(_normalise(text, lexicon), lexicon)


def _rule_intent(rules: _RuleScores, lexicon: _Lexicon) -> str:
    priority = lexicon.intent_priority
    ranked = sorted(priority, key=lambda name: (-rules.intents[name], priority.index(name)))
    return ranked[0] if rules.intents[ranked[0]] > 0 else "other"


def classify_rules(text: str) -> Classification:
    """The lexicons alone (the classifier before the model; kept as its fallback and baseline)."""
    language = detect_language(text) or "zh-Hans"
    lexicon = _lexicon()
    norm = _normalise(text, lexicon)
    if not norm:
        return Classification("other", None, language, 0.3)
    rules = _rule_scores(norm, lexicon)
    priority = lexicon.intent_priority
    ranked = sorted(priority, key=lambda name: (-rules.intents[name], priority.index(name)))
    intent = ranked[0]
    top, second = rules.intents[intent], rules.intents[ranked[1]]
    if top <= 0:
        return Classification("other", None, language, 0.3)
    return Classification(
        intent,
        rules.category if intent == "request_service" else None,
        language,
        _confidence(top, second),
    )


def classify(text: str) -> Classification:
    """Classify one message into an intent (and a category for ``request_service``), with confidences."""
    model = load_model()
    if model is None:
        return classify_rules(text)
    language = detect_language(text) or "zh-Hans"
    lexicon = _lexicon()
    norm = _normalise(text, lexicon)
    if not norm:
        return Classification("other", None, language, 0.3)
    found = _features(norm, lexicon)
    intents = model.intent.ranked(found)
    intent, confidence = intents[0]
    if intent != "request_service":
        return Classification(intent, None, language, round(confidence, 3), None, tuple(intents))
    categories = model.category.ranked(category_view(found))
    return Classification(intent, categories[0][0], language, round(confidence, 3), round(categories[0][1], 3),
                          tuple(intents), tuple(categories))
