"""Trust (issue 21 item 8): a nested sweep bomb is refused at once, before any expansion.

``{x {a|b|c|d}{a|b|c|d}…|y}``: one group whose first alternative holds 8-12 groups of 4
alternatives stands for 4**12 (16.7 million) prompts. 0.2 built them all (on the kernel's
main thread: 20 s for 8 groups, 1.7 GB for 12) before the 100-combination cap. The count
is now made on the parsed template (linear in its length) and the cap refuses it.
A generous deadline and a memory bound, not a timing assertion: a hang or a blow-up fails.
"""

from __future__ import annotations

import dataclasses
import threading
import tracemalloc
from collections.abc import Callable

import pytest

from sora_widgets.core.alternatives import count
from sora_widgets.core.errors import ValidationError
from sora_widgets.studio.sweeps import MAX_JOBS, expand, plan, variants

FOUR = "{a|b|c|d}"


def bomb(groups: int) -> str:
    return "{x " + FOUR * groups + "|y}"


def deeply(levels: int) -> str:
    """Nested alternatives whose every level multiplies: {p{..}{..}|q}."""
    inner = FOUR
    for _ in range(levels):
        inner = "{p" + inner + inner + "|q}"
    return inner


def refused_quickly(call: Callable[[], object], *, deadline: float = 10.0,
                    max_bytes: int = 20_000_000) -> str:
    """Run ``call`` on a thread; it must raise ValidationError before the deadline and
    allocate at most ``max_bytes`` at its peak. Returns the message."""
    outcome: dict[str, BaseException | None] = {}
    done = threading.Event()

    def run() -> None:
        try:
            call()
        except BaseException as exc:   # the assertion below says which
            outcome["error"] = exc
        else:
            outcome["error"] = None
        finally:
            done.set()

    tracemalloc.start()
    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        finished = done.wait(deadline)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert finished, f"still expanding after {deadline} s (a sweep bomb hangs the kernel)"
    error = outcome["error"]
    assert isinstance(error, ValidationError), error
    assert peak < max_bytes, f"peak {peak} bytes while refusing a sweep bomb"
    return str(error)


@pytest.mark.parametrize("groups", [8, 12])
def test_a_nested_sweep_bomb_is_refused_at_once(groups: int) -> None:
    message = refused_quickly(lambda: expand(bomb(groups)))
    assert f"at most {MAX_JOBS}" in message
    assert count(bomb(groups)) == 4 ** groups + 1
    assert f"{4 ** groups + 1} combinations" in message    # counted, not built


def test_the_bomb_is_refused_by_every_way_in() -> None:
    refused_quickly(lambda: plan(bomb(12)))
    refused_quickly(lambda: expand(bomb(12), keep_escapes=True))
    refused_quickly(lambda: expand(deeply(10)))


def test_variants_of_a_bomb_are_refused() -> None:
    from sora_widgets.core.models import VideoRequest

    request = VideoRequest.create("a fox", aspect_ratio="16:9")
    bombed = dataclasses.replace(request, prompt=bomb(12))
    refused_quickly(lambda: variants(bombed))


def test_a_count_saturates_instead_of_growing_without_end() -> None:
    assert count(deeply(12)) == 10**12          # the cap of a count, not a 2**4096 integer
    assert "more than 1,000,000,000,000 combinations" in refused_quickly(
        lambda: expand(deeply(12)))


def test_deep_nesting_is_refused_as_bad_input_not_a_crash() -> None:
    message = refused_quickly(lambda: expand("{a|" * 3000 + "b" + "}" * 3000))
    assert "column" in message


def test_a_count_at_the_cap_still_expands() -> None:
    axes, combos = expand("{x " + "{a|b|c|d|e}{a|b|c|d|e}" + "|y|z}")   # 25 + 2
    assert len(combos) == 27 and len(axes) == 1
    axes, combos = expand("{a|b|c|d} {x|{1|2|3|4}}")     # 4 × 5
    assert len(combos) == 20 and [len(a.values) for a in axes] == [4, 5]
    with pytest.raises(ValidationError, match="101 combinations"):
        expand("{x " + "{a|b|c|d|e}" * 2 + "{1|2|3|4}|y}")
