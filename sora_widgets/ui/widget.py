"""The old home of ``SoraWidget`` and ``JobCard`` (now :mod:`sora_widgets.ui.panel`)."""

from sora_widgets.ui.panel.card import JobCard
from sora_widgets.ui.panel.panel import SoraWidget

__all__ = ["JobCard", "SoraWidget"]
