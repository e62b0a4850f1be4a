// Safe markdown for the assistant's messages: paragraphs, line breaks, **bold**, *italic*,
// `code`, [links](https://…), bare https:// links and "-" / "1." lists. Everything is built
// with DOM nodes and textContent; message text never reaches innerHTML, so markup in a
// message is shown as the characters it is.

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

// The inline forms, tried at every position; the earliest match wins.
const INLINE = [
  { kind: "strong", re: /\*\*(?=\S)([\s\S]*?\S)\*\*/ },
  { kind: "strong", re: /__(?=\S)([\s\S]*?\S)__/ },
  { kind: "link", re: /\[([^\]\n]+)\]\(\s*([^()\s]+)\s*\)/ },
  { kind: "code", re: /`([^`\n]+)`/ },
  { kind: "em", re: /(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])/ },
  { kind: "url", re: /\bhttps?:\/\/[^\s<>"')\]]*[^\s<>"')\].,;:!?]/ },
];

const LIST_ITEM = /^\s*(?:([-*•])|(\d{1,3})[.)])\s+(.*)$/;

/** A DocumentFragment for `text`, safe to insert anywhere. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const blocks = String(text ?? "").replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/);
  for (const block of blocks) {
    if (block.trim()) renderBlock(block, fragment);
  }
  return fragment;
}

/** A safe URL for a link, or null when the protocol could run code (javascript:, data:, …). */
export function safeHref(href) {
  try {
    const url = new URL(href, document.baseURI);
    return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function renderBlock(block, parent) {
  let paragraph = null;
  let list = null;
  for (const line of block.split("\n")) {
    const item = LIST_ITEM.exec(line);
    if (item) {
      const ordered = item[2] !== undefined;
      const tag = ordered ? "ol" : "ul";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = parent.appendChild(document.createElement(tag));
        if (ordered && item[2] !== "1") list.start = Number(item[2]);
      }
      const li = list.appendChild(document.createElement("li"));
      renderInline(item[3], li);
      paragraph = null;
    } else if (line.trim()) {
      if (paragraph) {
        paragraph.appendChild(document.createElement("br"));
      } else {
        paragraph = parent.appendChild(document.createElement("p"));
      }
      renderInline(line.trim(), paragraph);
      list = null;
    }
  }
}

function renderInline(text, parent, inLink = false) {
  let rest = text;
  while (rest) {
    let best = null;
    for (const form of INLINE) {
      if (inLink && (form.kind === "link" || form.kind === "url")) continue;
      const match = form.re.exec(rest);
      if (match && (!best || match.index < best.match.index)) best = { form, match };
    }
    if (!best) {
      parent.appendChild(document.createTextNode(rest));
      return;
    }
    const { form, match } = best;
    if (match.index > 0) parent.appendChild(document.createTextNode(rest.slice(0, match.index)));
    parent.appendChild(inlineNode(form.kind, match, inLink));
    rest = rest.slice(match.index + match[0].length);
  }
}

function inlineNode(kind, match, inLink) {
  if (kind === "code") {
    const code = document.createElement("code");
    code.textContent = match[1];
    return code;
  }
  if (kind === "strong" || kind === "em") {
    const element = document.createElement(kind);
    renderInline(match[1], element, inLink);
    return element;
  }
  const label = kind === "link" ? match[1] : match[0];
  const href = safeHref(kind === "link" ? match[2] : match[0]);
  if (!href) return document.createTextNode(match[0]);
  const link = document.createElement("a");
  link.href = href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  renderInline(label, link, true);
  return link;
}
