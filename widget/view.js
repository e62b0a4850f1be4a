// The widget's DOM: a launcher button and a chat panel, in a shadow root so that the store's
// styles and ours never mix. Message content goes in through textContent and renderMarkdown
// only, never through innerHTML.

import { renderMarkdown, safeHref } from "./markdown.js";

const SVG = "http://www.w3.org/2000/svg";
const STATUS_TEXT = {
  connecting: "Connecting…",
  "connecting-failed": "Can't reach the assistant. Retrying…",
  reconnecting: "Reconnecting…",
};
const AUTHOR = { user: "You", bot: "Assistant" };

/** An element with attributes (strings), properties (the `on*` handlers) and children. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else if (value !== false && value != null) element.setAttribute(name, String(value));
  }
  element.append(...children.filter((child) => child != null));
  return element;
}

function icon(paths, size = 20) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of paths) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const CHAT_ICON = ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"];
const CLOSE_ICON = ["M6 6l12 12M18 6L6 18"];
const SEND_ICON = ["M3 20l18-8L3 4v6l12 2-12 2z"];

function clockTime(time) {
  return new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class ChatView {
  /**
   * @param {HTMLElement} host element to attach the shadow root to
   * @param {object} options title, subtitle, stylesheet (URL)
   * @param {object} actions toggle(), close(), submit(text), choose(reply), newConversation()
   */
  constructor(host, options, actions) {
    this.actions = actions;
    this.rendered = new Map(); // entry id -> { element, signature }
    const root = host.attachShadow({ mode: "open" });
    const stylesheet = h("link", { rel: "stylesheet", href: options.stylesheet });
    // Stay invisible until our styles are in, so the store never sees an unstyled widget.
    const container = h("div", { class: "gb", hidden: true });
    stylesheet.addEventListener("load", () => (container.hidden = false));
    stylesheet.addEventListener("error", () => (container.hidden = false));

    this.title = h("h2", { id: "gb-title", class: "gb-title" }, options.title);
    this.status = h("div", { class: "gb-status", role: "status" });
    this.messages = h("ol", { class: "gb-messages" });
    this.typing = h(
      "div",
      { class: "gb-typing", hidden: true },
      h("span", { class: "gb-dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")),
      h("span", { class: "gb-sr" }, "The assistant is typing"),
    );
    this.log = h(
      "div",
      {
        class: "gb-log",
        role: "log",
        "aria-live": "polite",
        "aria-label": "Conversation",
        tabindex: "0",
      },
      this.messages,
      this.typing,
    );
    this.input = h("input", {
      id: "gb-input",
      class: "gb-input",
      type: "text",
      autocomplete: "off",
      maxlength: "2000",
      placeholder: "Type your message",
      "aria-label": "Message",
    });
    const form = h(
      "form",
      {
        class: "gb-composer",
        onsubmit: (event) => {
          event.preventDefault();
          const text = this.input.value;
          if (!text.trim()) return;
          this.input.value = "";
          actions.submit(text);
        },
      },
      this.input,
      h("button", { type: "submit", class: "gb-send", "aria-label": "Send" }, icon(SEND_ICON)),
    );
    this.panel = h(
      "section",
      {
        id: "gb-panel",
        class: "gb-panel",
        role: "dialog",
        "aria-labelledby": "gb-title",
        hidden: true,
        onkeydown: (event) => {
          if (event.key === "Escape") actions.close();
        },
      },
      h(
        "header",
        { class: "gb-header" },
        h("div", { class: "gb-heading" }, this.title, h("p", { class: "gb-subtitle" }, options.subtitle)),
        h(
          "button",
          { type: "button", class: "gb-new", onclick: () => actions.newConversation() },
          "New chat",
        ),
        h(
          "button",
          { type: "button", class: "gb-close", "aria-label": "Close", onclick: () => actions.close() },
          icon(CLOSE_ICON),
        ),
      ),
      this.status,
      this.log,
      form,
    );
    this.badge = h("span", { class: "gb-badge", hidden: true, "aria-hidden": "true" });
    this.launcher = h(
      "button",
      {
        type: "button",
        class: "gb-launcher",
        "aria-expanded": "false",
        "aria-controls": "gb-panel",
        onclick: () => actions.toggle(),
      },
      icon(CHAT_ICON, 22),
      h("span", { class: "gb-launcher-text" }, "Chat with us"),
      this.badge,
    );
    container.append(this.panel, this.launcher);
    root.append(stylesheet, container);
    this.root = root;
  }

  // ------------------------------------------------------------------- panel

  setOpen(open, { focus = true } = {}) {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    this.launcher.classList.toggle("gb-launcher-open", open);
    if (open) {
      this.scrollToEnd();
      if (focus) this.input.focus();
    } else if (focus && this.root.activeElement) {
      this.launcher.focus();
    }
  }

  setUnread(count) {
    this.badge.hidden = count === 0;
    this.badge.textContent = count > 9 ? "9+" : String(count);
    const unread = count === 1 ? "1 unread message" : `${count} unread messages`;
    if (count) this.launcher.setAttribute("aria-label", `Chat with us, ${unread}`);
    else this.launcher.removeAttribute("aria-label");
  }

  setStatus(status) {
    this.status.textContent = STATUS_TEXT[status] ?? "";
    this.status.classList.toggle("gb-status-shown", Boolean(STATUS_TEXT[status]));
  }

  setTyping(typing) {
    this.typing.hidden = !typing;
    if (typing) this.scrollToEnd();
  }

  setBusy(busy) {
    if (busy) this.log.dataset.busy = "true";
    else delete this.log.dataset.busy;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  // ---------------------------------------------------------------- messages

  /** Show `entries` (the stored transcript): add what is new, redraw what changed. */
  sync(entries, offline) {
    const seen = new Set();
    let added = false;
    for (const entry of entries) {
      seen.add(entry.id);
      const signature = JSON.stringify([entry.pending && offline, entry.pending, entry.quickReplies]);
      const known = this.rendered.get(entry.id);
      if (known && known.signature === signature) continue;
      const element = this.message(entry, offline);
      if (known) known.element.replaceWith(element);
      else {
        this.messages.append(element);
        added = true;
      }
      this.rendered.set(entry.id, { element, signature });
    }
    for (const [id, { element }] of this.rendered) {
      if (!seen.has(id)) {
        element.remove();
        this.rendered.delete(id);
      }
    }
    if (added) this.scrollToEnd();
  }

  message(entry, offline) {
    if (entry.from === "notice") {
      return h("li", { class: "gb-notice", "data-id": entry.id }, entry.text);
    }
    const author = entry.from === "agent" ? `${entry.agent} (support agent)` : AUTHOR[entry.from];
    const bubble = h("div", { class: "gb-bubble" });
    if (entry.from === "user") bubble.textContent = entry.text;
    else bubble.append(renderMarkdown(entry.text));
    const item = h(
      "li",
      {
        class: `gb-message gb-from-${entry.from}`,
        "data-id": entry.id,
        "data-state": entry.pending ? "sending" : null,
      },
      h("span", { class: "gb-sr" }, `${author}: `),
      entry.from === "agent" ? h("div", { class: "gb-author", "aria-hidden": "true" }, author) : null,
      entry.text ? bubble : null,
      entry.image ? this.image(entry.image) : null,
      h(
        "div",
        { class: "gb-meta" },
        h("time", { datetime: new Date(entry.time).toISOString() }, clockTime(entry.time)),
        entry.pending && offline
          ? h("span", { class: "gb-pending" }, " · Not sent yet: it will go as soon as the connection is back")
          : null,
      ),
    );
    if (entry.quickReplies?.length) {
      item.append(
        h(
          "div",
          { class: "gb-replies", role: "group", "aria-label": "Suggested replies" },
          ...entry.quickReplies.map((reply) =>
            h(
              "button",
              {
                type: "button",
                class: "gb-reply",
                onclick: () => {
                  this.actions.choose(reply);
                  this.input.focus(); // the buttons go away: keep the keyboard in the chat
                },
              },
              reply.title,
            ),
          ),
        ),
      );
    }
    return item;
  }

  image(src) {
    const href = safeHref(src);
    if (!href || href.startsWith("mailto:")) return null;
    const image = h("img", { class: "gb-image", src: href, alt: "Image from the assistant", loading: "lazy" });
    image.addEventListener("load", () => this.scrollToEnd(), { once: true });
    return image;
  }
}
