// The model details modal. The name button on each card opens it through htmx (hx-get into #modal-body,
// templates/models/_model_card.html); this file shows the dialog when the form has arrived, checks it and
// saves it as one JSON PATCH to the API, then has htmx re-render the card. The save stays hand-written:
// it sends JSON with If-Match (so a concurrent edit is refused, not overwritten), which a form post can't.
// No inline handlers anywhere, so the pages can run under a Content-Security-Policy without 'unsafe-inline'.
"use strict";

(function () {
  const INVALID_JSON = "Invalid JSON in Load Configuration field";

  function modal() {
    return document.getElementById("model-modal");
  }

  function modalBody() {
    return document.getElementById("modal-body");
  }

  // Only the name buttons' requests fill #modal-body: the form's own htmx buttons target the form or the card.
  function opensModal(event) {
    return event.detail.target === modalBody();
  }

  // ---- opening (htmx events) ---------------------------------------------------------------------
  // The three console lines are the documented troubleshooting trail for a modal that does not appear;
  // "showEditDetailsModal" is the name users search for, kept from when a function of that name opened it.

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (!opensModal(event)) return;
    console.log("showEditDetailsModal called for:", event.target.dataset.modelName);
  });

  // On settle rather than swap: htmx focuses the new [autofocus] field while settling, and that must happen
  // before the dialog shows, not while the user is already typing in it.
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target !== modalBody()) return;
    const form = document.getElementById("model-form");
    console.log("Found model:", JSON.parse(form.dataset.model));
    if (!modal().open) {
      modal().showModal();
    }
    const first = form.querySelector("[autofocus]");
    if (first) first.focus();
    console.log("Modal should now be visible");
  });

  // Sized once shown (a closed dialog has no layout), and again whenever the form is re-rendered.
  document.addEventListener("htmx:afterSettle", () => {
    const form = document.getElementById("model-form");
    if (form && modal().open) autogrowAll(form);
  });

  document.addEventListener("htmx:responseError", (event) => {
    if (!opensModal(event)) return;
    const name = event.target.dataset.modelName;
    const status = event.detail.xhr.status;
    console.error("Could not load model", name, status);
    alert("Could not load " + name + " (" + status + "). It may have been removed: reload the page.");
  });

  function closeModal() {
    if (modal() && modal().open) modal().close();
  }

  // ---- drafts: closing with unsaved changes asks first (in the modal, not window.confirm) -----------
  // "Unsaved" = a field differs from what the form was rendered with: the browser keeps that as each
  // field's default (defaultValue, defaultSelected), which a re-rendered form (Restore, Import) resets.

  function changed(field) {
    if (field.tagName === "SELECT") {
      const options = Array.from(field.options);
      const initial = options.find((o) => o.defaultSelected) || options[0];
      return Boolean(initial) && !initial.selected;
    }
    return field.value !== field.defaultValue;
  }

  function hasUnsavedChanges() {
    const form = document.getElementById("model-form");
    return Boolean(form) && Array.from(form.querySelectorAll("[data-part]")).some(changed);
  }

  function unsavedBar() {
    return modal() && modal().querySelector(".unsaved-bar");
  }

  // The field the user was last in, where Keep editing takes them back (Cancel or the x took the focus).
  let lastField = null;
  document.addEventListener("focusin", (event) => {
    if (event.target.closest && event.target.closest("#model-form [data-part]")) lastField = event.target;
  });

  // The x, Cancel, a click outside and Escape: close at once when nothing was changed, else ask; asked
  // already (the bar shows), a second request closes and drops the draft.
  function requestClose() {
    const bar = unsavedBar();
    if (!hasUnsavedChanges() || !bar || !bar.hidden) {
      closeModal();
      return;
    }
    bar.hidden = false;
    bar.querySelector("[data-keep-editing]").focus();
  }

  function keepEditing() {
    unsavedBar().hidden = true;
    const form = document.getElementById("model-form");
    const back = lastField && form && form.contains(lastField) ? lastField : form && form.querySelector("[autofocus]");
    if (back) back.focus();
  }

  // ---- the toast: a save that went through says so briefly, after the dialog has closed -------------
  let toastTimer = null;

  function showToast(message) {
    const toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      toast.textContent = "";
    }, 3000);
  }

  // ---- the notes and config boxes grow with their content -------------------------------------------
  // Through the rows attribute, not an inline style: htmx copies a style attribute onto the element that
  // replaces it, which the Content-Security-Policy refuses. From 3 rows up to ~60% of the viewport, then
  // the box scrolls.
  const MIN_ROWS = 3;

  function autogrow(field) {
    const style = getComputedStyle(field);
    const line = parseFloat(style.lineHeight) || 20;
    const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    const most = Math.max(MIN_ROWS, Math.floor((window.innerHeight * 0.6 - padding) / line));
    field.rows = MIN_ROWS; // measured from the smallest box, so it shrinks when lines are removed
    const needed = Math.ceil((field.scrollHeight - padding) / line - 0.25); // scrollHeight is rounded
    field.rows = Math.min(most, Math.max(MIN_ROWS, needed));
  }

  function autogrowAll(root) {
    root.querySelectorAll("textarea[data-autogrow]").forEach(autogrow);
  }

  // ---- the load config's Format button -------------------------------------------------------------
  function formatJson(button) {
    const form = button.closest("form");
    const field = form.querySelector(button.dataset.formatJson);
    const error = form.querySelector("#error-" + CSS.escape(field.name));
    error.hidden = true;
    error.textContent = "";
    field.removeAttribute("aria-invalid");
    if (!field.value.trim()) return;
    let parsed;
    try {
      parsed = JSON.parse(field.value);
    } catch (e) {
      showFieldError(form, field.name, "Invalid JSON, not formatted: " + e.message);
      return;
    }
    const formatted = JSON.stringify(parsed, null, 2);
    if (formatted !== field.value) {
      const source = form.dataset.configSource; // re-indenting is not typing a new config
      field.value = formatted;
      checkAgain(field);
      if (source) form.dataset.configSource = source;
    }
    autogrow(field);
  }

  // ---- reading the form -------------------------------------------------------------------

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((el) => {
      el.hidden = true;
      el.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const banner = form.querySelector(".form-banner");
    banner.hidden = true;
    banner.replaceChildren();
  }

  function showFieldError(form, field, message) {
    const error = form.querySelector("#error-" + CSS.escape(field));
    const input = form.querySelector("#field-" + CSS.escape(field));
    if (!error) return false;
    error.textContent = message;
    error.hidden = false;
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  // Focus the first invalid field and bring its message into view: focusing scrolls only the field, and
  // a message under a field near the bottom would sit behind the sticky Save bar (scroll-margin in
  // editing.css keeps it clear of the bar).
  function revealFirstError(form) {
    const invalid = form.querySelector("[aria-invalid]");
    if (!invalid) return;
    const details = invalid.closest("details");
    if (details) details.open = true;
    invalid.focus();
    const message = form.querySelector("#error-" + CSS.escape(invalid.name));
    if (message && !message.hidden) message.scrollIntoView({ block: "nearest" });
  }

  function showBanner(form, message, action) {
    const banner = form.querySelector(".form-banner");
    banner.replaceChildren(document.createTextNode(message));
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = action.label;
      button.addEventListener("click", action.run);
      banner.append(" ", button);
    }
    banner.hidden = false;
  }

  // Returns {body} or {errors: {field: message}} when the browser can already tell it is wrong.
  function readForm(form) {
    const body = { config: {}, metadata: {} };
    const errors = {};
    form.querySelectorAll("[data-part]").forEach((input) => {
      let value = input.value;
      // The field shows the saved config pretty-printed: left as shown, the text saved is sent back as it
      // was, so the registry keeps it and no load_config version is made.
      if (input.dataset.saved !== undefined && !changed(input)) value = input.dataset.saved;
      if (input.name === "load_config" && value.trim()) {
        try {
          JSON.parse(value);
        } catch (e) {
          errors.load_config = INVALID_JSON;
        }
      }
      if (input.hasAttribute("data-number")) {
        if (input.validity.badInput) {
          errors[input.name] = "Enter a number.";
        }
        value = value.trim() === "" ? null : Number(value);
      } else if (input.name !== "load_config" && value.trim() === "") {
        value = null; // an emptied notes or quantization field means "none"
      }
      body[input.dataset.part][input.name] = value;
    });
    return Object.keys(errors).length ? { errors } : { body };
  }

  // ---- saving ---------------------------------------------------------------------------------

  async function save(form) {
    clearErrors(form);
    const { body, errors } = readForm(form);
    if (errors) {
      for (const [field, message] of Object.entries(errors)) showFieldError(form, field, message);
      revealFirstError(form);
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const response = await fetch(form.dataset.apiUrl, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/json",
          "If-Match": form.dataset.etag,
          // Recorded with the load_config version this save makes (its history in the modal).
          "X-Modelhub-Via": "page",
          "X-Load-Config-Source": form.dataset.configSource || "typed",
        },
        body: JSON.stringify(body),
      });
      if (response.ok) {
        closeModal();
        showToast("Saved " + form.dataset.modelName);
        // Pages without the card (Compare) re-render what shows the model on this event.
        document.body.dispatchEvent(new CustomEvent("modelSaved", { detail: { name: form.dataset.modelName } }));
        await refreshCard(form.dataset.cardUrl, form.dataset.modelName);
        return;
      }
      await showSaveFailure(form, response);
    } catch (e) {
      showBanner(form, "Could not reach the server: " + e.message + ". Your edits are still here; try again.");
    } finally {
      submit.disabled = false;
    }
  }

  async function showSaveFailure(form, response) {
    const problem = await response.json().catch(() => ({}));
    if (response.status === 412) {
      showBanner(form, "Someone else changed this model since you opened it. Nothing was saved.", {
        label: "Reload it (discards your edits)",
        run: () => cardButton(form.dataset.modelName)?.click(), // the same htmx request as opening it
      });
      return;
    }
    if (response.status === 422 && problem.errors && problem.errors.json) {
      const unplaced = [];
      for (const [part, fields] of Object.entries(problem.errors.json)) {
        if (Array.isArray(fields)) {
          unplaced.push(fields.join(" "));
          continue;
        }
        for (const [field, messages] of Object.entries(fields)) {
          if (!showFieldError(form, field, [].concat(messages).join(" "))) unplaced.push(part + "." + field + ": " + messages);
        }
      }
      if (unplaced.length) showBanner(form, unplaced.join("; "));
      revealFirstError(form);
      return;
    }
    showBanner(form, problem.message || "Saving failed (" + response.status + "). Your edits are still here; try again.");
  }

  function cardButton(name) {
    return Array.from(document.querySelectorAll(".model-name")).find((b) => b.dataset.modelName === name);
  }

  // The card re-rendered by htmx from the same fragment the page shows (its buttons processed by htmx).
  async function refreshCard(cardUrl, name) {
    const button = cardButton(name);
    const card = button && button.closest(".model-card, .model-row"); // a table row is re-rendered as a row
    if (!card) return;
    await htmx.ajax("GET", cardUrl, { target: card, swap: "outerHTML" }); // resolves once swapped
    const fresh = cardButton(name);
    if (fresh) fresh.focus();
  }

  // ---- the latest failure's suggested load config --------------------------------------------

  function applySuggestion(button) {
    const form = button.closest("form");
    const field = form.querySelector("#field-load_config");
    let config = {};
    if (field.value.trim()) {
      try {
        config = JSON.parse(field.value);
      } catch (e) {
        showFieldError(form, "load_config", INVALID_JSON + ": fix it before applying the suggestion.");
        return;
      }
    }
    for (const [key, value] of Object.entries(JSON.parse(button.dataset.applySuggestion))) {
      if (value === null) delete config[key];
      else config[key] = value;
    }
    field.value = JSON.stringify(config, null, 2);
    checkAgain(field);
    // Saved as it is, the new version says it came from the suggestion; typing in the field makes it typed.
    form.dataset.configSource = "suggestion";
    field.focus();
  }

  // ---- Will it load here? (templates/preflight/_preflight.html) ----------------------------------
  // The section follows the editor's text: htmx sends it on "input" (debounced, hx-trigger on the
  // textarea); a text put there by a button is announced the same way.
  function checkAgain(field) {
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // The fitting config replaces the editor's text; nothing is saved until the user saves.
  function applyFittingConfig(button) {
    const form = button.closest("form");
    const field = form.querySelector("#field-load_config");
    field.value = JSON.stringify(JSON.parse(button.dataset.applyFittingConfig), null, 2);
    checkAgain(field);
    field.focus();
  }

  // A text being typed is often not valid yet: its 422 is the section saying why, swapped in like a verdict.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!source || !source.hasAttribute || !source.hasAttribute("data-preflight")) return;
    if (event.detail.xhr.status === 422 && event.detail.xhr.responseText.includes('id="preflight"')) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target.id === "field-load_config") event.target.form.dataset.configSource = "typed";
    if (event.target.matches && event.target.matches("textarea[data-autogrow]")) autogrow(event.target);
  });

  // ---- the form's guarded writes: the history's Restore, Copies on disk's Make default --------------
  // A button marked data-if-match sends the form's ETag as If-Match, read when it is clicked: the version the
  // form was read at, or the one its own last such write made. Make default swaps only the copies table, so
  // its answer's ETag becomes the form's (the fields are still the model's): Save and Restore after it are
  // guarded from that version on, not refused as if someone else had written.
  // A refused write (the model changed since the form was read, nothing to restore, a copy gone missing)
  // answers the form (or the copies table) as the model is now, saying why: swap it in like a success.
  const GUARDED_REFUSALS = [404, 409, 412, 422];

  document.addEventListener("htmx:configRequest", (event) => {
    const source = event.detail.elt;
    const form = source && source.closest ? source.closest("#model-form") : null;
    if (form && source.hasAttribute("data-if-match")) event.detail.headers["If-Match"] = form.dataset.etag;
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    const source = event.detail.requestConfig && event.detail.requestConfig.elt; // the event fires on the target
    if (!source || !source.hasAttribute || !source.hasAttribute("data-if-match")) return;
    const xhr = event.detail.xhr;
    const form = document.getElementById("model-form");
    if (xhr.status >= 200 && xhr.status < 300 && form && xhr.getResponseHeader("ETag")) {
      form.dataset.etag = xhr.getResponseHeader("ETag");
    }
    const answer = xhr.responseText;
    if (GUARDED_REFUSALS.includes(xhr.status) && (answer.includes('id="model-form"') || answer.includes('id="copies"'))) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // ---- Find a working config (templates/autoconfigure/_autoconfigure.html) ----------------------
  // A refused start, stop or apply (a search already runs, the ML stack is missing, the model is busy)
  // answers the app's error fragment (modelhub/errors.py): shown in the section, not above the page.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    const slot = document.getElementById("autoconfigure-message");
    const status = event.detail.xhr.status;
    if (!slot || !source || !source.closest || !source.closest("#autoconfigure")) return;
    if (status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      event.detail.target = slot;
      event.detail.swapOverride = "innerHTML";
    }
  });

  // ---- wiring -----------------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const suggestion = event.target.closest("[data-apply-suggestion]");
    if (suggestion) {
      applySuggestion(suggestion);
      return;
    }
    const fitting = event.target.closest("[data-apply-fitting-config]");
    if (fitting) {
      applyFittingConfig(fitting);
      return;
    }
    const format = event.target.closest("[data-format-json]");
    if (format) {
      formatJson(format);
      return;
    }
    if (event.target.closest("[data-keep-editing]")) {
      keepEditing();
      return;
    }
    if (event.target.closest("[data-discard]")) {
      closeModal();
      return;
    }
    // The x and Cancel ask first when there are unsaved changes; the buttons that act and then close
    // (Load, Unload, Make default: their request is already sent) close at once.
    const close = event.target.closest("[data-close-modal]");
    if (close) {
      if (close.dataset.closeModal === "ask") requestClose();
      else closeModal();
      return;
    }
    // A click on the backdrop lands on the <dialog> itself (its content fills .modal-frame).
    if (event.target === modal()) requestClose();
  });

  document.addEventListener("submit", (event) => {
    if (event.target.id === "model-form") {
      event.preventDefault();
      save(event.target);
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const dialog = modal();
    if (!dialog) return;
    // Escape: handled on keydown, so the first one asks whatever Chromium's close-request rules would do
    // with a cancel event; "cancel" itself still asks when a close request comes another way.
    dialog.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      event.preventDefault();
      requestClose();
    });
    dialog.addEventListener("cancel", (event) => {
      const bar = unsavedBar();
      if (hasUnsavedChanges() && bar && bar.hidden) {
        event.preventDefault();
        requestClose();
      }
    });
    dialog.addEventListener("close", () => {
      const bar = unsavedBar();
      if (bar) bar.hidden = true; // the draft is dropped: the next open reads the model again
      // The body stays until the next open: a Load button in it may still have a request in flight.
      // Focus returns to the model's name button, looked up now: its card may have been re-rendered meanwhile.
      const form = document.getElementById("model-form");
      const button = form && cardButton(form.dataset.modelName);
      if (button) button.focus();
    });
  });

  // htmx does not swap a refused request (401: sign in; 403: cross-site...): say why above the page.
  document.addEventListener("htmx:afterRequest", (event) => {
    const flash = document.getElementById("flash");
    const xhr = event.detail.xhr;
    if (!flash || !xhr || opensModal(event)) return; // a modal that can't open says so itself (above)
    // No answer at all (status 0) is no refusal: the server could not be reached (static/js/connection.js
    // says so and retries), or the request was cancelled.
    if (xhr.status === 0) return;
    if (event.detail.successful) {
      flash.hidden = true;
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = xhr.responseText || "";
    const text = (template.content.textContent || "").replace(/\s+/g, " ").trim();
    flash.textContent = text && text.length < 400 ? text : "The server refused the request (" + xhr.status + ").";
    flash.hidden = false;
  });
})();
