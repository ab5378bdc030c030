"""The core (rank 0): plain data and pure rules that every other layer shares.

The lifecycle (relay status, local phase, charge) and the snapshot transition, the request
and snapshot models, the one exception tree, settings (the only reader of ``SORA_*``), the
catalogue, the money rules (:mod:`~sora_widgets.core.money`: quote, caps, confirmation), the
sweep grammar, the plain-text vocabulary every UI formats, and the presenter hooks through
which the UI draws lower layers' objects. Imports nothing of the package outside ``core``,
and no I/O beyond reading settings and the catalogue file.
"""
