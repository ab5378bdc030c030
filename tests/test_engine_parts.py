"""The engine in parts (issue 20 #4): no engine module reads another module's private
names, the handle's ``reused`` flag and its deprecated ``cached`` alias, and the pure
snapshot transition in core."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

from sora_widgets.core.lifecycle import Phase, RelayStatus, state_for_status
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.transition import apply_snapshot, unrecognised_notice
from sora_widgets.engine.job import Backend, Job
from sora_widgets.journal import SqliteJournal

PACKAGE = Path(__file__).resolve().parent.parent / "sora_widgets"
CHECKED = [*sorted((PACKAGE / "engine").glob("*.py")), PACKAGE / "core" / "transition.py",
           PACKAGE / "core" / "lifecycle.py"]


def _own_private_names(tree: ast.Module) -> set[str]:
    """The private names a module defines itself (attributes it sets, functions, fields)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def _foreign_private_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in own):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sora_widgets"):
            found += [f"{path.name}:{node.lineno}: from {node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_")]
    return found


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_no_engine_module_reads_another_modules_private_names(path: Path) -> None:
    assert _foreign_private_reads(path) == []


def test_the_private_name_check_finds_a_foreign_read(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(job):\n    job._state = 1\n\ndef g(job):\n    return job._key\n")
    assert _foreign_private_reads(module) == ["m.py:5: job._key"]


def _job(tmp_path: Path, **traits: object) -> Job:
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    return Job(VideoRequest.create("a fox", aspect_ratio="16:9"), Backend("http://x"),
               journal, tmp_path, local_id="l1", **traits)


def test_reused_with_cached_as_a_deprecated_alias(tmp_path: Path) -> None:
    job = _job(tmp_path, status="completed")
    assert job.reused is False
    with pytest.warns(DeprecationWarning, match="reused"):
        job.cached = True
    assert job.reused is True
    with pytest.warns(DeprecationWarning, match="reused"):
        assert job.cached is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert job.reused is True              # the new name does not warn
    with pytest.warns(DeprecationWarning):
        old = _job(tmp_path, cached=True)      # the old constructor keyword still works
    assert old.reused is True


def test_the_snapshot_transition_is_pure_core(tmp_path: Path) -> None:
    state = state_for_status("in_progress", task_id="t1")
    done = apply_snapshot(state, TaskSnapshot(id="t1", status="succeeded", progress=None,
                                              video_url="http://x/v.mp4"))
    assert (done.phase, done.relay_status, done.progress) == (
        Phase.SAVING, RelayStatus.COMPLETED, 100)
    odd = TaskSnapshot(id="t1", status="moderating", progress=5)
    assert apply_snapshot(state, odd).relay_word == "moderating"
    assert "moderating" in (unrecognised_notice(odd) or "")
