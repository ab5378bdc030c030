"""One adapter per relay wire style; the client talks to a relay through one of them.

Relays that serve Sora disagree on the wire, not on the idea (submit, poll, fetch):

===============  ==========================  ===========================  ==========================
                 ``artifex`` (seed's relay)  ``openai`` (OpenAI-shaped)   ``router`` (OpenRouter)
===============  ==========================  ===========================  ==========================
submit body      JSON: model, prompt,        JSON or multipart: model,    JSON: model (vendor/name),
                 aspect_ratio, duration      prompt, size, seconds        prompt, duration (int),
                 (int), image (URL / list)   ("8"), input_reference       aspect_ratio, resolution,
                                                                          generate_audio, seed,
                                                                          frame_images (first/last)
unknown fields   ignored (others': 400)      400 ``unknown_parameter``    400 (a closed schema)
the video        ``video_url``, often a CDN  ``/v1/videos/{id}/content``  signed ``urls`` (no key),
                 link (fetched without key)  with the key                 else ``/content?index=0``
                                                                          with the key
billed cost      (``usage.cost`` if given)   (``usage.cost`` if given)    ``usage.cost``
remix, extend    none                        ``/{id}/remix``,             none
                                             ``/extensions``
===============  ==========================  ===========================  ==========================

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
from sora_widgets.relay.router import RouterWire

__all__ = ["STYLES", "ArtifexWire", "OpenAIWire", "RouterWire", "WireAdapter", "adapter_for",
           "poll_hint_seconds"]

STYLES = API_STYLES
_ADAPTERS: dict[str, WireAdapter] = {"artifex": ArtifexWire(), "openai": OpenAIWire(),
                                     "router": RouterWire()}


def adapter_for(style: str) -> WireAdapter:
    """The adapter of ``style``; a ValidationError names the styles there are."""
    adapter = _ADAPTERS.get(str(style).strip().lower())
    if adapter is None:
        raise ValidationError(f"style: must be one of {', '.join(STYLES)}, not "
                              f"{str(style)[:40]!r}", field="style")
    return adapter
