// The History view: one page of journal jobs as cards with a poster (a still), never a
// player until the user opens one. Every string from the kernel goes into the DOM as text.
// (common.js is put before this file by history.py: resolveSrc, h.)

function button(label, className, title) {
  const b = h("button", `sora-history-button ${className}`);
  b.type = "button";
  b.textContent = label;
  if (title) b.title = title;
  return b;
}

function promptNode(card) {
  const node = h("div", "sora-history-prompt");
  node.title = card.prompt;
  const runs = card.diff && card.diff.length ? card.diff : [["same", card.prompt]];
  for (const [op, text] of runs) {
    const span = h("span", op === "add" ? "sora-diff-add" : op === "del" ? "sora-diff-del" : "");
    span.textContent = text;
    node.appendChild(span);
  }
  return node;
}

/** Hover over a poster: the relay's spritesheet shows the frame under the pointer. */
async function scrub(model, box, sprites, width) {
  const src = await resolveSrc(model, sprites.src);
  const cols = Math.max(1, Number(sprites.cols) || 1);
  const rows = Math.max(1, Number(sprites.rows) || 1);
  if (!src) return;
  const frame = h("div", "sora-history-scrub");
  frame.style.backgroundImage = `url(${JSON.stringify(src)})`;
  frame.style.backgroundSize = `${cols * 100}% ${rows * 100}%`;
  frame.hidden = true;
  box.appendChild(frame);
  box.addEventListener("mousemove", (e) => {
    const x = Math.min(0.999, Math.max(0, (e.clientX - box.getBoundingClientRect().left) / width));
    const n = Math.floor(x * cols * rows);
    const [col, row] = [n % cols, Math.floor(n / cols)];
    frame.style.backgroundPosition =
      `${cols > 1 ? (col / (cols - 1)) * 100 : 0}% ${rows > 1 ? (row / (rows - 1)) * 100 : 0}%`;
    frame.hidden = false;
    frame.dataset.frame = String(n);
  });
  box.addEventListener("mouseleave", () => { frame.hidden = true; });
}

async function media(model, card, player) {
  const [w, hgt] = card.ratio === "9:16" ? [135, 240] : [240, 135];
  const box = h("div", "sora-history-media");
  box.style.width = `${w}px`;
  box.style.height = `${hgt}px`;
  if (player) {
    const video = h("video", "sora-history-video");
    video.controls = true;
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    video.preload = "auto";
    video.width = w;
    video.height = hgt;
    const [src, poster] = await Promise.all([
      resolveSrc(model, player), resolveSrc(model, card.poster)]);
    if (poster) video.poster = poster;
    if (src) video.src = src;
    box.appendChild(video);
    return box;
  }
  const poster = await resolveSrc(model, card.poster);
  if (poster) {
    const img = h("img", "sora-history-poster");
    img.alt = "poster of the video";
    img.width = w;
    img.height = hgt;
    img.src = poster;
    box.appendChild(img);
    if (card.sprites) scrub(model, box, card.sprites, w);
    if (card.openable) {
      const play = h("div", "sora-history-playmark");
      play.textContent = "▶";
      box.appendChild(play);
      box.classList.add("sora-openable");
      box.title = "open: play this video";
      box.addEventListener("click", () => model.send({ action: "open", id: card.id }));
    }
  } else {
    const empty = h("div", "sora-history-empty");
    empty.textContent = card.status_text;
    box.appendChild(empty);
  }
  return box;
}

async function cardNode(model, card, player) {
  const node = h("div", "sora-history-card");
  node.dataset.id = card.id;
  node.dataset.jobId = card.id; // the DOM contract: data-job-id, data-status
  node.dataset.status = card.status;
  node.appendChild(await media(model, card, player));
  node.appendChild(promptNode(card));
  if (card.parent) {
    const parent = h("div", "sora-history-parent");
    parent.textContent = `↳ varied from: ${card.parent}`;
    node.appendChild(parent);
  }
  const meta = h("div", "sora-history-meta");
  meta.textContent = [card.when, card.ratio, card.status_text, card.billing || card.money,
    card.provenance].filter(Boolean).join(" · ");
  node.appendChild(meta);
  if (card.error) {
    const err = h("div", "sora-history-error");
    err.textContent = card.error;
    node.appendChild(err);
  }
  const actions = h("div", "sora-history-actions");
  const star = button(card.starred ? "★" : "☆", "sora-history-star" + (card.starred ? " sora-on" : ""),
    card.starred ? "starred: click to unstar" : "star: keep this one");
  star.addEventListener("click", () => model.send({ action: "star", id: card.id, on: !card.starred }));
  actions.appendChild(star);
  if (card.openable && !player) {
    const open = button("▶ open", "sora-history-open", "play this video");
    open.addEventListener("click", () => model.send({ action: "open", id: card.id }));
    actions.appendChild(open);
  }
  if (model.get("can_load")) {
    const load = button("load", "sora-history-load", "load prompt, ratio and image into the form");
    load.addEventListener("click", () => model.send({ action: "load", id: card.id }));
    const vary = button("vary", "sora-history-vary",
      "load into the form and remember this job as the parent of the next one");
    vary.addEventListener("click", () => model.send({ action: "vary", id: card.id }));
    actions.append(load, vary);
  }
  if (card.openable) {
    actions.appendChild(compareField("sora-history", (model.get("selected") || []).includes(card.id),
      (on) => model.send({ action: "select", id: card.id, on })));
  }
  node.appendChild(actions);
  const note = noteField("sora-history-note", card.note,
    (text) => model.send({ action: "note", id: card.id, text }));
  node.appendChild(note);
  return node;
}

function toolbar(model) {
  const bar = h("div", "sora-history-toolbar");
  const search = h("input", "sora-history-search");
  search.type = "search";
  search.placeholder = "search prompts…";
  search.value = model.get("query") || "";
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      model.set("query", search.value);
      model.save_changes();
    }, 250);
  });
  search.addEventListener("keydown", (e) => e.stopPropagation());
  const status = h("select", "sora-history-status");
  for (const [value, label] of model.get("status_options") || []) {
    const option = h("option");
    option.value = value;
    option.textContent = label;
    status.appendChild(option);
  }
  status.value = model.get("status") || "";
  status.addEventListener("change", () => {
    model.set("status", status.value);
    model.save_changes();
  });
  const starLabel = h("label", "sora-history-starred");
  const starred = h("input", "sora-history-starred-only");
  starred.type = "checkbox";
  starred.checked = Boolean(model.get("starred_only"));
  starred.addEventListener("change", () => {
    model.set("starred_only", starred.checked);
    model.save_changes();
  });
  const starWords = h("span");
  starWords.textContent = "★ starred only";
  starLabel.append(starred, starWords);
  const refresh = button("↻", "sora-history-refresh", "refresh from the journal");
  refresh.addEventListener("click", () => model.send({ action: "refresh" }));
  const compare = button("compare", "sora-history-compare", "compare the checked takes side by side");
  const paintCompare = () => {
    const n = (model.get("selected") || []).length;
    compare.textContent = `compare (${n})`;
    compare.disabled = n < 2;
  };
  paintCompare();
  model.on("change:selected", paintCompare);
  compare.addEventListener("click", () => model.send({ action: "compare" }));
  bar.append(search, status, starLabel, refresh, compare);
  return bar;
}

function pager(model) {
  const row = h("div", "sora-history-pager");
  const prev = button("‹ newer", "sora-history-prev");
  const next = button("older ›", "sora-history-next");
  const summary = h("span", "sora-history-summary");
  const paint = () => {
    prev.disabled = (model.get("page") || 0) === 0;
    next.disabled = !model.get("has_next");
    summary.textContent = model.get("summary") || "";
  };
  prev.addEventListener("click", () => {
    model.set("page", Math.max(0, (model.get("page") || 0) - 1));
    model.save_changes();
  });
  next.addEventListener("click", () => {
    model.set("page", (model.get("page") || 0) + 1);
    model.save_changes();
  });
  paint();
  for (const name of ["page", "has_next", "summary"]) model.on(`change:${name}`, paint);
  row.append(prev, summary, next);
  return row;
}

export default {
  render({ model, el }) {
    const root = h("div", "sora-history");
    const message = h("div", "sora-history-message");
    const grid = h("div", "sora-history-grid");
    root.append(toolbar(model), message, grid, pager(model));
    el.appendChild(root);
    const shown = new Map(); // id -> {sig, node}: unchanged cards keep their node (and player)
    let generation = 0;
    const paint = async () => {
      const mine = ++generation;
      const cards = model.get("cards") || [];
      const players = model.get("players") || {};
      const selected = model.get("selected") || [];
      const next = [];
      for (const card of cards) {
        const player = players[card.id] || "";
        const sig = JSON.stringify([card, player, model.get("can_load"), selected.includes(card.id)]);
        const old = shown.get(card.id);
        next.push([card.id, sig, old && old.sig === sig ? old.node : await cardNode(model, card, player)]);
        if (mine !== generation) return;
      }
      const sameOrder = next.length === shown.size &&
        next.every(([id], i) => grid.children[i] && grid.children[i].dataset.id === id);
      if (sameOrder) {
        next.forEach(([, , node], i) => {
          if (grid.children[i] !== node) grid.children[i].replaceWith(node);
        });
      } else {
        grid.replaceChildren(...next.map(([, , node]) => node));
      }
      shown.clear();
      for (const [id, sig, node] of next) shown.set(id, { sig, node });
      if (!cards.length) {
        const empty = h("div", "sora-history-none");
        empty.textContent = model.get("query") || model.get("status") || model.get("starred_only")
          ? "No job matches." : "No jobs yet.";
        grid.replaceChildren(empty);
        shown.clear();
      }
    };
    const paintMessage = () => {
      message.textContent = model.get("message") || "";
    };
    paint();
    paintMessage();
    for (const name of ["cards", "players", "can_load", "selected"]) model.on(`change:${name}`, paint);
    model.on("change:message", paintMessage);
    return () => {
      generation++;
    };
  },
};
