"""One adapter per relay wire style; the client talks to a relay through one of them.

Relays that serve Sora disagree on the wire, not on the idea (submit, poll, fetch):

======================  =====================================  ==================================
                        ``artifex`` (the seed's relay)          ``openai`` (OpenAI-shaped gateways)
======================  =====================================  ==================================
submit body             JSON: model, prompt, aspect_ratio,      JSON or multipart: model, prompt,
                        duration (int), image (URL / list)      size ("1280x720"), seconds ("8"),
                                                                input_reference (URL or file part)
unknown fields          ignored (the other style's: 400)        400 ``unknown_parameter``
the video               ``video_url``, often a CDN link         ``GET /v1/videos/{id}/content``
                        (fetched without the key)               with the key, until ``expires_at``
poll hint               ``openai-poll-after-ms`` if present     ``openai-poll-after-ms``
======================  =====================================  ==================================

An adapter is pure: it builds the request body, turns an answer into a
:class:`~sora_widgets.core.models.TaskSnapshot` (with ``fetch_url``, ``expires_at`` and
``poll_after`` in its ``extra``) and never sends anything. Status words, synonyms included,
are mapped once, by :func:`sora_widgets.core.lifecycle.relay_status_of`.
"""

from __future__ import annotations

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.settings import API_STYLES
from sora_widgets.relay.artifex import ArtifexWire
from sora_widgets.relay.base import WireAdapter, poll_hint_seconds
from sora_widgets.relay.openai import OpenAIWire

__all__ = ["STYLES", "ArtifexWire", "OpenAIWire", "WireAdapter", "adapter_for",
           "poll_hint_seconds"]

STYLES = API_STYLES
_ADAPTERS: dict[str, WireAdapter] = {"artifex": ArtifexWire(), "openai": OpenAIWire()}


def adapter_for(style: str) -> WireAdapter:
    """The adapter of ``style``; a ValidationError names the styles there are."""
    adapter = _ADAPTERS.get(str(style).strip().lower())
    if adapter is None:
        raise ValidationError(f"style: must be one of {', '.join(STYLES)}, not "
                              f"{str(style)[:40]!r}", field="style")
    return adapter
