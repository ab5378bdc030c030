"""``sora-widgets``: the terminal face of the same engine (generate, jobs, resume, emulator)."""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .errors import SoraError, ValidationError
from .job import Job

__all__ = ["main"]


def _bar(job: Job, width: int = 30) -> str:
    filled = int(width * job.progress / 100)
    money = "emulator, free" if job.emulator else f"${job.price_usd:.2f}"
    eta = f" ~{int(job.eta_seconds)}s left" if job.eta_seconds else ""
    return (f"\r[{'#' * filled}{'.' * (width - filled)}] {job.progress:3d}% "
            f"{job.status:<12} {int(job.elapsed)}s{eta} ({money})  ")


def _follow(job: Job, out: Path | None, quiet: bool) -> int:
    """Draw a progress bar until the job settles; copy the video to ``out``."""
    changed = threading.Event()
    job.on_change(lambda _change: changed.set())
    while not job._settled.is_set():
        if not quiet:
            sys.stderr.write(_bar(job))
            sys.stderr.flush()
        changed.wait(1.0)
        changed.clear()
    if not quiet:
        sys.stderr.write(_bar(job) + "\n")
    try:
        job.wait(0)
    except SoraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    path = job.download(out) if out else job.download()
    print(path)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .studio import default_studio

    studio = default_studio()
    try:
        job = studio.generate(args.prompt, aspect_ratio=args.ratio, image=args.image or None,
                              model=args.model, force=args.force)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if job.cached:
        print(f"reusing job {job.id or job.local_id[:8]} ({job.status}): same request, no new "
              "charge; --force pays again", file=sys.stderr)
    elif job.emulator:
        print("no SORA_API_KEY: running on the local emulator — no charge", file=sys.stderr)
    return _follow(job, Path(args.out) if args.out else None, args.quiet)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from .studio import default_studio

    studio = default_studio()
    rows = studio.jobs(args.limit)
    width = shutil.get_terminal_size((100, 20)).columns
    for job in rows:
        money = "emulator" if job.emulator else f"${job.cost_usd:.2f}"
        if job.charge == "maybe":
            money = "maybe $" + f"{job.price_usd:.2f}"
        line = (f"{(job.id or job.local_id[:12]):<28} {job.status:<12} {job.aspect_ratio:<5} "
                f"{money:<10} {(job.prompt or '(image)')}")
        print(line[:width])
    spend = studio.spend()
    print(f"session ${spend['session'].charged_usd:.2f}, all time "
          f"${spend['all_time'].charged_usd:.2f} (+${spend['all_time'].maybe_usd:.2f} maybe)")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .studio import default_studio

    resumed = default_studio().resume()
    if not resumed:
        print("nothing to resume")
        return 0
    status = 0
    for job in resumed:
        print(f"resuming {job.id} ({job.status})", file=sys.stderr)
        status |= _follow(job, None, args.quiet)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora-widgets",
                                     description="Sora 2 videos from the terminal.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="submit a job, follow it, save the mp4")
    gen.add_argument("prompt", nargs="?")
    gen.add_argument("--ratio", "-r", default="16:9", choices=["16:9", "9:16"])
    gen.add_argument("--image", "-i", action="append", help="image URL or file (repeatable)")
    gen.add_argument("--model", default=None)
    gen.add_argument("--out", "-o", help="copy the finished mp4 here")
    gen.add_argument("--force", action="store_true", help="pay again even if cached")
    gen.add_argument("--quiet", "-q", action="store_true")
    gen.set_defaults(func=_cmd_generate)
    jobs = sub.add_parser("jobs", help="job history from the journal")
    jobs.add_argument("--limit", "-n", type=int, default=20)
    jobs.set_defaults(func=_cmd_jobs)
    res = sub.add_parser("resume", help="finish jobs left running by a crash or restart")
    res.add_argument("--quiet", "-q", action="store_true")
    res.set_defaults(func=_cmd_resume)
    sub.add_parser("emulator", help="run the local relay emulator", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from .emulator.cli import main as emulator_main

        return emulator_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("\ninterrupted: the job keeps running at the relay; "
              "`sora-widgets resume` picks it up", file=sys.stderr)
        return 130
    except SoraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
