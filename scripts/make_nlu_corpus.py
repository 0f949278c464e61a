"""Build the labelled NLU corpus (common/data/nlu/train.jsonl and dev.jsonl) from scripts/nlu_corpus/.

    python scripts/make_nlu_corpus.py

The sources are hand-written messages and templates (see the header of intents.txt). Each source
line and its variants (a 繁體 copy for lines marked "~", a voice-recognised copy for some) stay in
one split; a template's instances are split by the value of its last slot, so the dev split holds
phrasings the training split never saw. Deterministic: the same sources give the same files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from pathlib import Path

import zhconv

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "nlu_corpus"
OUT = ROOT / "common" / "data" / "nlu"
DEV_SHARE = 5  # one group in five goes to dev
PER_TEMPLATE = {"request_service": 22}
DEFAULT_PER_TEMPLATE = 12
FILLERS = ("那个", "嗯", "喂", "就是", "呃", "那个那个")
SLOT = re.compile(r"\{(\w+)\}")


def bucket(key: str) -> str:
    return "dev" if int(hashlib.sha1(key.encode()).hexdigest(), 16) % DEV_SHARE == 0 else "train"


def load_slots() -> dict[str, list[str]]:
    slots = {}
    for line in (SOURCES / "slots.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("@"):
            name, _sep, values = line[1:].partition(":")
            slots[name.strip()] = [v.strip() for v in values.split("|")]
    return slots


def voice(text: str, rng: random.Random) -> str:
    """What speech recognition makes of a typed sentence: no punctuation, a filler word or two."""
    bare = re.sub(r"[，。！？、,.!?；;：:]+", " ", text).strip()
    words = bare.split(" ")
    if len(words) > 1:
        words.insert(1, rng.choice(FILLERS))
    return rng.choice(FILLERS) + "".join(words)


def has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def main() -> None:
    rng = random.Random(14)
    slots = load_slots()
    rows: dict[str, list[dict]] = {"train": [], "dev": []}
    seen: dict[str, str] = {}

    def add(split: str, text: str, label: dict) -> None:
        key = re.sub(r"[\s，。！？,.!?]", "", zhconv.convert(text, "zh-cn").lower())
        if key in seen:
            return
        seen[key] = split
        rows[split].append({"text": text, **label})

    for source in ("intents.txt", "requests.txt", "more.txt", "more2.txt", "traps.txt", "english.txt", "english2.txt", "english3.txt", "english4.txt", "english5.txt", "more3.txt", "english6.txt", "english7.txt", "more4.txt",
                   "more5.txt", "english8.txt", "more6.txt"):
        label: dict = {}
        section = ""
        for raw in (SOURCES / source).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("# "):
                continue
            if line.startswith("## "):
                parts = line[3:].split()
                intent, category = parts[0], parts[1] if len(parts) > 1 else "-"
                action = parts[2] if len(parts) > 2 else None
                label = {"intent": intent, "category": category if intent == "request_service" else None}
                if action and intent != "request_service":
                    label["action"] = action
                elif intent != "request_service" and category != "-":
                    label["action"] = category
                section = line
                continue
            if line.startswith("T:"):
                template = line[2:].strip()
                names = SLOT.findall(template)
                last = names[-1]
                combos = list(itertools.product(*(slots[n] for n in names)))
                rng.shuffle(combos)
                wanted = PER_TEMPLATE.get(label["intent"], DEFAULT_PER_TEMPLATE)
                taken = {"train": 0, "dev": 0}
                for combo in combos:
                    split = bucket(section + last + combo[-1])
                    if taken[split] >= (wanted if split == "train" else max(2, wanted // 3)):
                        continue
                    text = template
                    for name, value in zip(names, combo, strict=True):
                        text = text.replace("{" + name + "}", value, 1)
                    text = text.strip("，, ")
                    if rng.random() < 0.2:
                        text = zhconv.convert(text, "zh-tw")
                    taken[split] += 1
                    add(split, text, label)
                continue
            split = bucket(section + line)
            traditional = line.startswith("~")
            text = line.lstrip("~").strip()
            add(split, text, label)
            if traditional:
                add(split, zhconv.convert(text, "zh-tw"), label)
            if has_han(text) and rng.random() < 0.15:
                add(split, voice(text, rng), label)

    OUT.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        with (OUT / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        print(split, len(items))


if __name__ == "__main__":
    main()
