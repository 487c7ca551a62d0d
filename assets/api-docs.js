// /docs/api: the OpenAPI document of /api/schema/ as a readable page, grouped by tag. Needs no
// session (the document is public); with one, the navigation shows as on every page.
import { $, drawNav, el, say, Session } from "./common.js";

let components = {};

/** The component a `$ref` names, or the schema itself. */
function resolve(schema) {
  if (schema && schema.$ref) return components[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

/** A short type text: `string (date-time)`, `array of KeyDto`, `integer or null`. */
function typeText(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.oneOf) return schema.oneOf.map(typeText).join(" or ");
  let type = Array.isArray(schema.type) ? schema.type.join(" or ") : (schema.type || "any");
  if (schema.type === "array" || (Array.isArray(schema.type) && schema.type.includes("array"))) {
    type = `array of ${typeText(schema.items)}`;
  }
  if (schema.format) type += ` (${schema.format})`;
  if (schema.enum) type += `: ${schema.enum.join(", ")}`;
  return type;
}

/** The fields of an object schema as a table. */
function fieldsTable(schema) {
  const shape = resolve(schema);
  const props = shape.properties || {};
  const names = Object.keys(props);
  if (names.length === 0) return el("p", { class: "muted" }, typeText(schema));
  const required = new Set(shape.required || []);
  return el("table", { class: "fields" },
    el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"), el("th", {}, "Required"))),
    el("tbody", {}, ...names.map((name) => el("tr", {},
      el("td", {}, el("code", {}, name)),
      el("td", {}, typeText(props[name])),
      el("td", {}, required.has(name) ? "yes" : "")))));
}

function operationCard(path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  const card = el("section", { class: "card operation", id },
    el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", { class: "wrap" }, path)),
    el("p", {}, op.summary || ""));
  if (op.description) card.append(el("p", { class: "muted" }, op.description));
  const security = (op.security || []).flatMap((s) => Object.keys(s));
  card.append(el("p", { class: "muted" },
    security.length ? `Credentials: ${security.join(", ")}` : "No credentials."));
  const params = op.parameters || [];
  if (params.length) {
    card.append(el("h4", {}, "Parameters"), el("table", { class: "fields" },
      el("tbody", {}, ...params.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, typeText(p.schema)),
        el("td", {}, p.description || ""))))));
  }
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) {
    card.append(el("h4", {}, op.requestBody.required ? "Body (JSON)" : "Body (JSON, optional)"),
      fieldsTable(body.schema));
  }
  const responses = Object.entries(op.responses || {});
  card.append(el("h4", {}, "Answers"), el("ul", { class: "answers" }, ...responses.map(([code, r]) => {
    const json = r.content && r.content["application/json"];
    const item = el("li", {}, el("strong", {}, code), " ", r.description || "");
    if (code.startsWith("2") && json && json.schema) item.append(fieldsTable(json.schema));
    return item;
  })));
  return card;
}

async function load() {
  if (Session.access) drawNav();
  const response = await fetch("/api/schema/");
  if (!response.ok) {
    say(`The API document could not be loaded (${response.status}).`, "error");
    return;
  }
  const doc = await response.json();
  components = (doc.components && doc.components.schemas) || {};
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, op]);
    }
  }
  const contents = $("#contents");
  const operations = $("#operations");
  for (const [tag, ops] of byTag) {
    contents.append(el("a", { href: `#tag-${tag}` }, tag), " ");
    operations.append(el("h2", { id: `tag-${tag}` }, tag),
      ...ops.map(([path, method, op]) => operationCard(path, method, op)));
  }
}

load();
