"""A third teammate: list every job of the shared journal (``sw.jobs()``) as JSON lines.

    python team_lister.py
"""

from __future__ import annotations

import json

import sora_widgets as sw
from sora_widgets.studio.studio import default_studio


def main() -> None:
    jobs = sw.jobs(team=True)          # everyone's jobs on the shared journal
    users = {r.local_id: r.user_name for r in default_studio().journal().history()}
    print(json.dumps([{"prompt": j.prompt, "local_id": j.local_id, "task_id": j.id,
                       "status": j.status, "user": users.get(j.local_id)} for j in jobs]),
          flush=True)


if __name__ == "__main__":
    main()
