"""Import cost: what ``%load_ext sora_widgets`` adds on top of IPython + ipywidgets.

Fresh subprocesses, alternating, ``--runs`` each (median reported):

* baseline:  ``import IPython, ipywidgets`` + ``InteractiveShell.instance()`` (a kernel
             always has its shell; creating it is not the extension's cost)
* extension: the same, then ``shell.run_line_magic("load_ext", "sora_widgets")``

Two figures: the in-process time of the ``%load_ext`` step itself (perf_counter around
it, the number a user waits for), and the difference of whole-process wall times. Then
``python -X importtime``: the modules the extension adds that the baseline did not load,
by self time (the top offenders).

    python benchmarks/import_time.py            # 15 runs each, beside 0.1
    python benchmarks/import_time.py --baseline none

Bytecode is cached as on an installed package (pip compiles on install): the subprocesses
write and read ``.pyc`` files under a private ``PYTHONPYCACHEPREFIX`` even when the shell
sets ``PYTHONDONTWRITEBYTECODE`` (this machine does; every run then compiled every module,
which once doubled the figure). ``--baseline REV`` (default 0.1, commit 5665d5d) measures
that revision's package too (extracted with ``git archive``, first on ``PYTHONPATH``), in
the same alternation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, md_table, write_result

SCRIPT = """\
import time, json, sys
t0 = time.perf_counter()
import IPython, ipywidgets
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t1 = time.perf_counter()
if {load!r}:
    shell.run_line_magic("load_ext", "sora_widgets")
    assert "sora" in shell.magics_manager.magics["line"], "magic not registered"
t2 = time.perf_counter()
print(json.dumps({{"base": t1 - t0, "ext": t2 - t1,
                  "modules": len(sys.modules)}}))
"""


BASELINE_REV = "5665d5d"   # 0.1 on main
_CACHE = tempfile.mkdtemp(prefix="sw-bench-pycache-")
_ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "PYTHONPYCACHEPREFIX": _CACHE}


def extract(rev: str) -> Path:
    """That revision's package in a temporary folder (to put first on PYTHONPATH)."""
    folder = Path(tempfile.mkdtemp(prefix="sw-bench-import-"))
    archive = subprocess.run(["git", "archive", rev, "sora_widgets"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_once(load: bool, extra: list[str] | None = None,
             package: Path | None = None) -> tuple[float, dict, str]:
    args = [sys.executable, *(extra or []), "-c", SCRIPT.format(load=load)]
    env = {**_ENV, "PYTHONPATH": str(package)} if package else _ENV
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - t0
    return wall, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def importtime(load: bool) -> dict[str, tuple[int, int]]:
    """module -> (self µs, cumulative µs) from ``-X importtime``."""
    _, _, err = run_once(load, ["-X", "importtime"])
    found: dict[str, tuple[int, int]] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = (part.strip() for part in line[12:].split("|"))
        found[name] = (int(self_us), int(cumulative))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--baseline", default=BASELINE_REV,
                        help="git revision measured alongside ('none': skip)")
    args = parser.parse_args(argv)
    header = machine()
    old = extract(args.baseline) if args.baseline != "none" else None
    try:
        run_once(True)  # warm the page cache and the bytecode caches
        walls: dict[bool, list[float]] = {False: [], True: []}
        inner: dict[bool, list[float]] = {False: [], True: []}
        base_import: list[float] = []
        old_inner: list[float] = []
        if old is not None:
            run_once(True, package=old)
        for _ in range(args.runs):
            for load in (False, True):
                wall, data, _ = run_once(load)
                walls[load].append(wall)
                inner[load].append(data["ext"])
                base_import.append(data["base"])
            if old is not None:
                old_inner.append(run_once(True, package=old)[1]["ext"])
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    med = statistics.median
    ext_step = med(inner[True])
    wall_delta = med(walls[True]) - med(walls[False])

    base_mods = importtime(False)
    ext_mods = importtime(True)
    added = {name: v for name, v in ext_mods.items() if name.strip() not in
             {n.strip() for n in base_mods}}
    added_self_ms = sum(v[0] for v in added.values()) / 1e3
    top = sorted(added.items(), key=lambda kv: kv[1][0], reverse=True)[:12]

    rows = [
        ["import IPython, ipywidgets + InteractiveShell.instance() (in-process)",
         f"{med(base_import) * 1e3:.0f} ms"],
        ["whole process, baseline", f"{med(walls[False]) * 1e3:.0f} ms"],
        ["whole process, + %load_ext sora_widgets", f"{med(walls[True]) * 1e3:.0f} ms"],
        ["**%load_ext sora_widgets step (in-process, median)**",
         f"**{ext_step * 1e3:.1f} ms** (min {min(inner[True]) * 1e3:.1f}, "
         f"max {max(inner[True]) * 1e3:.1f})"],
        ["whole-process difference (median − median)", f"{wall_delta * 1e3:.1f} ms"],
        *([[f"%load_ext step of {args.baseline} (0.1), same runs",
            f"{med(old_inner) * 1e3:.1f} ms (min {min(old_inner) * 1e3:.1f}, "
            f"max {max(old_inner) * 1e3:.1f})"]] if old_inner else []),
        ["modules added by the extension (-X importtime)",
         f"{len(added)}, self time {added_self_ms:.1f} ms"],
    ]
    offenders = md_table(["module (added by %load_ext)", "self ms", "cumulative ms"],
                         [[name.strip(), f"{s / 1e3:.1f}", f"{c / 1e3:.1f}"]
                          for name, (s, c) in top])
    ok = ext_step * 1e3 <= 30
    text = "\n".join([
        f"### import · %load_ext sora_widgets on top of IPython + ipywidgets · "
        f"{args.runs} fresh processes each", "", f"_{header}_", "",
        md_table(["measure", "value"], rows), "",
        f"Target ≤ 30 ms: {'✅' if ok else '❌'}", "",
        "Top offenders (modules the baseline did not import, by self time, one "
        "`-X importtime` run; `-X importtime` itself adds overhead):", "", offenders,
    ])
    print(text)
    if not args.no_write:
        write_result("import_time.md", text)
    shutil.rmtree(_CACHE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
