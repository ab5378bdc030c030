"""A local Sora 2 relay: the relay's HTTP API, for free, over real loopback HTTP.

Three wire styles (``EmulatorConfig.style``, ``--style``):

* ``"artifex"`` (default) speaks ``relay-api.md`` exactly: ``POST /v1/videos`` (JSON:
  model, prompt, aspect_ratio, duration, image) answers a queued task, and
  ``GET /v1/videos/{id}`` shows it go queued -> in_progress (progress rising) -> completed
  with a ``video_url`` link to a real, playable 12 s H.264 mp4 (or failed with an error).
* ``"openai"`` speaks the OpenAI SDK's ``videos`` resource, as new-api gateways do:
  ``POST /v1/videos`` (JSON or multipart: model, prompt, size, seconds as a string,
  input_reference), ``GET /v1/videos/{id}`` without a link, the mp4 at
  ``GET /v1/videos/{id}/content`` (Bearer key, Range, until ``expires_at``), and an
  ``openai-poll-after-ms`` header on every answer; ``POST /v1/videos/{id}/remix``,
  ``POST /v1/videos/extensions`` and ``?variant=thumbnail|spritesheet`` stills.
* ``"router"`` speaks OpenRouter's asynchronous video API under ``/api``
  (``RunningEmulator.api_base_url``): ``POST /api/v1/videos`` (model vendor/name, prompt,
  duration, resolution, aspect_ratio, generate_audio, seed, frame_images), ``pending`` ->
  ``in_progress`` -> ``completed`` with ``unsigned_urls`` (``/content?index=0``, with the
  key), signed ``urls`` on a knob and ``usage.cost`` from ``EmulatorConfig.prices``; the
  model list at ``GET /api/v1/videos/models``. Seeds are deterministic (same seed and
  prompt: the same clip bytes).

Each style rejects the others' fields with 400. A first-frame image (data: URI, upload,
or loopback URL; other hosts are never contacted) is the video's first frame. Used by the
package when no API key is set, by the test suite, and by the benchmarks.

Keys: any non-blank Bearer key is a VIP key, except keys starting with ``nonvip`` (and
any listed in ``EmulatorConfig.non_vip_keys``), which get 403 as ordinary relay keys do.
No key gets 401. Keys are never echoed or logged.

Besides the relay API: ``GET /_emulator/stats``, ``GET|POST /_emulator/config``,
``POST /_emulator/inject``, ``POST /_emulator/expire`` and ``POST /_emulator/reset_stats``
(no auth), mirroring ``RunningEmulator``'s methods.

This package is a separate room: it imports nothing from the rest of ``sora_widgets``
(and never IPython or ipywidgets); the core never imports it.

    >>> from sora_widgets.emulator import EmulatorConfig, start_emulator
    >>> with start_emulator(EmulatorConfig(time_scale=0.01, seed=1)) as emu:  # doctest: +SKIP
    ...     emu.base_url
    'http://127.0.0.1:54321'
"""

from __future__ import annotations

from .config import EmulatorConfig
from .server import RunningEmulator, serve_forever, start_emulator
from .tasks import Task

__all__ = ["EmulatorConfig", "RunningEmulator", "Task", "serve_forever", "start_emulator"]
