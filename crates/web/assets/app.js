// matrix-transplant ui: the little the page needs a script for. Served by the binary;
// no other script runs (the page's Content-Security-Policy allows only this file).
"use strict";

// Live progress: the server sends the progress as HTML it escaped itself, and where to go
// when the work ends.
function followProgress(url) {
  const box = document.getElementById("progress");
  const source = new EventSource(url);
  source.addEventListener("message", (e) => { if (box) box.innerHTML = e.data; });
  source.addEventListener("done", (e) => { source.close(); location.assign(e.data); });
}

// The rooms screen: search, select all shown, select none.
function roomTools() {
  const tools = document.getElementById("room-tools");
  if (!tools) return;
  tools.hidden = false;
  const rows = Array.from(document.querySelectorAll("tr.room"));
  const boxes = (all) => rows.filter((r) => all || !r.classList.contains("hidden"))
    .map((r) => r.querySelector("input[type=checkbox]")).filter((b) => b && !b.disabled);
  document.getElementById("room-search").addEventListener("input", (e) => {
    const q = e.target.value.trim().toLowerCase();
    for (const r of rows) r.classList.toggle("hidden", q !== "" && !r.dataset.text.includes(q));
  });
  document.getElementById("select-all").addEventListener("click", () => boxes(false).forEach((b) => { b.checked = true; }));
  document.getElementById("select-none").addEventListener("click", () => boxes(true).forEach((b) => { b.checked = false; }));
}

// The keys screen: an export is sent as the request's body, its passphrase in a header
// (never in an address), with the page's token.
function exportUpload() {
  const form = document.getElementById("export-form");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = document.getElementById("export-file").files[0];
    const passphrase = document.getElementById("export-passphrase");
    if (!file) return;
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = "Reading the export…";
    await fetch("/keys/export", {
      method: "POST",
      headers: {
        "Content-Type": "application/octet-stream",
        "X-Token": form.elements.token.value,
        "X-File-Name": encodeURIComponent(file.name),
        "X-Passphrase": encodeURIComponent(passphrase.value),
      },
      body: file,
    });
    passphrase.value = "";
    location.assign("/keys");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.stream) followProgress(document.body.dataset.stream);
  roomTools();
  exportUpload();
});
