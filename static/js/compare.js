// The Compare page (templates/compare/): the sticky header copy that follows the table's sideways
// scroll, the chart's dots as buttons that open a model's details, the name of an unlabelled dot on
// hover and focus, and keeping the reader's place (focus, sideways scroll) when the results re-render.
// No style is ever set from here (the Content-Security-Policy and htmx's attribute copying): only
// scroll positions, attributes and text.
"use strict";

(function () {
  function results() {
    return document.getElementById("compare-results");
  }

  // ---- the sticky header follows the table sideways -------------------------------------------------
  // Scroll events do not bubble: listened for in the capture phase, so a re-rendered table needs no wiring.
  document.addEventListener("scroll", (event) => {
    const scroller = event.target;
    if (!scroller.matches || !scroller.matches("[data-table-scroll]")) return;
    const head = scroller.parentElement.querySelector("[data-compare-head]");
    if (head) head.scrollLeft = scroller.scrollLeft;
  }, true);

  // ---- a column header sorts the list as the filter form shows it now -------------------------------
  // The header's link was drawn with the search of its time: the form is sent instead, with the link's sort
  // (the hidden sort input is the form's), so a search typed just before stays; the form's hx-sync lets
  // this request replace the one leaving the search box on the same click.
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-sort-field]");
    const form = document.getElementById("compare-filters");
    const sort = form && document.querySelector('input[name="sort"][form="compare-filters"]');
    if (!link || !sort || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    sort.value = new URL(link.href).searchParams.get("sort") || "model_name";
    htmx.trigger(form, "submit");
  });

  // ---- the chart's dots open the details, as a name in the table does --------------------------------
  // The same request as the name button's hx-get; static/js/modelhub.js shows the dialog when it arrives.
  function openDetails(point) {
    htmx.ajax("GET", point.dataset.details, { source: point, target: "#modal-body", swap: "innerHTML" });
  }

  document.addEventListener("click", (event) => {
    const point = event.target.closest && event.target.closest(".point-link");
    if (point) openDetails(point);
  });

  document.addEventListener("keydown", (event) => {
    const point = event.target.closest && event.target.closest(".point-link");
    if (!point || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault(); // Space would scroll the page
    openDetails(point);
  });

  // ---- the callout: an unlabelled dot's name on hover and on keyboard focus --------------------------
  function showCallout(point) {
    const svg = point.ownerSVGElement;
    const callout = svg && svg.querySelector(".chart-callout");
    if (!callout) return;
    svg.querySelectorAll(".point-link.is-active").forEach((p) => p.classList.remove("is-active"));
    point.classList.add("is-active");
    if (point.querySelector(".point-label")) {
      callout.setAttribute("visibility", "hidden"); // its label already names it
      return;
    }
    const dot = point.querySelector("circle");
    const cx = Number(dot.getAttribute("cx"));
    const cy = Number(dot.getAttribute("cy"));
    const gap = Number(dot.getAttribute("r")) + 4;
    const room = svg.viewBox.baseVal.width;
    callout.textContent = point.dataset.modelName;
    callout.removeAttribute("font-size");
    let width = callout.getComputedTextLength();
    if (width > room - 8) {
      // Longer than the chart is wide (a phone): smaller, never cut.
      callout.setAttribute("font-size", String(Math.floor(parseFloat(getComputedStyle(callout).fontSize) * (room - 8) / width)));
      width = callout.getComputedTextLength();
    }
    callout.setAttribute("text-anchor", "start");
    if (cx + gap + width <= room - 4) {
      moveTo(callout, cx + gap, cy + 4); // right of the dot
    } else if (cx - gap - width >= 4) {
      moveTo(callout, cx - gap - width, cy + 4); // left of it
    } else {
      // Above it, as near its middle as the edges allow.
      moveTo(callout, Math.min(Math.max(4, cx - width / 2), room - 4 - width), cy - gap - 2);
    }
    callout.setAttribute("visibility", "visible");
  }

  function moveTo(text, x, y) {
    text.setAttribute("x", String(x));
    text.setAttribute("y", String(y));
  }

  function hideCallout(point) {
    const svg = point.ownerSVGElement;
    point.classList.remove("is-active");
    const callout = svg && svg.querySelector(".chart-callout");
    if (callout) callout.setAttribute("visibility", "hidden");
  }

  for (const [on, off] of [["pointerover", "pointerout"], ["focusin", "focusout"]]) {
    document.addEventListener(on, (event) => {
      const point = event.target.closest && event.target.closest(".point-link");
      if (point) showCallout(point);
    });
    document.addEventListener(off, (event) => {
      const point = event.target.closest && event.target.closest(".point-link");
      if (point && !point.contains(event.relatedTarget)) hideCallout(point);
    });
  }

  // ---- keeping the reader's place ----------------------------------------------------------------------
  // What had the focus, as a selector that finds its counterpart in re-rendered results.
  function focusKey(element) {
    if (!element || !element.closest || !element.closest("#compare-results")) return null;
    const name = element.dataset && element.dataset.modelName;
    if (element.matches("[data-sort-field]")) return `[data-compare-head] [data-sort-field="${CSS.escape(element.dataset.sortField)}"]`;
    if (name && element.matches(".compare-name")) return `.compare-name[data-model-name="${CSS.escape(name)}"]`;
    if (name && element.matches(".point-link")) return `.point-link[data-model-name="${CSS.escape(name)}"]`;
    return null;
  }

  function shown(element) {
    return element.getClientRects().length > 0; // the hidden chart (wide or compact) has none
  }

  function focusShown(selector) {
    const target = Array.from(document.querySelectorAll(selector)).find(shown);
    if (target) target.focus({ preventScroll: true });
    return Boolean(target);
  }

  // A sort, a page, a filter or a refresh after a save replaces the results: the table keeps its sideways
  // scroll, and a keyboard user stays on the header, name or dot they were on.
  let place = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target !== results()) return;
    const scroller = results().querySelector("[data-table-scroll]");
    place = { left: scroller ? scroller.scrollLeft : 0, focus: focusKey(document.activeElement) };
  });

  document.addEventListener("htmx:afterSettle", () => {
    if (!place || !results()) return;
    const { left, focus } = place;
    place = null;
    const scroller = results().querySelector("[data-table-scroll]");
    if (scroller) scroller.scrollLeft = left; // the header copy follows (its scroll listener)
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focus && lost) focusShown(focus);
  });

  // ---- the modal on this page --------------------------------------------------------------------
  // modelhub.js gives the focus back to the model's name button when the dialog closes, scrolling to it;
  // opened from a dot, it goes back to that dot, the page where it was.
  let opener = null;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (!results() || event.detail.target !== document.getElementById("modal-body")) return;
    opener = { element: event.detail.elt, x: window.scrollX, y: window.scrollY };
  });

  document.addEventListener("DOMContentLoaded", () => {
    const dialog = document.getElementById("model-modal");
    if (!dialog || !results()) return;
    dialog.addEventListener("close", () => {
      if (!opener || !opener.element.isConnected || document.activeElement === opener.element) return;
      window.scrollTo(opener.x, opener.y);
      opener.element.focus({ preventScroll: true });
    });
  });

  // The modal's Load / Unload / Load this copy answer a Models-page card, aimed at the card's id: here
  // there is no card, so htmx would send nothing. Sent anyway, the answer (the card) goes to a hidden box;
  // what it says shows as the toast, and the results re-render. While the load runs the card in the box
  // polls itself (its own hx-trigger), and the end of the load is announced the same way.
  function sink() {
    let box = document.getElementById("compare-load-answers");
    if (!box) {
      box = document.createElement("div");
      box.id = "compare-load-answers";
      box.hidden = true;
      document.body.append(box);
    }
    return box;
  }

  function say(message) {
    const toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    setTimeout(() => {
      if (toast.textContent === message) toast.textContent = "";
    }, 5000);
  }

  function outcome(box) {
    const refusal = box.querySelector(".load-error");
    if (refusal) return refusal.textContent.trim();
    const name = box.dataset.name;
    const state = box.dataset.state;
    if (state === "loading") return "Loading " + name + "…";
    if (state === "loaded") return name + " is loaded";
    if (box.dataset.unload) return "Unloaded " + name;
    const status = box.querySelector(".status-badge");
    return "The load of " + name + " has ended" + (status ? " (status: " + status.textContent.trim() + ")" : "");
  }

  // Says what the card in BOX says now, once per change of its state; forgets it when the load is over.
  function report(box) {
    const controls = box.querySelector(".load-controls");
    const state = controls ? controls.dataset.loadState : "";
    if (box.dataset.state === state) return;
    box.dataset.state = state;
    say(outcome(box));
    htmx.trigger(document.body, "modelsChanged");
    if (state !== "loading" || box.querySelector(".load-error")) box.remove();
  }

  document.addEventListener("htmx:targetError", (event) => {
    const source = event.target;
    const url = source.getAttribute && source.getAttribute("hx-post");
    if (!results() || !url || !source.closest("#model-modal")) return;
    const form = source.closest("#model-form");
    const box = document.createElement("div");
    box.dataset.name = form ? form.dataset.modelName : "";
    if (url.endsWith("/unload")) box.dataset.unload = "true";
    sink().append(box);
    htmx.ajax("POST", url, { source, target: box, swap: "innerHTML" }).then(() => report(box));
  });

  // The polling card replaced itself in its box.
  document.addEventListener("htmx:afterSettle", () => {
    document.querySelectorAll("#compare-load-answers > div[data-state]").forEach(report);
  });
})();
