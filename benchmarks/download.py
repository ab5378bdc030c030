"""Download: stream a 200 MB file from a loopback server, against curl, in constant memory.

The benchmark serves a file from a stdlib ``ThreadingHTTPServer`` in this process (the
body goes out with ``socket.sendfile``, so the server is not the bottleneck). Each
download runs in a FRESH subprocess so its memory is its own:

* ``SoraClient.download``       (sync, httpx, 256 KiB chunks, fsync, atomic rename)
* ``AsyncSoraClient.download``  (the same on ``httpx.AsyncClient``, as the poller uses it)
* ``curl -o``                   (``/usr/bin/curl``), timed with and without an fsync after

Peak RSS growth = the peak resident size while downloading (psutil sampling every 5 ms,
cross-checked with ``getrusage`` max RSS) − the resident size just before the download
started (after imports and client creation). A smaller file (20 MB) shows whether memory
grows with the file size. The files are deleted at the end.

    python benchmarks/download.py                  # 200 MB and 20 MB, 3 runs per client
    python benchmarks/download.py --size-mb 500 --reps 1
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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_KEY, ROOT, machine, md_table, write_result

CURL = shutil.which("curl") or "/usr/bin/curl"
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# the downloading child
# --------------------------------------------------------------------------------------------

def child(kind: str, base_url: str, url: str, dest: str) -> None:
    import asyncio
    import resource

    import psutil

    from sora_widgets.relay.client import AsyncSoraClient, SoraClient

    me = psutil.Process()
    sync_client = SoraClient(BENCH_KEY, base_url) if kind == "sync" else None
    async_client = AsyncSoraClient(BENCH_KEY, base_url) if kind == "async" else None
    peak = [0]
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], me.memory_info().rss)

    before = me.memory_info().rss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    if sync_client is not None:
        sync_client.download(url, dest)
        sync_client.close()
    else:
        assert async_client is not None

        async def go() -> None:
            await async_client.download(url, Path(dest))
            await async_client.aclose()

        asyncio.run(go())
    seconds = time.perf_counter() - t0
    stop.set()
    thread.join()
    peak[0] = max(peak[0], me.memory_info().rss)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "before": before, "peak": peak[0],
                      "maxrss": maxrss, "maxrss_before": maxrss_before}))


# --------------------------------------------------------------------------------------------
# the server and the runs
# --------------------------------------------------------------------------------------------

class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: ClassVar[dict[str, Path]] = {}

    def do_GET(self) -> None:
        path = self.files.get(self.path.split("?")[0])
        if path is None:
            self.send_error(404)
            return
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        with path.open("rb") as fh:
            self.connection.sendfile(fh)

    def log_message(self, *args: object) -> None:
        pass


def make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(MB)  # incompressible; repeated (the content does not matter)
    with path.open("wb") as fh:
        for _ in range(size_mb):
            fh.write(block)


def run_python(kind: str, base_url: str, url: str, dest: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", kind, base_url, url, str(dest)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    data: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    data["growth"] = data["peak"] - data["before"]
    return data


def run_curl(url: str, dest: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([CURL, "-s", "-f", "-o", str(dest), url])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"curl failed with {proc.returncode}")
    t1 = time.perf_counter()
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync = time.perf_counter() - t1
    return {"seconds": seconds, "seconds_fsync": seconds + fsync,
            "maxrss": usage.ru_maxrss * 1024}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=20,
                        help="a second, smaller file: does memory grow with size? (0: skip)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    header = machine()

    work = Path(tempfile.mkdtemp(prefix="sw-bench-download-"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    try:
        sizes = [(args.size_mb, args.reps)]
        if args.small_mb:
            sizes.append((args.small_mb, args.reps))
        for size_mb, reps in sizes:
            source = work / f"video-{size_mb}.mp4"
            make_file(source, size_mb)
            FileHandler.files[f"/{source.name}"] = source
            url = f"{base_url}/{source.name}"
            results: dict[str, list[dict[str, float]]] = {"sync": [], "async": [], "curl": []}
            for rep in range(reps):
                for kind in ("sync", "async", "curl"):
                    dest = work / f"out-{kind}-{rep}.mp4"
                    result = (run_curl(url, dest) if kind == "curl"
                              else run_python(kind, base_url, url, dest))
                    if dest.stat().st_size != size_mb * MB:
                        raise RuntimeError(f"{kind}: wrong size {dest.stat().st_size}")
                    dest.unlink()
                    results[kind].append(result)
            curl_s = statistics.median(r["seconds"] for r in results["curl"])
            curl_fs = statistics.median(r["seconds_fsync"] for r in results["curl"])
            for kind, label in (("sync", "SoraClient.download (sync)"),
                                ("async", "AsyncSoraClient.download"),
                                ("curl", "curl -o (no fsync)"),
                                ("curl+fsync", "curl -o, then fsync")):
                source_kind = "curl" if kind.startswith("curl") else kind
                runs = results[source_kind]
                key = "seconds_fsync" if kind == "curl+fsync" else "seconds"
                seconds = statistics.median(r[key] for r in runs)
                if source_kind == "curl":
                    growth = "–"
                    peak = f"{max(r['maxrss'] for r in runs) / MB:.1f} MB"
                else:
                    growth = f"**{max(r['growth'] for r in runs) / MB:.1f} MB**"
                    peak = (f"{max(r['peak'] for r in runs) / MB:.1f} MB "
                            f"(getrusage {max(r['maxrss'] for r in runs) / MB:.1f})")
                vs = curl_fs if kind in ("sync", "async") else curl_s
                rows.append([f"{size_mb} MB", label, len(runs), f"{seconds:.2f}",
                             f"{size_mb / seconds:.0f}",
                             f"{vs / seconds:.0%}" if kind in ("sync", "async") else "",
                             peak, growth])
            source.unlink()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)

    growths = [r[7] for r in rows if r[7] != "–"]
    worst = max(float(g.strip("*").split()[0]) for g in growths)
    text = "\n".join([
        f"### download · {args.size_mb} MB (and {args.small_mb} MB) from a loopback "
        f"server · median of runs", "", f"_{header}_", "",
        md_table(["file", "client", "runs", "seconds", "MB/s", "vs curl+fsync",
                  "peak RSS", "RSS growth"], rows), "",
        f"Target: flat, ≤ 16 MB growth: worst {worst:.1f} MB "
        f"{'✅' if worst <= 16 else '❌'}. The package fsyncs before the atomic rename; "
        "'vs curl+fsync' compares like with like (>100 % = faster than curl).",
    ])
    print(text)
    if not args.no_write:
        write_result("download.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
