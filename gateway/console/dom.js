// Building the page from data without ever parsing it as HTML: every string a tenant supplied
// becomes a text node, so no name or label can run script (and the CSP forbids inline script
// besides).

/** An element with attributes (`class`, `href`, `data-*`, `on*` handlers) and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` shows with `children`. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** A table of `rows`, each cell given by a column's `cell(row)`, labelled for narrow screens. */
export function table(columns, rows, { empty = "Nothing yet." } = {}) {
  if (rows.length === 0) return h("p", { class: "hint" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.title)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h("tr", {}, columns.map((c) => h("td", { "data-label": c.title }, c.cell(row)))),
      ),
    ),
  );
}

/** A figure on a card, with a note under it. */
export function card(label, value, testId, note) {
  return h(
    "div",
    { class: "card", "data-testid": testId },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, value),
    note ? h("div", { class: "note" }, note) : null,
  );
}

/** An enum's name without its prefix, lowercase: `TENANT_STATE_ACTIVE` → `active`. */
export function enumName(value, prefix) {
  return String(value ?? "").replace(prefix, "").toLowerCase();
}
