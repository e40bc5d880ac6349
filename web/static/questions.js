// The answer controls of a question, one renderer per item type. Each fills
// the question's fieldset and reports what the student chose through the
// page it is given:
//   page.S          the page's strings (cbt-strings)
//   page.answer(v)  records v as the question's answer
//   page.now()      the question's answer as it is now (the journal applied)
// `value` is the answer when the question is drawn (null if none).

export function html(node, markup) {
  // The server sends sanitised HTML (allow-listed tags, MathML, no script).
  node.innerHTML = markup;
  return node;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

// Typed text loses what PostgreSQL cannot store (NUL, and UTF-16 surrogates
// without their pair) before it is recorded, so what the student sees is what
// the server keeps. (No look-behind: older Safari-based exam browsers lack it.)
export function storable(text) {
  return text.replace(/\u0000/g, "").replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g,
    (m) => (m.length === 2 ? m : ""));
}

function keepStorable(field) {
  const clean = storable(field.value);
  if (clean !== field.value) field.value = clean;
}

// Single and multiple choice: a radio or a checkbox per option.
function choices(group, q, value, page) {
  const kind = q.type === "single" ? "radio" : "checkbox";
  const chosen = q.type === "single" ? [value] : value || [];
  q.options.forEach((o, k) => {
    const id = `${q.ref}-${o.id}`;
    const input = el("input", { type: kind, name: q.ref, id, value: o.id });
    input.checked = chosen.includes(o.id);
    input.addEventListener("change", () => {
      if (q.type === "single") page.answer(o.id);
      else page.answer([...group.querySelectorAll("input:checked")].map((x) => x.value));
    });
    // The whole row is the target, not only the circle: the label holds the control.
    group.append(el("label", { class: "choice option" }, input,
      el("span", { class: "letter", text: "ABCDEFGH"[k] + "." }), html(el("span", { class: "option-text" }), o.html)));
  });
}

// Four statements, each true or false (Part II).
function truefalse4(group, q, value, page) {
  const { S } = page;
  const marks = value || {};
  const table = el("table", { class: "grid statements" });
  table.append(el("thead", {}, el("tr", {}, el("th", { text: S.statement }), el("th", { text: S.true }), el("th", { text: S.false }))));
  const body = el("tbody");
  for (const s of q.statements) {
    const row = el("tr");
    const text = el("td", { id: `${q.ref}-st-${s.id}` }, s.id + ") ");
    text.append(html(el("span"), s.html));
    row.append(text);
    for (const [truth, word] of [[true, S.true], [false, S.false]]) {
      const input = el("input", { type: "radio", name: `${q.ref}-${s.id}`, "aria-label": `${s.id}) ${word}` });
      input.checked = marks[s.id] === truth;
      input.addEventListener("change", () => {
        // The other statements as they are now, not as they were when drawn.
        const now = { ...(page.now() || {}) };
        now[s.id] = truth;
        page.answer(now);
      });
      row.append(el("td", { class: "tf" }, el("label", { class: "tf-target" }, input)));
    }
    body.append(row);
  }
  table.append(body);
  group.append(table);
}

// A short answer: a number (Part III) or a few words.
function short(group, q, value, page) {
  const { S } = page;
  const numeric = q.format !== "text";
  const input = el("input", { id: q.ref + "-short", class: "short-input", autocomplete: "off", spellcheck: "false",
    inputmode: numeric ? "decimal" : "text", maxlength: numeric && q.format !== "number" ? "4" : "100" });
  input.value = value || "";
  input.addEventListener("input", () => {
    keepStorable(input);
    if (numeric) {
      // Part III: only digits, one leading minus and one decimal comma.
      let v = input.value.replace(/\./g, ",").replace(/[^0-9,-]/g, "");
      v = v.replace(/(?!^)-/g, "");
      const first = v.indexOf(",");
      if (first >= 0) v = v.slice(0, first + 1) + v.slice(first + 1).replace(/,/g, "");
      if (input.value !== v) input.value = v;
    }
    page.answer(input.value === "" ? null : input.value);
  });
  group.append(el("label", { for: input.id, text: numeric ? S.short_label : S.text_label }), input);
}

function essay(group, q, value, page) {
  const { S } = page;
  // The server keeps an essay of up to 20,000 characters (autosave.MAX_ESSAY).
  const area = el("textarea", { id: q.ref + "-essay", rows: "12", class: "essay", maxlength: "20000" });
  area.value = value || "";
  const count = el("p", { class: "muted", "aria-live": "polite" });
  const words = () => (count.textContent = S.words.replace("{n}", String((area.value.match(/\S+/g) || []).length)));
  area.addEventListener("input", () => {
    keepStorable(area);
    words();
    page.answer(area.value);
  });
  words();
  group.append(el("label", { for: area.id, text: S.essay_label }), area, count);
}

// An item type without a renderer draws no controls (its stem is still shown);
// no prototype, so that a type named like one of Object's methods has none either.
export const RENDERERS = Object.assign(Object.create(null), { single: choices, multiple: choices, truefalse4, short, essay });
