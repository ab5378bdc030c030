"""The studio (rank 3): the facade every UI calls, and every money decision.

``Studio.quote`` says what a call will pay, ``Studio.submit`` pays it through the journal's one
atomic claim, ``Studio.require`` refuses a quote over a cap; sweeps, storyboards, continuations
and lineage are built here, on the engine, never in a UI.
"""
