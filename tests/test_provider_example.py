"""The provider's own Python example, verbatim, runs unchanged against the emulator.

Only the BASE and KEY lines are replaced. The example polls with ``time.sleep(10)``, so the
emulator runs at 2 % speed (jobs of 1.2-3.6 s) and the job is done at the first poll.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator

import av
import httpx
import pytest

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator

pytestmark = pytest.mark.slow   # the provider's example script in a subprocess

# Copied verbatim from the provider's page (seeds/000_9860c347d1594836.txt), comments included.
PROVIDER_EXAMPLE = """\
import requests, time

BASE = "https://artifex.help"
KEY  = "YOUR_VIP_API_KEY"
H = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

# Step 1: 提交
res = requests.post(f"{BASE}/v1/videos", headers=H, json={
    "model": "sora-2",
    "prompt": "a cat wearing an astronaut helmet floating in space",
    "aspect_ratio": "16:9",
    "duration": 12
}).json()

task_id = res["id"]
print(f"Task submitted: {task_id}")

# Step 2: 轮询
while True:
    time.sleep(10)
    status = requests.get(f"{BASE}/v1/videos/{task_id}", headers=H).json()
    print(f"Status: {status['status']} Progress: {status.get('progress', 0)}%")
    if status["status"] == "completed":
        print("Video URL:", status["video_url"])
        break
    elif status["status"] == "failed":
        print("Failed:", status.get("error"))
        break
"""


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(time_scale=0.02, seed=11)) as running:
        yield running


def test_provider_example_runs_unchanged(emu: RunningEmulator) -> None:
    base_line = 'BASE = "https://artifex.help"\n'
    key_line = 'KEY  = "YOUR_VIP_API_KEY"\n'
    assert PROVIDER_EXAMPLE.count(base_line) == 1 and PROVIDER_EXAMPLE.count(key_line) == 1
    script = PROVIDER_EXAMPLE.replace(base_line, f'BASE = "{emu.base_url}"\n').replace(
        key_line, 'KEY  = "sk-provider-example-vip"\n'
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"Task submitted: v_[0-9a-f]{24}", lines[0])
    assert lines[-2] == "Status: completed Progress: 100%"
    match = re.fullmatch(r"Video URL: (http://127\.0\.0\.1:\d+/videos/\S+)", lines[-1])
    assert match, result.stdout
    video = httpx.get(match.group(1))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    stats = emu.stats()
    assert (stats["posts"], stats["tasks_created"], stats["gets"]) == (1, 1, 1)
