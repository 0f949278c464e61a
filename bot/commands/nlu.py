"""``volunteer-bot nlu train`` and ``nlu eval``: the classifier's model and its measurement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

nlu_app = typer.Typer(help="The message classifier: train its model, measure it.", no_args_is_help=True)


@nlu_app.command("train")
def nlu_train(
    corpus: Annotated[Path | None, typer.Option(help="Training JSONL (default: the shipped train split).")] = None,
    out: Annotated[Path | None, typer.Option(help="Model file to write (default: the shipped model).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the corpus.")] = 40,
) -> None:
    """Train the model on the corpus and write it (JSON, loaded by the classifier)."""
    from handlers.nlu_model import model_path
    from handlers.nlu_train import corpus_path, load_corpus, train

    rows = load_corpus(corpus or corpus_path("train"))
    model = train(rows, epochs=epochs)
    target = out or model_path()
    target.write_text(json.dumps(model.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n",
                      encoding="utf-8")
    typer.echo(f"trained on {len(rows)} messages: {model.meta['features']} features → {target} "
               f"({target.stat().st_size // 1024} KiB)")


@nlu_app.command("eval")
def nlu_eval(
    corpus: Annotated[Path | None, typer.Option(help="JSONL to measure on (default: the dev split).")] = None,
    rules: Annotated[bool, typer.Option("--rules", help="Measure the lexicons alone (the old classifier).")] = False,
    misses: Annotated[bool, typer.Option("--misses", help="List the misclassified messages.")] = False,
) -> None:
    """Print intent and category accuracy and their confusion tables."""
    from handlers.nlu_train import corpus_path, evaluate, load_corpus

    rows = load_corpus(corpus or corpus_path("dev"))
    report = evaluate(rows, rules_only=rules)
    typer.echo(f"{len(rows)} messages ({report.category_size} requests)")
    typer.echo(f"intent accuracy   {report.intent_ok}/{report.size} = {report.intent_accuracy:.3f}")
    typer.echo(f"category accuracy {report.category_ok}/{report.category_size} = {report.category_accuracy:.3f}")
    wrong = report.size - report.intent_ok
    typer.echo(f"asked back instead of guessing: {report.asked_wrong} of the {wrong} wrong intents, "
               f"{report.asked_right} of the {report.intent_ok} right ones")
    typer.echo("\nintent\n" + report.table("intent"))
    typer.echo("\ncategory (requests whose intent was right)\n" + report.table("category"))
    if misses and report.misses:
        typer.echo("\nmisses\n" + "\n".join(report.misses))
