// The item editor: show the fields of the chosen type, keep the student
// preview up to date while the teacher types, and in the set editor add,
// remove and reorder the questions in place. Without this script the page
// still works: every field is shown, saving shows the preview, and the
// question buttons send the form back to come back changed.
"use strict";

(function () {
  const form = document.getElementById("item-form");
  const preview = document.getElementById("preview");
  if (!form || !preview) return;
  const token = form.querySelector("input[name=csrf_token]").value;
  const children = document.getElementById("children");
  const template = document.getElementById("child-template");

  // Each type's fields show for the type chosen in their own scope: the
  // item's form, or one question of a set.
  function showParts() {
    for (const part of form.querySelectorAll(".ws-part[data-types]")) {
      const scope = part.closest("[data-type-scope]");
      const type = scope && scope.querySelector("select.ws-type");
      if (type) part.hidden = !part.dataset.types.split(" ").includes(type.value);
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

  // -- a set's questions ------------------------------------------------------

  // The catalog's texts with {n} in them ride on data-label: renumber after any change.
  function renumber() {
    const all = children.querySelectorAll(":scope > .ws-child");
    all.forEach((child, i) => {
      const n = String(i + 1);
      for (const el of child.querySelectorAll("[data-label]")) {
        if (el.closest(".ws-child") !== child) continue;
        const text = el.dataset.label.replace("{n}", n);
        if (el.tagName === "LEGEND") el.textContent = text;
        else el.setAttribute("aria-label", text);
      }
      child.querySelector("[data-move=up]").disabled = i === 0;
      child.querySelector("[data-move=down]").disabled = i === all.length - 1;
    });
  }

  // A new question's id: the set's id and the next number no question has.
  function nextId() {
    const setId = form.querySelector("#f-id").value.trim();
    const taken = new Set([...children.querySelectorAll("input.ws-child-id")].map((input) => input.value));
    let n = children.querySelectorAll(":scope > .ws-child").length + 1;
    while (taken.has(setId + "-" + n)) n += 1;
    return setId + "-" + n;
  }

  function addChild() {
    const keys = [...children.querySelectorAll(":scope > .ws-child")].map((c) => Number(c.dataset.child));
    const key = String(keys.length ? Math.max(...keys) + 1 : 0);
    const fresh = template.content.cloneNode(true);
    // Every name, id and label of the template says __K__ where the key goes.
    for (const el of fresh.querySelectorAll("*")) {
      for (const attr of [...el.attributes]) {
        if (attr.value.includes("__K__")) el.setAttribute(attr.name, attr.value.replaceAll("__K__", key));
      }
    }
    const child = fresh.querySelector(".ws-child");
    child.querySelector("input.ws-child-id").value = nextId();
    children.append(fresh);
    renumber();
    showParts();
    child.querySelector("input.ws-child-id").focus();
    later();
  }

  function move(child, how) {
    if (how === "remove") {
      const next = child.nextElementSibling || child.previousElementSibling;
      child.remove();
      renumber();
      (next ? next.querySelector("input.ws-child-id") : document.getElementById("add-child")).focus();
    } else {
      const other = how === "up" ? child.previousElementSibling : child.nextElementSibling;
      if (!other) return;
      if (how === "up") other.before(child);
      else other.after(child);
      renumber();
      const button = child.querySelector("[data-move=" + how + "]");
      (button.disabled ? child.querySelector("input.ws-child-id") : button).focus();
    }
    later();
  }

  if (children && template) {
    form.addEventListener("click", (event) => {
      const button = event.target.closest("button[name=child_action]");
      if (!button) return;
      event.preventDefault();
      if (button.value === "add") addChild();
      else move(button.closest(".ws-child"), button.dataset.move);
    });
    // Questions whose ids follow the set's (SET-1, SET-2 ...) follow a new set id.
    const setId = form.querySelector("#f-id");
    let before = setId.value.trim();
    setId.addEventListener("change", () => {
      const now = setId.value.trim();
      for (const input of children.querySelectorAll("input.ws-child-id")) {
        if (before && input.value.startsWith(before + "-")) input.value = now + input.value.slice(before.length);
      }
      before = now;
    });
    renumber();
  }

  form.addEventListener("change", (event) => {
    if (event.target.matches("select.ws-type")) showParts();
  });
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  showParts();
})();
