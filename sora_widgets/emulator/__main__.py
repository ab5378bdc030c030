"""``python -m sora_widgets.emulator``."""

from .cli import main

raise SystemExit(main())
