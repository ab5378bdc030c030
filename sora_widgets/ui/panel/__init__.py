"""The ``SoraWidget`` panel: form, takes and History in one live surface."""

from sora_widgets.ui.panel.card import JobCard
from sora_widgets.ui.panel.panel import SoraWidget

__all__ = ["JobCard", "SoraWidget"]
