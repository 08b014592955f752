// The Import / Export page. The import form is plain HTML + htmx (templates/exchange.html); this only
// lets htmx show the server's answer to a refused file (422), a plan that changed since the preview
// (409) or a file over the size limit (413): those fragments explain what to do, so they are swapped in
// like a success instead of being dropped as htmx does with 4xx answers by default.
"use strict";

document.addEventListener("htmx:beforeSwap", (event) => {
  const form = event.target.closest && event.target.closest("#import-form");
  const status = event.detail.xhr.status;
  if (form && status >= 400 && status < 500) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    event.detail.target = document.getElementById("import-plan");
  }
});
