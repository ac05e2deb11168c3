// The delete and wipe buttons, shown only with --web.enable-admin-api, and the groups page's
// memory of what was opened. Everything else in the UI is plain HTML and reads the same without
// this script.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-method]");
  if (!button || !window.confirm(button.dataset.confirm)) {
    return;
  }
  const status = document.getElementById("action-status");
  button.disabled = true;
  try {
    const response = await fetch(button.dataset.url, { method: button.dataset.method });
    if (!response.ok) {
      throw new Error(`${response.status}: ${(await response.text()).trim()}`);
    }
    window.location.reload();
  } catch (error) {
    // textContent: an answer from the server is shown as text, never as markup.
    status.textContent = `${button.dataset.failure}: ${error.message}`;
    button.disabled = false;
  }
});

// Groups and families opened or closed stay so across a refresh, in this tab only, as in the
// Pushgateway's UI since 1.7 (sessionStorage, by each element's id). Not on the page of one
// group, which shows it opened.
if (!new URLSearchParams(window.location.search).has("group")) {
  for (const details of document.querySelectorAll("details.group[id], details.family[id]")) {
    const key = `cronpush-open:${details.id}`;
    const saved = window.sessionStorage.getItem(key);
    if (saved !== null) {
      details.open = saved === "true";
    }
    details.addEventListener("toggle", () => window.sessionStorage.setItem(key, String(details.open)));
  }
}

// A link to one group (the board links each CronJob to its group) opens that group.
const target = window.location.hash && document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
if (target instanceof HTMLDetailsElement) {
  target.open = true;
}
