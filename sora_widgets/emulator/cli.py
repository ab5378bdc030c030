"""``sora-widgets emulator`` / ``python -m sora_widgets.emulator``: run a local relay."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .config import STYLES, EmulatorConfig
from .server import serve_forever

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "python -m sora_widgets.emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local Sora 2 relay for building notebooks without paying. Any "
        "non-blank API key is accepted as VIP, except keys starting with 'nonvip' (403).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply job durations (default 1: 60-180 s jobs; 0.1 = 10x faster)")
    parser.add_argument("--failure-rate", type=float, default=0.0,
                        help="probability that a job fails (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible timings")
    parser.add_argument("--url-ttl", type=float, default=None, metavar="S",
                        help="video links expire after S seconds (default: never)")
    parser.add_argument("--style", choices=STYLES, default="artifex",
                        help="wire style: 'artifex' (the relay's page: aspect_ratio, duration, "
                        "image, video_url), 'openai' (the OpenAI SDK's videos resource: size, "
                        "seconds, input_reference, /v1/videos/{id}/content, remix, extensions) "
                        "or 'router' (OpenRouter's video API under /api: vendor/model, "
                        "duration, resolution, seed, frame_images, usage.cost); default artifex")
    parser.add_argument("--signed-urls", action="store_true",
                        help="router style: completed jobs also carry signed 'urls' (fetched "
                        "without the key) besides 'unsigned_urls'")
    parser.add_argument("--status-synonyms", action="store_true",
                        help="answer gateway status words (pending, running, succeeded, error...) "
                        "instead of queued/in_progress/completed/failed")
    parser.add_argument("--content-ttl", type=_ttl, default=3600.0, metavar="S",
                        help="openai style: video content expires S seconds after completion, "
                        "rounded up to a whole second (default 3600; 'never' = no expiry)")
    parser.add_argument("--video-scale", type=float, default=1.0, metavar="X",
                        help="video size multiplier: 1 = 640x360 / 360x640 (default), 0.5 = "
                        "320x180, 2 = 1280x720 (slower renders)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="persist tasks in DIR so they survive a restart")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def _ttl(text: str) -> float | None:
    if text.strip().lower() in ("never", "none"):
        return None
    return float(text)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until Ctrl-C; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = EmulatorConfig(
            time_scale=args.time_scale,
            failure_rate=args.failure_rate,
            seed=args.seed,
            url_ttl_seconds=args.url_ttl,
            state_dir=args.state_dir,
            style=args.style,
            status_synonyms=args.status_synonyms,
            content_ttl_seconds=args.content_ttl,
            video_scale=args.video_scale,
            signed_urls=args.signed_urls,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.verbose:
        logging.basicConfig(format="%(asctime)s %(message)s")
        logging.getLogger("sora_widgets.emulator").setLevel(logging.DEBUG)
    try:
        serve_forever(config, args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 1
    return 0
