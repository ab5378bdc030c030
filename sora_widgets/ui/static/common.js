// Shared by the sora-widgets front ends (put before each widget's own code).

/** An element with a class; every text later goes in with textContent. */
function h(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

/** A take's note: saved on change (Enter leaves the field); keys typed into it are not
 * the notebook's shortcuts. */
function noteField(className, value, save) {
  const note = h("input", className);
  note.type = "text";
  note.placeholder = "note…";
  note.value = value || "";
  note.addEventListener("change", () => save(note.value));
  note.addEventListener("keydown", (e) => {
    if (e.key === "Enter") note.blur();
    e.stopPropagation();
  });
  return note;
}

/** The "compare" checkbox of a take (in the panel and in History): ``pick(on)`` on change. */
function compareField(className, checked, pick) {
  const label = h("label", `${className}-pick`);
  const box = h("input", `${className}-select`);
  box.type = "checkbox";
  box.checked = checked;
  box.addEventListener("change", () => pick(box.checked));
  const words = h("span");
  words.textContent = "compare";
  label.append(box, words);
  return label;
}

/** A relative path (published next to the notebook) or an http(s) URL, else null. */
function safeSrc(url) {
  if (typeof url !== "string" || !url) return null;
  if (/[\u0000-\u001f]/.test(url)) return null;
  if (/^https?:\/\//i.test(url)) return url;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("/") || url.startsWith("\\")) {
    return null;
  }
  if (url.split("/").includes("..")) return null;
  return url;
}

/**
 * The URL the browser can load for ``url``. A relative path means "next to the notebook":
 * JupyterLab and Notebook 7 resolve it with the widget manager's resolveUrl (the
 * notebook's URL resolver: <base url>/files/<notebook dir>/...); where the host serves no
 * files, the panel's model brings ``fetchMedia`` (a blob: URL); others get it as it is.
 */
async function resolveSrc(model, url) {
  const safe = safeSrc(url);
  if (!safe || /^https?:/i.test(safe)) return safe;
  // A host with no file route (marimo): the panel fetches it over its own messages.
  if (typeof model.fetchMedia === "function") return model.fetchMedia(safe);
  const manager = model.widget_manager;
  if (manager && typeof manager.resolveUrl === "function") {
    try {
      const resolved = await manager.resolveUrl(safe);
      if (typeof resolved === "string" && resolved) return resolved;
    } catch (err) {
      console.warn("sora-widgets: could not resolve", safe, err);
    }
  }
  return safe;
}
