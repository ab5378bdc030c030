"""A new process (a restarted kernel) that runs ``%sora resume`` in a real IPython shell,
waits until no storyboard plan of the journal is unfinished, and prints one JSON line: the
plans (stage, each shot's job and parent, the film) and the HTML the cell ended with."""

from __future__ import annotations

import json
import time

from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell


def main() -> None:
    shell = InteractiveShell.instance()
    pub = CapturingDisplayPublisher()
    shell.display_pub = pub
    shell.run_line_magic("load_ext", "sora_widgets")
    result = shell.run_cell("%sora resume")
    if result.error_in_exec is not None:
        raise result.error_in_exec
    from sora_widgets.studio.storyboard import KIND, _active
    from sora_widgets.studio.studio import default_studio

    journal = default_studio().journal()
    deadline = time.monotonic() + 180
    while journal.plans(KIND, done=False) or _active:
        if time.monotonic() > deadline:
            raise SystemExit("storyboards still unfinished after 180 s")
        time.sleep(0.05)
    plans = journal.plans(KIND, done=None)
    print(json.dumps({
        "plans": [{"plan_id": plan_id, **body} for plan_id, body in plans],
        "html": [out["data"].get("text/html", "") for out in pub.outputs],
    }), flush=True)


if __name__ == "__main__":
    main()
