"""The panel's DOM contract, driven as a user drives it, and what the tests measure on it.

The panel is one anywidget; everything it draws is inside ``.sora-panel``: the form
(``textarea.sora-prompt``, ``button.sora-ratio[data-ratio]``, ``button.sora-generate``), the
queue (``.sora-queue-item``), the takes (``.sora-take[data-job-id][data-status]``, newest
first, ``video.sora-take-video`` once completed) and History (``.sora-history-card``). The
same helpers drive it in JupyterLab, Notebook 7 and marimo (whose outputs live in shadow
roots: Playwright's CSS locators pierce them, and the page scripts here walk up through
``getRootNode().host``).

Time-sensitive checks ("in view within 1 s of the click", "completed in History within 2 s
of completion") are measured inside the page, frame by frame from the click's own event,
so a slow test process does not blur them; the tests' deadlines stay generous.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from ._harness import JOB_DEADLINE_MS, play_video

PANEL = ".sora-panel"
#: A take and a queue item of one job (either may be the first thing the click shows).
JOB_NODES = ".sora-take[data-job-id], .sora-queue-item[data-job-id]"
#: The line ``print(EMULATOR_LINE, ...)`` writes in a kernel: the embedded relay's URL.
EMULATOR_CELL = ("from sora_widgets.studio.studio import default_studio\n"
                 "print('EMULATOR', default_studio().emulator_url())\n")


def prompt_box(panel: Any) -> Any:
    return panel.locator("textarea.sora-prompt")


def generate_button(panel: Any) -> Any:
    return panel.locator("button.sora-generate")


def fill_form(panel: Any, prompt: str, ratio: str = "16:9") -> Any:
    """Type ``prompt``, choose ``ratio`` and wait for Generate to be enabled; return it."""
    prompt_box(panel).fill(prompt)
    choice = panel.locator(f"button.sora-ratio[data-ratio='{ratio}']")
    choice.click()
    panel.locator(f"button.sora-ratio.sora-on[data-ratio='{ratio}'][aria-pressed='true']") \
        .wait_for()
    button = generate_button(panel)
    panel.locator("button.sora-generate:not([disabled])").wait_for()
    return button


def job_ids(panel: Any) -> set[str]:
    """The ids of every take and queue item the panel shows now."""
    return set(panel.locator(JOB_NODES).evaluate_all(
        "els => els.map(e => e.getAttribute('data-job-id'))"))


def take(panel: Any, job_id: str) -> Any:
    return panel.locator(f".sora-takes .sora-take[data-job-id={json.dumps(job_id)}]")


def emulator_url(text: str) -> str:
    """The relay URL printed by EMULATOR_CELL in ``text`` (an output's inner text)."""
    found = re.search(r"EMULATOR (http://\S+)", text)
    assert found, f"no EMULATOR line in the output: {text[:2000]}"
    return found.group(1)


def emulator_posts(url: str) -> int:
    """How many submits (POSTs) the emulator at ``url`` has received."""
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=10) as answer:
        return int(json.load(answer)["posts"])


def wait_playing(page: Any, card: Any, *, timeout: float = JOB_DEADLINE_MS) -> dict[str, Any]:
    """The take ``card`` completes and its player really plays; the video's description."""
    card.and_(page.locator(".sora-take[data-status='completed']")).wait_for(timeout=timeout)
    video = card.locator("video.sora-take-video")
    video.wait_for(timeout=timeout)
    return play_video(page, video.element_handle())


# -- measured inside the page ---------------------------------------------------------------

#: Installed on the panel before a click: from the first click on Generate, every frame
#: looks for a job node whose id was not there before, and records when one is first seen
#: and first inside the visible part of its scroller (the band of the nearest scrolling
#: ancestor that lies within window.innerHeight; at least 24 px of it, or all of it if
#: smaller). window.__soraView holds the record.
WATCH_NEW_TAKE_JS = """([root, before, selector]) => {
  const known = new Set(before);
  const rec = window.__soraView = {clicked: null, seen: null, inView: null, id: null,
                                   rect: null, band: null, clicks: 0};
  const up = n => n.parentElement || (n.getRootNode() && n.getRootNode().host) || null;
  const scroller = el => {
    for (let n = up(el); n; n = up(n)) {
      const s = getComputedStyle(n);
      if (/(auto|scroll|overlay)/.test(s.overflowY) && n.scrollHeight > n.clientHeight + 1)
        return n;
    }
    return null;
  };
  const band = el => {
    const s = scroller(el);
    const r = s ? s.getBoundingClientRect() : {top: 0, bottom: window.innerHeight};
    return {top: Math.max(0, r.top), bottom: Math.min(window.innerHeight, r.bottom),
            scroller: s ? (s.className || s.tagName) : 'window'};
  };
  const visible = (r, b) => {
    const shown = Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top);
    return r.height > 0 && shown >= Math.min(24, r.height) - 0.5;
  };
  const tick = () => {
    const now = performance.now();
    for (const el of root.querySelectorAll(selector)) {
      const id = el.getAttribute('data-job-id');
      if (!id || known.has(id)) continue;
      if (rec.seen === null) { rec.seen = now; rec.id = id; }
      const r = el.getBoundingClientRect(), b = band(el);
      rec.rect = {top: r.top, bottom: r.bottom, height: r.height}; rec.band = b;
      if (visible(r, b)) { rec.inView = now; rec.id = id; return; }
    }
    if (now - rec.clicked < 60000) requestAnimationFrame(tick);
  };
  root.addEventListener('click', ev => {
    const button = ev.target.closest && ev.target.closest('button.sora-generate');
    if (!button) return;
    rec.clicks += 1;
    if (rec.clicked === null) { rec.clicked = performance.now(); requestAnimationFrame(tick); }
  }, true);
}"""

#: Installed on the panel: per job id, when its take first shows data-status=completed and
#: when its History card first shows completed with a loaded poster (window.__soraDone).
WATCH_COMPLETIONS_JS = """root => {
  const rec = window.__soraDone = {};
  const tick = () => {
    const now = performance.now();
    for (const el of root.querySelectorAll(".sora-take[data-status='completed']")) {
      const r = rec[el.getAttribute('data-job-id')] ??= {take: null, history: null};
      if (r.take === null) r.take = now;
    }
    for (const el of root.querySelectorAll(
        ".sora-history-card[data-status='completed'] img.sora-history-poster")) {
      if (!(el.complete && el.naturalWidth > 0)) continue;
      const card = el.closest('.sora-history-card');
      const r = rec[card.getAttribute('data-job-id')] ??= {take: null, history: null};
      if (r.history === null) r.history = now;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


# -- text contrast ----------------------------------------------------------------------------

#: Every visible text inside ``root`` with its WCAG contrast ratio against what is drawn
#: behind it: the text's colour and the backgrounds of it and its ancestors (up through
#: shadow roots to <html>, over a white canvas), composited with each ancestor's opacity.
#: Text is an element's own non-blank text node, or a form field's value (its placeholder
#: when empty). Text drawn on a picture (a play mark on a poster) is marked ``picture``:
#: styles cannot tell what is behind it. Colours are normalised by painting them on a 1x1
#: canvas, so any CSS colour syntax (color-mix, oklch, named) is measured as shown.
CONTRAST_JS = """([root, parts]) => {
  const ctx = new OffscreenCanvas(1, 1).getContext('2d', {willReadFrequently: true});
  const cache = new Map();
  const rgba = css => {
    if (!cache.has(css)) {
      ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = css;
      ctx.fillRect(0, 0, 1, 1);
      const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
      cache.set(css, [r, g, b, a / 255]);
    }
    return cache.get(css);
  };
  const over = (top, under) => {           // top (with alpha) over an opaque colour
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat(1);
  };
  const mix = (c, under, o) => [0, 1, 2].map(i => c[i] * o + under[i] * (1 - o)).concat(1);
  const up = n => n.parentElement || (n.getRootNode() && n.getRootNode().host) || null;
  const lum = c => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const where = el => {
    const path = [];
    for (let n = el; n && n !== root && path.length < 4; n = up(n)) {
      const cls = [...(n.classList || [])].filter(c => c.startsWith('sora-')).slice(0, 2);
      path.unshift(n.tagName.toLowerCase() + cls.map(c => '.' + c).join(''));
    }
    return path.join(' > ');
  };
  const fields = new Set(['INPUT', 'TEXTAREA', 'SELECT']);
  const pictures = [...root.querySelectorAll('img, video, canvas')]
      .filter(p => p.checkVisibility()).map(p => [p, p.getBoundingClientRect()]);
  const overPicture = el => {            // drawn on a poster or a player: not measurable
    const r = el.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
    return pictures.some(([p, b]) => !p.contains(el) && !el.contains(p)
        && x >= b.left && x <= b.right && y >= b.top && y <= b.bottom);
  };
  const measure = (el, text, color) => {
    const chain = [];
    for (let n = el; n; n = up(n)) chain.unshift(n);
    const paint = (i, behind) => {          // [background, text] as drawn at chain[i]
      const s = getComputedStyle(chain[i]);
      const inner = over(rgba(s.backgroundColor), behind);
      const [bg, fg] = i === chain.length - 1 ? [inner, over(rgba(color), inner)]
                                              : paint(i + 1, inner);
      const o = parseFloat(s.opacity);
      return [mix(bg, behind, o), mix(fg, behind, o)];
    };
    const [bg, fg] = paint(0, [255, 255, 255, 1]);
    const s = getComputedStyle(el);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    const r = ratio(fg, bg);
    return {where: where(el), parts: parts.filter(p => el.closest(p)), picture: overPicture(el),
            text: text.slice(0, 60), ratio: Math.round(r * 100) / 100,
            need: large ? 3 : 4.5, fg: fg.slice(0, 3).map(Math.round),
            bg: bg.slice(0, 3).map(Math.round), size, bold};
  };
  const shown = el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0
        && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  };
  const found = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    if (!shown(el) || el.closest('video, svg, option')) continue;
    if (fields.has(el.tagName)) {
      if (el.type === 'hidden' || el.type === 'checkbox' || el.type === 'radio') continue;
      const value = el.tagName === 'SELECT' ? (el.selectedOptions[0] || {}).text || ''
                                            : el.value;
      if (value.trim()) found.push(measure(el, value, getComputedStyle(el).color));
      else if (el.placeholder)
        found.push(measure(el, el.placeholder, getComputedStyle(el, '::placeholder').color));
      continue;
    }
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent)
        .join(' ').replace(/\\s+/g, ' ').trim();
    if (own) found.push(measure(el, own, getComputedStyle(el).color));
  }
  return found;
}"""

#: Parts of the panel whose text the contrast check must have measured (not vacuous).
CONTRAST_PARTS = (".sora-form", ".sora-queue-item", ".sora-take", ".sora-history-card")


def contrast_failures(page: Any, panel: Any, theme: str) -> tuple[list[dict[str, Any]], str]:
    """Measure every visible text of ``panel``; return the failures (worst first) and a
    report of them, after checking that each of CONTRAST_PARTS had text measured."""
    measured: list[dict[str, Any]] = page.evaluate(
        CONTRAST_JS, [panel.element_handle(), list(CONTRAST_PARTS)])
    for part in CONTRAST_PARTS:
        assert any(part in m["parts"] for m in measured), (
            f"{theme}: no text measured inside {part}: "
            f"{sorted({m['where'] for m in measured})}")
    on_pictures = [m for m in measured if m["picture"]]
    failing = sorted((m for m in measured if m["ratio"] < m["need"] and not m["picture"]),
                     key=lambda m: m["ratio"])
    lines = [f"{theme}: {len(failing)} of {len(measured) - len(on_pictures)} texts below "
             f"WCAG AA, worst first (not measured, drawn on a picture: "
             f"{[m['text'] for m in on_pictures]}):"]
    lines += [f"  {m['ratio']:.2f} < {m['need']}: {m['where']} {m['text']!r} "
              f"fg={m['fg']} bg={m['bg']} {m['size']}px{' bold' if m['bold'] else ''}"
              for m in failing[:15]]
    return failing, "\n".join(lines)


def click_generate(page: Any, panel: Any, button: Any, *,
                   double: bool = False) -> dict[str, Any]:
    """Click Generate (twice with ``double``) and return the page's record of the new take
    (its id, when it was first seen and first in view, relative to the first click)."""
    page.evaluate(WATCH_NEW_TAKE_JS, [panel.element_handle(), sorted(job_ids(panel)),
                                      JOB_NODES])
    if double:
        button.dblclick()
    else:
        button.click()
    try:
        page.wait_for_function("() => window.__soraView.inView !== null",
                               timeout=JOB_DEADLINE_MS)
    except Exception as exc:
        record = page.evaluate("() => window.__soraView")
        raise AssertionError(f"the new take never came into view: {record}") from exc
    # (A double click may reach the page as one click: a button disabled by the first
    # takes no second. What counts is what the relay receives.)
    record: dict[str, Any] = page.evaluate("() => window.__soraView")
    # While the take runs, the button never offers it as an "earlier" take (issue 22).
    status, label = panel.evaluate(
        """(root, id) => [(root.querySelector(`.sora-take[data-job-id="${id}"]`) || {})
            .dataset?.status, root.querySelector('button.sora-generate').textContent]""",
        record["id"])
    if status != "completed":
        assert "earlier" not in label.lower(), (status, label)
    return record
