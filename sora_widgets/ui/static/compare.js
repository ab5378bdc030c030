// sw.compare(): equal-size players side by side, kept in step (play, pause, seek).
// Every string from the kernel goes into the DOM as text (textContent), never as HTML;
// a src is used only if it is a relative path or an http(s) URL.

// (common.js is put before this file by compare.py: resolveSrc, h.)

const DRIFT = 0.2; // seconds a follower may be off before it is brought back

function fmt(t) {
  if (!isFinite(t)) return "0:00";
  const s = Math.max(0, Math.floor(t));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function caption(item, model, stars) {
  const box = h("div", "sora-compare-caption");
  const prompt = h("div", "sora-compare-prompt");
  for (const [op, text] of item.caption || []) {
    const span = h("span", op === "add" ? "sora-diff-add" : op === "del" ? "sora-diff-del" : "");
    span.textContent = text;
    prompt.appendChild(span);
  }
  const meta = h("div", "sora-compare-meta");
  const star = h("button", "sora-compare-star");
  star.type = "button";
  const starred = () => Boolean((model.get("starred") || {})[item.id]);
  const paint = () => {
    star.classList.toggle("sora-on", starred());
    star.textContent = starred() ? "★" : "☆";
    star.title = starred() ? "starred: click to unstar" : "star this take";
  };
  paint();
  stars.push(paint);
  star.addEventListener("click", () => model.send({ action: "star", id: item.id, on: !starred() }));
  const words = h("span");
  words.textContent = ` ${item.label} · ${item.ratio} · `;
  // What it cost: "quoted $0.80 · billed $0.84", marked when the bill is > 5 % off.
  const cost = h("span", item.flagged ? "sora-compare-cost sora-flagged" : "sora-compare-cost");
  cost.textContent = item.cost || "";
  meta.append(star, words, cost);
  box.append(prompt);
  if (item.provenance) {
    // Seed, resolution, audio, frames, remixed/extended from: "same seed 42 · 1080p".
    const made = h("div", "sora-compare-provenance");
    made.textContent = item.provenance;
    box.append(made);
  }
  box.append(meta);
  return box;
}

/** Keep ``videos`` in step: what the user does to one, the others follow. */
function synchronise(videos, onTime) {
  let leader = videos[0];
  const mine = new WeakMap(); // programmatic changes we made: not user actions
  const mark = (v, kind) => mine.set(v, (mine.get(v) || "") + kind);
  const ours = (v, kind) => {
    const marks = mine.get(v) || "";
    if (!marks.includes(kind)) return false;
    mine.set(v, marks.replace(kind, ""));
    return true;
  };
  const seek = (v, t) => {
    if (Math.abs(v.currentTime - t) < 0.01) return;
    mark(v, "s");
    v.currentTime = t;
  };
  const others = (v) => videos.filter((o) => o !== v);
  const playAll = (from) => {
    for (const o of others(from)) {
      seek(o, from.currentTime);
      if (o.paused) {
        mark(o, "p");
        o.play().catch(() => ours(o, "p"));
      }
    }
  };
  const pauseAll = (from) => {
    for (const o of others(from)) {
      if (!o.paused) {
        mark(o, "x");
        o.pause();
      }
      seek(o, from.currentTime);
    }
  };
  const listeners = [];
  const on = (v, name, fn) => {
    v.addEventListener(name, fn);
    listeners.push(() => v.removeEventListener(name, fn));
  };
  for (const v of videos) {
    on(v, "play", () => {
      if (ours(v, "p")) return;
      leader = v;
      playAll(v);
    });
    on(v, "pause", () => {
      if (ours(v, "x")) return;
      if (v.ended) return;
      leader = v;
      pauseAll(v);
    });
    on(v, "seeked", () => {
      if (ours(v, "s")) return;
      leader = v;
      for (const o of others(v)) seek(o, v.currentTime);
    });
    on(v, "timeupdate", () => {
      if (v === leader) onTime(v.currentTime, v.duration, !v.paused);
    });
  }
  // While playing, followers drift (decoding, buffering, loop points): nudge them back.
  const timer = setInterval(() => {
    if (leader.paused || leader.seeking) return;
    for (const o of others(leader)) {
      if (!o.seeking && Math.abs(o.currentTime - leader.currentTime) > DRIFT) {
        seek(o, leader.currentTime);
      }
      if (o.paused) {
        mark(o, "p");
        o.play().catch(() => ours(o, "p"));
      }
    }
  }, 250);
  return {
    get leader() {
      return leader;
    },
    play() {
      for (const v of videos) v.muted = true; // a scripted play() needs muted videos
      if (leader.paused) leader.play().catch(() => {});
      else playAll(leader);
    },
    pause() {
      if (!leader.paused) leader.pause();
      else pauseAll(leader);
    },
    seekAll(t) {
      for (const v of videos) seek(v, t);
    },
    dispose() {
      clearInterval(timer);
      for (const off of listeners) off();
    },
  };
}

async function build(model, root) {
  const items = model.get("items") || [];
  const box = model.get("box") || { width: 320, height: 180 };
  root.replaceChildren();
  const row = h("div", "sora-compare-row");
  const videos = [];
  const stars = [];
  for (const item of items) {
    const cell = h("div", "sora-compare-cell");
    cell.style.width = `${box.width}px`;
    const video = h("video", "sora-compare-video");
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    video.controls = true;
    video.preload = "auto";
    video.width = box.width;
    video.height = box.height;
    video.style.width = `${box.width}px`;
    video.style.height = `${box.height}px`;
    const [src, poster] = await Promise.all([
      resolveSrc(model, item.src), resolveSrc(model, item.poster)]);
    if (poster) video.poster = poster;
    if (src) video.src = src;
    video.dataset.id = item.id;
    videos.push(video);
    cell.append(video, caption(item, model, stars));
    row.appendChild(cell);
  }
  const bar = h("div", "sora-compare-controls");
  const button = h("button", "sora-compare-play");
  button.type = "button";
  button.textContent = "▶ play all";
  const range = h("input", "sora-compare-seek");
  range.type = "range";
  range.min = "0";
  range.max = "12";
  range.step = "0.05";
  range.value = "0";
  const time = h("span", "sora-compare-time");
  time.textContent = "0:00";
  bar.append(button, range, time);
  root.append(row, bar);
  const repaint = () => stars.forEach((paint) => paint());
  model.on("change:starred", repaint);
  if (videos.length === 0) return () => model.off("change:starred", repaint);
  let dragging = false;
  const sync = synchronise(videos, (t, duration, playing) => {
    if (!dragging) range.value = String(t);
    if (isFinite(duration)) range.max = String(duration);
    time.textContent = `${fmt(t)} / ${fmt(duration)}`;
    button.textContent = playing ? "❚❚ pause all" : "▶ play all";
  });
  button.addEventListener("click", () => {
    if (sync.leader.paused) sync.play();
    else sync.pause();
    button.textContent = sync.leader.paused ? "❚❚ pause all" : "▶ play all";
  });
  range.addEventListener("input", () => {
    dragging = true;
    sync.seekAll(Number(range.value));
    time.textContent = fmt(Number(range.value));
  });
  range.addEventListener("change", () => {
    dragging = false;
  });
  return () => {
    model.off("change:starred", repaint);
    sync.dispose();
  };
}

export default {
  render({ model, el }) {
    const root = h("div", "sora-compare");
    el.appendChild(root);
    let dispose = () => {};
    let generation = 0;
    const rebuild = async () => {
      const mine = ++generation;
      dispose();
      const next = await build(model, root);
      if (mine === generation) dispose = next;
      else next();
    };
    rebuild();
    model.on("change:items", rebuild);
    model.on("change:box", rebuild);
    return () => {
      generation++;
      dispose();
    };
  },
};
