"""Residents' service requests in conversation: asking, following, reviewing, taking, closing, pairing.

Residents write one sentence (or pick a category); the dialog confirms the category and asks only
for what the sentence did not say. Volunteers get offers with category, community and time only,
and accept with one reply (「接单」). Coordinators of the request's station review, assign by
hand and confirm. The rules (station, matching, privacy, race-safe accept) live in
``services/requests``.

One module per audience, one ``router`` for the engine:

* ``asking`` — a resident asks: the first sentence understood, the form's opening questions
  (category, description, the guessed category confirmed);
* ``request_form`` — the request form (a flow: the opening questions, then the slots still missing),
  the summary, editing, submitting;
* ``resident`` — my requests, cancelling, confirming done with a rating;
* ``volunteer`` — offers (accept / decline), my tasks, start, done with hours, the no-money rule;
* ``review`` — coordinators: the queue, approve, reject with a reason, re-categorise, assign, confirm;
* ``pairing`` — 结对帮扶 and visit logs;
* ``view`` — one request as its reader may see it; ``shared`` — texts, payloads, words.
"""

from __future__ import annotations

from handlers.requests import pairing, request_form, resident, review, view, volunteer
from handlers.turn import FeatureRouter

__all__ = ["include", "router"]


def include(target: FeatureRouter, *sources: FeatureRouter) -> FeatureRouter:
    """Merge routers into ``target``: commands, steps, flows, typed words and commands taking an argument."""
    for source in sources:
        for name, command in source.commands.items():
            if name in target.commands:
                raise ValueError(f"command {name!r} registered twice")
            target.commands[name] = command
        for key, step in source.steps.items():
            if key in target.steps:
                raise ValueError(f"step {key!r} registered twice")
            target.steps[key] = step
        target.flows.update(source.flows)
        target.words.update(source.words)
        target.arg_commands |= source.arg_commands
    return target


router = include(FeatureRouter("requests"), request_form.router, resident.router, volunteer.router, review.router,
                 pairing.router, view.router)
