"""The relay layer (rank 1): httpx clients and one pure wire adapter per style.

Errors are converted once, here, into the core's tree; a POST is sent once (never retried once
it may have reached the relay); downloads stream with a deadline, a size cap and a low-speed
rule. Peers (journal, media) are never imported.
"""
