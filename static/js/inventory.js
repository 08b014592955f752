// The Models page's keyboard: "/" jumps to the search box; the arrow keys move between the models' name
// buttons (cards and table alike; Enter on one opens the details modal, as a click does: htmx). Keys typed
// into a field, and every key while a dialog is open, are left alone: the modal has its own.
"use strict";

(function () {
  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
  }

  function dialogOpen() {
    return document.querySelector("dialog[open]") !== null;
  }

  function focusSearch() {
    const search = document.getElementById("filter-q");
    if (!search) return false;
    const fold = search.closest("details");
    if (fold && !fold.open) fold.open = true; // a phone keeps the filters folded
    search.focus();
    search.select();
    return true;
  }

  function nameButtons() {
    return Array.from(document.querySelectorAll("#model-results .model-name"));
  }

  // The button the key leads to from "current": the next or previous in reading order (Left/Right), or
  // the nearest one on the next row down or up (Up/Down: the card below in a grid, the next table row).
  function target(current, key) {
    const buttons = nameButtons();
    const index = buttons.indexOf(current);
    if (index < 0) return null;
    if (key === "ArrowRight") return buttons[index + 1] || null;
    if (key === "ArrowLeft") return buttons[index - 1] || null;
    const here = current.getBoundingClientRect();
    const down = key === "ArrowDown";
    let best = null;
    let bestScore = Infinity;
    for (const button of buttons) {
      if (button === current) continue;
      const box = button.getBoundingClientRect();
      const rowGap = down ? box.top - here.top : here.top - box.top;
      if (rowGap <= 1) continue;
      const score = rowGap * 10000 + Math.abs(box.left - here.left);
      if (score < bestScore) {
        bestScore = score;
        best = button;
      }
    }
    return best;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || dialogOpen()) return;
    if (event.key === "/" && !typing(event.target)) {
      if (focusSearch()) event.preventDefault(); // the "/" is not typed into the box
      return;
    }
    if (!["ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight"].includes(event.key)) return;
    const current = event.target instanceof HTMLElement && event.target.closest("#model-results .model-name");
    if (!current) return;
    const next = target(current, event.key);
    event.preventDefault(); // no page scroll under a keyboard user moving between models
    if (next) {
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  });
})();

// The results re-render on a filter change, and whenever a load ends elsewhere ("modelsChanged"): a
// keyboard user on a model's name stays on that model's name, not thrown back to the top of the page.
(function () {
  let focusedName = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target.id !== "model-results") return;
    const active = document.activeElement;
    focusedName = active && active.matches("#model-results .model-name") ? active.dataset.modelName : null;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (focusedName === null) return;
    const name = focusedName;
    focusedName = null;
    if (document.activeElement && document.activeElement !== document.body) return; // moved on meanwhile
    const again = Array.from(document.querySelectorAll("#model-results .model-name")).find((b) => b.dataset.modelName === name);
    if (again) again.focus({ preventScroll: true });
  });
})();
