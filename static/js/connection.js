// The connection state. When the server cannot be reached (an htmx request that got no answer, a fetch
// that rejected), a banner fixed at the top of the viewport says so, and this file asks GET /api/health
// again and again (1 s, 2 s, 5 s, then every 10 s) until the server answers. Then the banner clears and
// the GETs that failed meanwhile are sent again (the results of the last search, the next page, the modal
// the user asked for), so what the page shows matches what it asks for. Writes (Load, Stop, Rescan, Save)
// are never re-sent: the user may have changed their mind; the banner says they were not sent.
// Only a request with no answer at all (status 0) counts: a 4xx/5xx answer is a refusal, which
// static/js/modelhub.js shows above the page.
"use strict";

(function () {
  const DELAYS_MS = [1000, 2000, 5000, 10000];
  const CONNECTED_NOTE_MS = 2500;
  // Beside this script: /static/js/connection.js -> /api/health (whatever prefix the app is served under).
  const HEALTH_URL = new URL("../../api/health", document.currentScript.src).href;
  const nativeFetch = window.fetch.bind(window);

  let offline = false;
  let attempt = 0;
  let probeTimer = null;
  let clearTimer = null;
  // The GETs to send again once connected, one per target (a later request for the same target replaces
  // the earlier one: the user's latest search is the one that matters), in the order they failed.
  const pending = new Map();
  const unsent = new Set(); // what the user asked for that was a write: named in the banner
  const stale = new Set(); // the elements showing content from before the connection was lost

  function banner() {
    let element = document.getElementById("connection-banner");
    if (!element) {
      // Made by this script, which is what retries: without it a page has nothing to say "retrying" about.
      // Made once, at load, and left in the page (empty while connected): a live region added at the
      // moment it has something to say is often not announced.
      element = document.createElement("div");
      element.id = "connection-banner";
      element.className = "connection-banner";
      element.setAttribute("role", "status");
      element.setAttribute("aria-live", "polite");
      document.body.prepend(element);
    }
    return element;
  }

  // An open modal dialog is drawn above everything else in the page (the top layer): while one is open the
  // banner goes inside it, so a Load or a check sent from the modal still shows its lost connection.
  function place(element) {
    const host = document.querySelector("dialog[open]") || document.body;
    if (element.parentElement !== host) host.prepend(element);
  }

  function line(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function render() {
    const element = banner();
    if (!offline) return;
    place(element);
    const notes = [];
    if (Array.from(stale).some((el) => el.isConnected && el.id !== "modal-body")) {
      notes.push("Showing results from before the connection was lost.");
    }
    for (const { opens } of pending.values()) {
      if (opens) notes.push("Opens " + opens + " once connected.");
    }
    if (unsent.size) {
      notes.push("Not sent: " + Array.from(unsent).join(", ") + ". Do it again once connected.");
    }
    // Unchanged (a card polling every second fails every second): left alone, so a screen reader does not
    // hear it again and a focused Retry button keeps the focus.
    const key = notes.join("\n");
    if (element.dataset.state === "offline" && element.dataset.notes === key) return;
    element.dataset.state = "offline";
    element.dataset.notes = key;
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "small";
    retry.dataset.connectionRetry = "";
    retry.textContent = "Retry now";
    element.replaceChildren(line("connection-title", "Can't reach modelhub — retrying"),
      ...notes.map((note) => line("connection-note", note)), retry);
  }

  function lost() {
    clearTimeout(clearTimer);
    if (!offline) {
      offline = true;
      attempt = 0;
      scheduleProbe();
    }
    render();
  }

  function scheduleProbe() {
    clearTimeout(probeTimer);
    probeTimer = setTimeout(probe, DELAYS_MS[Math.min(attempt, DELAYS_MS.length - 1)]);
    attempt += 1;
  }

  async function probe() {
    clearTimeout(probeTimer);
    if (!offline) return;
    try {
      const response = await nativeFetch(HEALTH_URL, { cache: "no-store", credentials: "same-origin" });
      if (response.ok) {
        reconnected();
        return;
      }
    } catch (e) {
      // still unreachable
    }
    if (offline) scheduleProbe();
  }

  async function reconnected() {
    if (!offline) return;
    offline = false;
    clearTimeout(probeTimer);
    const element = banner();
    element.dataset.state = "connected";
    delete element.dataset.notes;
    element.replaceChildren(line("connection-title", "Connected to modelhub again"));
    unsent.clear();
    await resend();
    if (offline) return; // lost again while re-sending: the banner says so
    stale.forEach((el) => el.classList.remove("connection-stale"));
    stale.clear();
    clearTimeout(clearTimer);
    clearTimer = setTimeout(() => {
      if (offline) return;
      delete element.dataset.state;
      element.replaceChildren();
    }, CONNECTED_NOTE_MS);
  }

  // One after the other: the results first, the modal last (it opens over what the user sees); a request
  // whose element left the page meanwhile (a "load more" replaced by new results) is dropped.
  async function resend() {
    const requests = Array.from(pending.values()).sort((a, b) => Boolean(a.opens) - Boolean(b.opens));
    pending.clear();
    for (const request of requests) {
      const { target, path, opens } = request;
      let source = request.source;
      // The name clicked may have been re-rendered with the results: the modal still opens, from its new
      // button if the list still shows it.
      if (opens && !source.isConnected) source = nameButton(source.dataset.modelName) || document.body;
      if (!source.isConnected || !target.isConnected) continue;
      try {
        await htmx.ajax("GET", path, { source, target }); // its own hx-swap, hx-push-url, parameters
      } catch (e) {
        if (offline) return; // sendError has queued it again
      }
    }
  }

  function nameButton(name) {
    return Array.from(document.querySelectorAll(".model-name")).find((b) => b.dataset.modelName === name);
  }

  // ---- what counts as "no answer" -------------------------------------------------------------

  document.addEventListener("htmx:sendError", (event) => {
    const config = event.detail.requestConfig || {};
    const source = event.detail.elt;
    const target = event.detail.target;
    if ((config.verb || "").toLowerCase() === "get") {
      if (source && target) {
        const opens = target.id === "modal-body" ? source.dataset.modelName || "the model" : null;
        pending.delete(target); // re-inserted last: the newest failure is re-sent after the older ones
        pending.set(target, { source, target, path: config.path, opens });
        if (!opens) {
          target.classList.add("connection-stale");
          stale.add(target);
        }
      }
    } else if (source) {
      unsent.add(actionName(source));
    }
    lost();
  });

  function actionName(source) {
    const text = (source.textContent || "").replace(/\s+/g, " ").trim();
    return text && text.length <= 40 ? "“" + text + "”" : "your last change";
  }

  // Any answer at all, even a refusal, means the server is reachable again.
  document.addEventListener("htmx:afterRequest", (event) => {
    const xhr = event.detail.xhr;
    if (offline && xhr && xhr.status > 0) reconnected();
  });

  // The page's own fetches (the modal's save) say so too; the save keeps its own message in the form.
  window.fetch = function (...args) {
    return nativeFetch(...args).then(
      (response) => {
        if (offline) reconnected();
        return response;
      },
      (error) => {
        if (!error || error.name !== "AbortError") lost();
        throw error;
      },
    );
  };

  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-connection-retry]")) return;
    attempt = 0;
    probe();
  });

  // The browser knows first when the network is back, or the tab comes back after a while away.
  window.addEventListener("online", () => {
    if (offline) probe();
  });
  document.addEventListener("visibilitychange", () => {
    if (offline && document.visibilityState === "visible") probe();
  });

  document.addEventListener("DOMContentLoaded", banner);
  // "close" does not bubble: caught on its way down. The banner goes back to the page with the dialog.
  document.addEventListener("close", () => place(banner()), true);
})();
