"""Test doubles on one loopback server base (``server``), and the one ``wait_until``.

* ``server``: :class:`Served` (a double served from a daemon thread), :class:`Handler`
  (read a :class:`Request`, send an :class:`Answer`, forward upstream), ``serve_in_thread``.
* ``scripted``: :class:`ScriptedRelay`, every answer a function's.
* ``toy``: :class:`ToyRelay`, the relay's calls with knobs (held POSTs, hostile ids,
  streamed answers) for the trust tests.
* ``proxies``: :class:`RecordingProxy`, :class:`ThrottlingProxy` in front of an emulator.
* ``files``: :class:`FileServer`, fixed bodies by path (an image host).
* ``images``: decode data URIs and first frames, compare images.
* ``waiting``: :func:`wait_until`.

Subprocess scripts in ``tests/scripts`` import these too (``tests`` is on their path).
"""

from __future__ import annotations

from .files import FileServer
from .proxies import RecordingProxy, ThrottlingProxy
from .scripted import ScriptedRelay
from .server import Answer, Handler, Request, Served, serve_in_thread
from .toy import Sent, Stream, ToyRelay, completed, mp4_bytes, running
from .waiting import wait_until

__all__ = ["Answer", "FileServer", "Handler", "RecordingProxy", "Request", "ScriptedRelay",
           "Sent", "Served", "Stream", "ThrottlingProxy", "ToyRelay", "completed",
           "mp4_bytes", "running", "serve_in_thread", "wait_until"]
