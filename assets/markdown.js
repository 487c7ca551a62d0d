// A report's Markdown, drawn as page elements (never as HTML: text is only ever a text node, so
// nothing written in a report can add markup or script). The part of CommonMark reports use:
// ATX headings (one level under the page's title), paragraphs, lists (bulleted and numbered),
// block quotes, fenced and indented code, rules; backslash escapes, inline code, strong,
// emphasis, and links to http, https and mailto addresses (any other link is shown as its
// text). The page a public link opens (/s/) renders the same text on the server with a full
// CommonMark parser under the same rules.
import { el } from "./common.js";

const SAFE_LINK = /^(https?:|mailto:)/i;

/** Inline spans of one line or paragraph: code first (nothing inside it is read), then links,
 *  strong and emphasis. */
function inline(text) {
  const out = [];
  // A backslash before punctuation is that character, meaning nothing. Underscores inside a
  // word (`source_type`) are not emphasis, as in CommonMark.
  const pattern = /\\([!-/:-@[-`{-~])|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|(?<!\w)__([^_]+)__(?!\w)|\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const [, escaped, code, label, href, strong1, strong2, em1, em2] = m;
    if (escaped !== undefined) out.push(escaped);
    else if (code !== undefined) out.push(el("code", {}, code));
    else if (label !== undefined) out.push(SAFE_LINK.test(href) ? el("a", { href, rel: "noopener noreferrer" }, ...inline(label)) : label);
    else if (strong1 !== undefined || strong2 !== undefined) out.push(el("strong", {}, ...inline(strong1 ?? strong2)));
    else out.push(el("em", {}, ...inline(em1 ?? em2)));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;

/** `text` as a fragment of elements. */
export function markdown(text) {
  const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let i = 0;
  const paragraph = [];
  const flush = () => {
    if (paragraph.length) blocks.push(el("p", {}, ...inline(paragraph.join(" "))));
    paragraph.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      flush();
      i += 1;
    } else if ((m = line.match(/^\s{0,3}(```|~~~)/))) {
      flush();
      const fence = m[1];
      const code = [];
      for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(fence); i += 1) code.push(lines[i]);
      i += 1;
      blocks.push(el("pre", {}, el("code", {}, code.join("\n"))));
    } else if (/^( {4}|\t)/.test(line) && !paragraph.length) {
      const code = [];
      for (; i < lines.length && (/^( {4}|\t)/.test(lines[i]) || !lines[i].trim()); i += 1) code.push(lines[i].replace(/^( {4}|\t)/, ""));
      blocks.push(el("pre", {}, el("code", {}, code.join("\n").replace(/\n+$/, ""))));
    } else if ((m = line.match(/^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/))) {
      flush();
      // A closing run of #s is not part of the heading.
      let heading = (m[2] || "").trimEnd();
      const closing = heading.match(/(^|[ \t])#+$/);
      if (closing) heading = heading.slice(0, closing.index).trimEnd();
      blocks.push(el(`h${Math.min(6, m[1].length + 1)}`, {}, ...inline(heading)));
      i += 1;
    } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      blocks.push(el("hr", {}));
      i += 1;
    } else if (/^\s{0,3}>/.test(line)) {
      flush();
      const quoted = [];
      for (; i < lines.length && /^\s{0,3}>/.test(lines[i]); i += 1) quoted.push(lines[i].replace(/^\s{0,3}>\s?/, ""));
      blocks.push(el("blockquote", {}, markdown(quoted.join("\n"))));
    } else if ((m = line.match(LIST_ITEM))) {
      flush();
      const ordered = /\d/.test(m[1]);
      const items = [];
      for (; i < lines.length && (m = lines[i].match(LIST_ITEM)) && /\d/.test(m[1]) === ordered; i += 1) {
        items.push(el("li", {}, ...inline(m[2])));
      }
      blocks.push(el(ordered ? "ol" : "ul", {}, ...items));
    } else {
      paragraph.push(line.trim());
      i += 1;
    }
  }
  flush();
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks);
  return fragment;
}
