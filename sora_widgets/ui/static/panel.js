// The panel's live strip under the form: the queue of running takes (newest first:
// progress, time left, status words, cancel = stop tracking) and the keyboard
// (Ctrl/Cmd+Enter in the prompt generates; Escape dismisses a confirmation).
// Every string from the kernel goes into the DOM as text. (common.js comes first: h.)

function queueItem(model, item) {
  const node = h("div", "sora-queue-item");
  node.dataset.jobId = item.id;
  node.dataset.status = item.status;
  const prompt = h("div", "sora-queue-prompt");
  prompt.textContent = item.prompt;
  prompt.title = item.prompt;
  const bar = h("div", "sora-queue-bar");
  const fill = h("div", "sora-queue-fill");
  fill.style.width = `${Math.max(0, Math.min(100, Number(item.progress) || 0))}%`;
  bar.appendChild(fill);
  const words = h("div", "sora-queue-words");
  words.textContent = item.words;
  const cancel = h("button", "sora-queue-cancel");
  cancel.type = "button";
  cancel.textContent = "stop tracking";
  cancel.title = "stop following this take here (the relay cannot cancel it; " +
    "%sora resume follows it again)";
  cancel.addEventListener("click", () => model.send({ action: "cancel", id: item.id }));
  node.append(prompt, bar, words, cancel);
  return node;
}

function keyboard(model, el) {
  // The form is the panel's other part (ipywidgets): find its prompt from our root.
  const panel = el.closest(".sora-panel");
  if (!panel) return () => {};
  const onKey = (e) => {
    const inPrompt = e.target && e.target.closest && e.target.closest(".sora-prompt-input");
    if (inPrompt && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.stopPropagation(); // not the notebook's "run cell"
      const prompt = inPrompt.querySelector("textarea");
      model.send({ action: "generate", prompt: prompt ? prompt.value : null });
    } else if (e.key === "Escape" && model.get("confirming")) {
      e.stopPropagation();
      model.send({ action: "dismiss" });
    }
  };
  panel.addEventListener("keydown", onKey, true);
  return () => panel.removeEventListener("keydown", onKey, true);
}

// The panel's form and cards are ipywidgets; the DOM contract the browser tests (and
// users' scripts) rely on is put on them here: textarea.sora-prompt, input.sora-image,
// button.sora-ratio[data-ratio], .sora-take[data-job-id][data-status]. The kernel marks
// each card with the classes sora-take-<id> and sora-status-<status>.
function annotate(panel) {
  const mark = (node, className) => {
    if (node && !node.classList.contains(className)) node.classList.add(className);
  };
  mark(panel.querySelector(".sora-prompt-input textarea"), "sora-prompt");
  mark(panel.querySelector(".sora-image-input input"), "sora-image");
  // ipywidgets' ToggleButtons owns data-value (the encoded label: it finds its buttons by
  // it), so the ratio goes in data-ratio until the form is drawn here.
  for (const b of panel.querySelectorAll(".sora-ratio-input button")) {
    mark(b, "sora-ratio");
    const ratio = (b.textContent || "").trim().split(/\s+/)[0];
    if (ratio && b.dataset.ratio !== ratio) b.dataset.ratio = ratio;
  }
  for (const card of panel.querySelectorAll(".sora-take")) {
    for (const name of card.classList) {
      if (name.startsWith("sora-take-") && card.dataset.jobId !== name.slice(10)) {
        card.dataset.jobId = name.slice(10);
      } else if (name.startsWith("sora-status-") && card.dataset.status !== name.slice(12)) {
        card.dataset.status = name.slice(12);
      }
    }
  }
}

function contract(el) {
  const panel = el.closest(".sora-panel");
  if (!panel) return () => {};
  annotate(panel);
  const watcher = new MutationObserver(() => annotate(panel));
  watcher.observe(panel, { subtree: true, childList: true, attributes: true,
    attributeFilter: ["class"] });
  return () => watcher.disconnect();
}

export default {
  render({ model, el }) {
    const root = h("div", "sora-queue");
    el.appendChild(root);
    const paint = () => {
      const items = model.get("items") || [];
      root.replaceChildren(...items.map((item) => queueItem(model, item)));
      root.hidden = items.length === 0;
    };
    paint();
    model.on("change:items", paint);
    // Rendered before it is attached: find the panel once we are in the page.
    let stops = [];
    const attach = () => {
      if (!el.isConnected) return requestAnimationFrame(attach);
      stops = [keyboard(model, el), contract(el)];
    };
    attach();
    return () => stops.forEach((stop) => stop());
  },
};
