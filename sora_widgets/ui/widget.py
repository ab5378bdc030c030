"""The old home of ``SoraWidget`` and ``JobCard`` (now :mod:`sora_widgets.ui.panel`)."""

from sora_widgets.ui.panel import JobCard, SoraWidget

__all__ = ["JobCard", "SoraWidget"]
