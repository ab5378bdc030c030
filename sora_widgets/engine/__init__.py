"""The engine (rank 2): the ``Job`` handle and the one poller that drives every job.

``job`` is the handle users hold; ``poller`` (one asyncio thread) and ``steps`` do the I/O;
``track`` is the poller's record per job; ``persist`` (on the ``events`` thread) writes the
journal first, then the handle's traits, then callbacks; ``lease`` renews the rows this process
owns on its own timer; ``schedule``/``policy``/``prior``/``histogram`` decide when to poll.
"""
