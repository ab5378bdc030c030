"""The UIs (rank 4): the ``%sora`` magic, the panel, History, compare, the CLI, HTML.

The only layer that imports IPython, ipywidgets, anywidget or rich. Thin: every money
question goes to the studio; every word comes from :mod:`sora_widgets.core.words`.
"""
