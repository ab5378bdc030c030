"""The media layer (rank 1): local work on saved clips with PyAV, bounded for untrusted files.

Posters, last frames, stitching, and publishing files next to a notebook. Peers (relay,
journal) are never imported.
"""
