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
    return keyboard(model, el);
  },
};
