// The item editor: show the fields of the chosen type, and keep the student
// preview up to date while the teacher types. Without this script the page
// still works: every field is shown, and saving shows the preview.
"use strict";

(function () {
  const form = document.getElementById("item-form");
  const preview = document.getElementById("preview");
  if (!form || !preview) return;
  const type = form.querySelector("#f-type");
  const token = form.querySelector("input[name=csrf_token]").value;

  function showParts() {
    for (const part of form.querySelectorAll(".ws-part")) {
      part.hidden = !part.dataset.types.split(" ").includes(type.value);
    }
  }

  let timer = null;
  let sent = 0;
  async function refresh() {
    const mine = ++sent;
    try {
      const resp = await fetch(form.dataset.previewUrl, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRF-Token": token },
      });
      const html = await resp.text();
      // An older answer arriving late must not replace a newer one.
      if (mine === sent && resp.ok) {
        preview.innerHTML = html;
        preview.dataset.updated = String(mine);
      }
    } catch (e) {
      // Offline for a moment: the next keystroke tries again; saving still works.
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  type.addEventListener("change", showParts);
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  showParts();
})();
