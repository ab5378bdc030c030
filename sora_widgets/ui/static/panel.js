// The panel: one anywidget — the form, the queue of running takes, the takes, History and
// the comparison — drawn here from the kernel's traits. Clicks and keys go to the kernel as
// messages; it answers every money question (the Generate label is its quote). Every
// string from the kernel goes into the DOM as text. (Put before this file: common.js,
// then historyFrontEnd and compareFrontEnd, the other views' modules.)

const MEDIA_TYPES = { mp4: "video/mp4", webm: "video/webm", jpg: "image/jpeg",
  jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };

/** The panel's model with acknowledged sends and, where the host serves no files (marimo),
 * published videos and posters fetched over the widget's own messages. */
function panelModel(model) {
  let seq = 0;
  const acks = new Map();
  const media = new Map(); // src -> {chunks, resolve, promise}
  model.on("msg:custom", (msg, buffers) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.ack !== undefined && acks.has(msg.ack)) {
      acks.get(msg.ack)();
      acks.delete(msg.ack);
    }
    if (msg.media !== undefined && media.has(msg.media)) {
      const entry = media.get(msg.media);
      if (msg.error) return entry.resolve(null);
      entry.chunks[msg.index] = buffers && buffers[0];
      if (entry.chunks.filter(Boolean).length === msg.count) {
        const ext = String(msg.media).split(".").pop().toLowerCase();
        const blob = new Blob(entry.chunks, { type: MEDIA_TYPES[ext] || "" });
        entry.resolve(URL.createObjectURL(blob));
      }
    }
  });
  const send = (content) => new Promise((resolve) => {
    const n = ++seq;
    acks.set(n, resolve);
    model.send({ ...content, seq: n });
  });
  const manager = model.widget_manager;
  const servesFiles = Boolean(manager && typeof manager.resolveUrl === "function");
  const fetchMedia = servesFiles ? undefined : (src) => {
    if (!media.has(src)) {
      const entry = { chunks: [] };
      entry.promise = new Promise((resolve) => { entry.resolve = resolve; });
      media.set(src, entry);
      model.send({ action: "media", src });
    }
    return media.get(src).promise;
  };
  return {
    get: (key) => model.get(key),
    set: (key, value) => model.set(key, value),
    save_changes: () => model.save_changes(),
    on: (event, cb) => model.on(event, cb),
    off: (event, cb) => model.off(event, cb),
    send, fetchMedia, widget_manager: manager,
  };
}

/** A model-like view of one part of the panel (History, the comparison): its state is one
 * dict trait; what it sets goes back as a "set" message, its other messages are tagged. */
function partModel(m, name) {
  const listeners = new Map();
  const overlay = {}; // values set here, until the kernel has answered
  let last = m.get(name) || {};
  const state = () => m.get(name) || {};
  const onChange = () => {
    const now = state();
    for (const [event, cbs] of listeners) {
      const key = event.slice("change:".length);
      if (JSON.stringify(now[key]) !== JSON.stringify(last[key])) cbs.forEach((cb) => cb());
    }
    last = now;
  };
  m.on(`change:${name}`, onChange);
  let pending = {};
  return {
    get: (key) => (key in overlay ? overlay[key] : state()[key]),
    set: (key, value) => { overlay[key] = value; pending[key] = value; },
    save_changes: () => {
      const values = pending;
      pending = {};
      m.send({ target: name.replace("_view", ""), action: "set", values }).then(() => {
        for (const key of Object.keys(values)) delete overlay[key];
        onChange();
      });
    },
    on: (event, cb) => {
      if (!event.startsWith("change:")) return;
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(cb);
    },
    off: (event, cb) => listeners.has(event) && listeners.get(event).delete(cb),
    send: (content) => m.send({ ...content, target: name.replace("_view", "") }),
    widget_manager: m.widget_manager, fetchMedia: m.fetchMedia,
    dispose: () => m.off(`change:${name}`, onChange),
  };
}

function btn(label, className, title) {
  const b = h("button", className);
  b.type = "button";
  b.textContent = label;
  if (title) b.title = title;
  return b;
}

function text(tag, className, words) {
  const node = h(tag, className);
  node.textContent = words || "";
  return node;
}

function bar(progress) {
  const outer = h("div", "sora-bar");
  const fill = h("div", "sora-bar-fill");
  fill.style.width = `${Math.max(0, Math.min(100, Number(progress) || 0))}%`;
  outer.appendChild(fill);
  return outer;
}

/** The form; its inputs follow the traits, the user's edits go back at once. */
function form(m, root) {
  const box = h("div", "sora-form");
  const prompt = h("textarea", "sora-prompt");
  prompt.rows = 3;
  prompt.placeholder = "Describe the video: your prompt (or give a first-frame image below)";
  let saveTimer = null;
  const edit = (key, value, wait) => {
    m.set(key, value);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => m.save_changes(), wait);
  };
  prompt.addEventListener("input", () => edit("prompt", prompt.value, 150));
  const row = h("div", "sora-form-row");
  const ratios = h("div", "sora-form-row sora-ratios");
  const seconds = h("select", "sora-seconds");
  seconds.title = "length";
  seconds.addEventListener("change", () => edit("seconds", Number(seconds.value), 0));
  const size = h("select", "sora-size");
  size.title = "size";
  size.addEventListener("change", () => edit("size", size.value, 0));
  const seed = h("input", "sora-seed");
  seed.type = "text";
  seed.inputMode = "numeric";
  seed.placeholder = "seed";
  seed.title = "a seed (this model takes one): the same seed and prompt give the same take";
  seed.addEventListener("input", () => edit("seed", seed.value, 300));
  const image = h("input", "sora-image");
  image.type = "url";
  image.placeholder = "image URL for the first frame (optional, https://…)";
  image.addEventListener("change", () => edit("image", image.value, 0));
  const preview = h("img", "sora-image-preview");
  preview.alt = "first frame";
  preview.hidden = true;
  preview.addEventListener("load", () => { preview.hidden = false; });
  preview.addEventListener("error", () => { preview.hidden = true; });
  row.append(ratios, seconds, size, seed, image, preview);
  const actions = h("div", "sora-form-row");
  const generate = btn("Generate", "sora-generate");
  const confirm = btn("Confirm", "sora-confirm");
  const reason = h("div", "sora-generate-reason");
  const hint = h("div", "sora-generate-hint");
  actions.append(generate, confirm, reason, hint);
  const vary = h("div", "sora-form-row sora-vary");
  const varyWords = h("span");
  const forget = btn("forget", "sora-vary-forget", "the next Generate is not a variation");
  forget.addEventListener("click", () => m.send({ action: "forget" }));
  vary.append(varyWords, forget);
  const spend = h("div", "sora-spend");
  box.append(prompt, row, actions, vary, spend);
  root.appendChild(box);

  let waiting = false; // a click sent, its answer not back yet
  const formValues = () => ({ prompt: prompt.value, image: image.value, seed: seed.value });
  const paintButton = () => {
    generate.textContent = waiting ? `${m.get("generate_label")} …` : m.get("generate_label");
    generate.disabled = waiting || Boolean(m.get("generate_disabled"));
    generate.title = m.get("generate_tooltip") || "";
  };
  const click = () => {
    if (generate.disabled) return;
    clearTimeout(saveTimer);
    waiting = true;
    paintButton();
    m.send({ action: "generate", form: formValues() }).then(() => {
      waiting = false;
      paintButton();
    });
  };
  generate.addEventListener("click", click);
  confirm.addEventListener("click", () => m.send({ action: "confirm" }));
  const options = (select, choices, value) => {
    const sig = JSON.stringify(choices);
    if (select.dataset.sig !== sig) {
      select.replaceChildren(...choices.map(([v, label]) => {
        const o = h("option");
        o.value = String(v);
        o.textContent = label;
        return o;
      }));
      select.dataset.sig = sig;
    }
    select.hidden = choices.length === 0;
    select.value = String(value);
  };
  const paint = () => {
    const choices = m.get("choices") || {};
    if (prompt.value !== m.get("prompt") && document.activeElement !== prompt) {
      prompt.value = m.get("prompt") || "";
    }
    const ratio = m.get("aspect_ratio");
    const sig = JSON.stringify(choices.ratios || []);
    if (ratios.dataset.sig !== sig) {
      ratios.replaceChildren(...(choices.ratios || []).map(([value, label]) => {
        const b = btn(label, "sora-ratio", `${label} video`);
        b.dataset.ratio = value;
        b.addEventListener("click", () => edit("aspect_ratio", value, 0));
        return b;
      }));
      ratios.dataset.sig = sig;
    }
    for (const b of ratios.children) {
      const on = b.dataset.ratio === ratio;
      b.classList.toggle("sora-on", on);
      b.setAttribute("aria-pressed", String(on));
    }
    options(seconds, choices.seconds || [], m.get("seconds"));
    options(size, choices.sizes || [], m.get("size"));
    seed.hidden = !choices.seed;
    if (seed.value !== m.get("seed") && document.activeElement !== seed) seed.value = m.get("seed");
    if (image.value !== m.get("image") && document.activeElement !== image) image.value = m.get("image");
    const url = safeSrc(m.get("image_preview"));
    if (!url) preview.hidden = true;
    if (url && preview.getAttribute("src") !== url) preview.src = url;
    paintButton();
    confirm.hidden = !m.get("confirm_label");
    confirm.textContent = m.get("confirm_label") || "";
    confirm.title = m.get("confirm_tooltip") || "";
    reason.textContent = m.get("reason") || "";
    reason.className = `sora-generate-reason sora-tone-${m.get("reason_tone") || "error"}`;
    hint.textContent = m.get("hint") || "";
    hint.hidden = !m.get("hint");
    varyWords.textContent = m.get("vary_line") ? `the next Generate is a variation of: ${m.get("vary_line")}` : "";
    vary.hidden = !m.get("vary_line");
    spend.textContent = m.get("spend") || "";
  };
  const names = ["prompt", "aspect_ratio", "image", "seconds", "size", "seed", "choices",
    "generate_label", "generate_disabled", "generate_tooltip", "reason", "reason_tone", "hint",
    "confirm_label", "confirm_tooltip", "image_preview", "spend", "vary_line"];
  for (const name of names) m.on(`change:${name}`, paint);
  paint();
  // The keyboard: Ctrl/Cmd+Enter in the prompt generates (not the notebook's "run cell");
  // Escape dismisses a confirmation; no other key reaches the notebook's shortcuts.
  box.addEventListener("keydown", (e) => {
    if (e.target === prompt && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.stopPropagation();
      click();
    } else if (e.key === "Escape" && m.get("confirm_label")) {
      e.stopPropagation();
      m.send({ action: "dismiss" });
    } else if (["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) {
      e.stopPropagation();
    }
  }, true);
}

function queue(m, root) {
  const box = h("div", "sora-queue");
  root.appendChild(box);
  const paint = () => {
    const items = m.get("queue") || [];
    box.replaceChildren(...items.map((item) => {
      const node = h("div", "sora-queue-item");
      node.dataset.jobId = item.id;
      node.dataset.status = item.status;
      const prompt = text("div", "sora-queue-prompt", item.prompt);
      prompt.title = item.prompt;
      const cancel = btn("stop tracking", "sora-queue-cancel",
        "stop following this take here (the relay cannot cancel it; %sora resume follows it again)");
      cancel.addEventListener("click", () => m.send({ action: "cancel", id: item.id }));
      node.append(prompt, bar(item.progress), text("div", "sora-queue-words", item.words), cancel);
      return node;
    }));
    box.hidden = items.length === 0;
  };
  m.on("change:queue", paint);
  paint();
}

/** One take's card; ``players`` keeps each take's <video> across redraws (no reload). */
function takeNode(m, item, players) {
  const node = h("div", "sora-take");
  node.dataset.jobId = item.id;
  node.dataset.status = item.status;
  const prompt = text("div", "sora-take-prompt", item.prompt);
  prompt.title = item.prompt;
  const meta = h("div", "sora-take-meta");
  meta.textContent = [item.ratio, item.model, item.when].filter(Boolean).join(" · ");
  const href = safeSrc(item.image);
  if (item.image_count) {
    meta.append(" · first frame");
    if (href && /^https?:/i.test(href)) {
      const a = text("a", "sora-first-frame", `: ${href.replace(/^https?:\/\//i, "").slice(0, 40)}`);
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      meta.append(a);
    } else {
      meta.append(" from an image");
    }
  }
  const [w, hgt] = item.ratio === "9:16" ? [180, 320] : [320, 180];
  const media = h("div", "sora-take-media");
  media.style.width = `${w}px`;
  media.style.height = `${hgt}px`;
  if (item.src) {
    let player = players.get(item.id);
    if (!player || player.src !== item.src) {
      const video = h("video", "sora-take-video");
      Object.assign(video, { controls: true, muted: true, loop: true, playsInline: true,
        preload: "metadata", width: w, height: hgt });
      player = { src: item.src, video };
      players.set(item.id, player);
      Promise.all([resolveSrc(m, item.src), resolveSrc(m, item.poster)]).then(([src, poster]) => {
        if (poster) video.poster = poster;
        if (src) video.src = src;
      });
    }
    media.appendChild(player.video);
  } else if (item.error_title) {
    media.className = "sora-take-error";
    media.style.height = "auto";
    media.append(text("b", "", item.error_title), text("div", "", item.error));
    if (item.advice) media.append(text("div", "", item.advice));
  } else {
    media.classList.add("sora-waiting");
    media.appendChild(bar(item.progress));
  }
  const status = h("div", "sora-take-status");
  status.append(text("span", "sora-phase", item.phase));
  if (item.trouble) status.append(text("div", "sora-take-trouble", item.trouble));
  const money = h("div", "sora-take-money");
  money.textContent = [item.task ? `task ${item.task}` : "", item.money].filter(Boolean).join(" · ");
  if (item.reused) money.append(" · ", text("span", "sora-reused", item.reused_words));
  if (item.joined) money.append(text("div", "sora-take-joined", item.joined));
  node.append(prompt, meta, media, status, money);
  if (item.provenance) node.append(text("div", "sora-take-provenance", item.provenance));
  const actions = h("div", "sora-take-actions");
  const act = (label, action, title, value) => {
    const b = btn(label, `sora-take-${action}`, title);
    b.addEventListener("click", () => m.send({ action, id: item.id, value }));
    actions.appendChild(b);
    return b;
  };
  act(item.starred ? "★" : "☆", "star", item.starred ? "starred: click to unstar" : "star: keep this one",
    !item.starred).classList.toggle("sora-on", Boolean(item.starred));
  act("reuse prompt", "reuse", "load these settings into the form");
  act("vary", "vary", "load into the form; the next Generate records this take as its parent");
  if (item.can_continue) {
    act(item.continue_label, "continue",
      "a new clip that starts from this clip's last frame, with the prompt in the box above (charged)");
    if (item.can_remix) act("remix", "remix", "the relay's remix of this take, with the prompt in the box above (charged)");
  }
  if (item.reused) {
    act(item.regenerate_label, "regenerate", "submit this request again: a new job, charged again");
  }
  if (item.can_continue) {     // a completed take (the kernel's status model says so)
    actions.appendChild(compareField("sora-take", (m.get("selected") || []).includes(item.id),
      (on) => m.send({ action: "select", id: item.id, value: on })));
  }
  node.appendChild(actions);
  const note = noteField("sora-take-note", item.note,
    (value) => m.send({ action: "note", id: item.id, value }));
  node.appendChild(note);
  return node;
}

function takes(m, root) {
  const head = h("div", "sora-takes-bar");
  const compare = btn("compare", "sora-takes-compare", "compare the checked takes side by side");
  compare.addEventListener("click", () => m.send({ action: "compare" }));
  head.appendChild(compare);
  const grid = h("div", "sora-takes");
  root.append(head, grid);
  const shown = new Map(); // id -> {sig, node}
  const players = new Map();
  const paint = () => {
    const live = m.get("live_takes") || {};
    const settled = m.get("settled_takes") || {};
    const items = (m.get("take_order") || []).map((id) => live[id] || settled[id]).filter(Boolean);
    const selected = m.get("selected") || [];
    const nodes = items.map((item) => {
      const sig = JSON.stringify([item, selected.includes(item.id)]);
      const old = shown.get(item.id);
      const node = old && old.sig === sig ? old.node : takeNode(m, item, players);
      shown.set(item.id, { sig, node });
      return node;
    });
    nodes.forEach((node, i) => {
      if (grid.children[i] !== node) grid.insertBefore(node, grid.children[i] || null);
    });
    while (grid.children.length > nodes.length) grid.lastChild.remove();
    compare.textContent = `compare (${selected.length})`;
    head.hidden = selected.length < 2;
  };
  for (const name of ["take_order", "live_takes", "settled_takes", "selected"]) {
    m.on(`change:${name}`, paint);
  }
  paint();
}

/** History (drawn by its own front end, on first open) and the comparison. */
function history(m, root) {
  const row = h("div", "sora-history-bar");
  const toggle = btn("History", "sora-history-toggle",
    "every job in the journal: search, star, note, load, vary, compare");
  toggle.addEventListener("click", () => m.send({ action: "history", open: !m.get("history_open") }));
  row.appendChild(toggle);
  const box = h("div", "sora-history-box");
  const compareBox = h("div", "sora-compare-box");
  root.append(compareBox, row, box);
  let shown = null;
  const paint = () => {
    const open = Boolean(m.get("history_open"));
    toggle.textContent = open ? "Hide History" : "History";
    toggle.setAttribute("aria-expanded", String(open));
    box.hidden = !open;
    if (open && !shown && Object.keys(m.get("history_view") || {}).length) {
      const part = partModel(m, "history_view");
      shown = historyFrontEnd.render({ model: part, el: box });
    }
  };
  let compare = null;
  const paintCompare = () => {
    const items = (m.get("compare_view") || {}).items || [];
    if (items.length && !compare) {
      const part = partModel(m, "compare_view");
      const close = btn("close compare", "sora-compare-close");
      close.addEventListener("click", () => part.send({ action: "close" }));
      const el = h("div");
      compareBox.append(el, close);
      const stop = compareFrontEnd.render({ model: part, el });
      compare = () => { if (stop) stop(); part.dispose(); compareBox.replaceChildren(); };
    } else if (!items.length && compare) {
      compare();
      compare = null;
    }
  };
  m.on("change:history_open", paint);
  m.on("change:history_view", paint);
  m.on("change:compare_view", paintCompare);
  paint();
  paintCompare();
}

export default {
  render({ model, el }) {
    const m = panelModel(model);
    const root = h("div", "sora-panel");
    const uid = model.get("uid");
    if (uid) root.classList.add("sora-live", `sora-live-${uid}`);
    root.appendChild(text("div", "sora-restart",
      "kernel restarted — this panel is no longer live: run its cell again; " +
      "%sora resume follows jobs that were still running"));
    const title = h("div", "sora-title");
    title.append(text("b", "", "Sora 2"), text("span", "", " · one card per take, newest first"));
    root.appendChild(title);
    form(m, root);
    queue(m, root);
    takes(m, root);
    history(m, root);
    el.appendChild(root);
    // The kernel went away (a restart): the widget manager says so on the model; the
    // restart line shows, the frozen queue and controls go (panel.css).
    model.on("comm_live_update", () => root.classList.add("jupyter-widgets-disconnected"));
  },
};
