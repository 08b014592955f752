// The model details modal: open it from a model name, check and save it, update the card in place.
// The markup comes from the server (templates/_model_details.html); this file only wires behaviour.
// No inline handlers anywhere, so the pages can run under a Content-Security-Policy without 'unsafe-inline'.
"use strict";

(function () {
  const INVALID_JSON = "Invalid JSON in Load Configuration field";
  let openerButton = null; // where focus returns when the modal closes

  function modal() {
    return document.getElementById("model-modal");
  }

  function modalBody() {
    return document.getElementById("modal-body");
  }

  async function showEditDetailsModal(button) {
    const name = button.dataset.modelName;
    console.log("showEditDetailsModal called for:", name);
    openerButton = button;
    const response = await fetch(button.dataset.detailsUrl, { headers: { Accept: "text/html" } });
    if (!response.ok) {
      console.error("Could not load model", name, response.status);
      alert("Could not load " + name + " (" + response.status + "). It may have been removed: reload the page.");
      return;
    }
    modalBody().innerHTML = await response.text();
    if (window.htmx) htmx.process(modalBody()); // the Load / Unload buttons are htmx buttons
    const form = document.getElementById("model-form");
    console.log("Found model:", JSON.parse(form.dataset.model));
    if (!modal().open) {
      modal().showModal();
    }
    const first = form.querySelector("[autofocus]");
    if (first) first.focus();
    console.log("Modal should now be visible");
  }

  function closeModal() {
    if (modal() && modal().open) modal().close();
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
      form.querySelector("[aria-invalid]").focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const response = await fetch(form.dataset.apiUrl, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", "If-Match": form.dataset.etag },
        body: JSON.stringify(body),
      });
      if (response.ok) {
        closeModal();
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
        run: () => showEditDetailsModal(cardButton(form.dataset.modelName) || openerButton),
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
      const invalid = form.querySelector("[aria-invalid]");
      if (invalid) {
        const details = invalid.closest("details");
        if (details) details.open = true;
        invalid.focus();
      }
      return;
    }
    showBanner(form, problem.message || "Saving failed (" + response.status + "). Your edits are still here; try again.");
  }

  function cardButton(name) {
    return Array.from(document.querySelectorAll(".model-name")).find((b) => b.dataset.modelName === name);
  }

  async function refreshCard(cardUrl, name) {
    const button = cardButton(name);
    const card = button && button.closest(".model-card");
    if (!card) return;
    const response = await fetch(cardUrl, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const fresh = template.content.firstElementChild;
    card.replaceWith(fresh);
    const freshButton = fresh.querySelector(".model-name");
    if (freshButton) freshButton.focus();
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
    field.value = JSON.stringify(config, null, 4);
    field.focus();
  }

  // ---- wiring -----------------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const name = event.target.closest(".model-name");
    if (name) {
      showEditDetailsModal(name);
      return;
    }
    const suggestion = event.target.closest("[data-apply-suggestion]");
    if (suggestion) {
      applySuggestion(suggestion);
      return;
    }
    if (event.target.closest("[data-close-modal]")) {
      closeModal();
      return;
    }
    // A click on the backdrop lands on the <dialog> itself (its content fills .modal-frame).
    if (event.target === modal()) closeModal();
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
    dialog.addEventListener("close", () => {
      // The body stays until the next open: a Load button in it may still have a request in flight.
      // The card may have been re-rendered while the modal was open: return to the current one.
      const target = (openerButton && document.contains(openerButton) && openerButton) ||
        (openerButton && cardButton(openerButton.dataset.modelName));
      if (target) target.focus();
    });
  });

  // htmx does not swap a refused request (401: sign in; 403: cross-site...): say why above the page.
  document.addEventListener("htmx:afterRequest", (event) => {
    const flash = document.getElementById("flash");
    const xhr = event.detail.xhr;
    if (!flash || !xhr) return;
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

  window.showEditDetailsModal = showEditDetailsModal;
})();
