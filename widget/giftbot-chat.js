// The shopper chat widget. A store embeds it with one tag:
//
//   <script type="module" src="https://assistant.example.com/widget/giftbot-chat.js"
//           data-socket-url="https://assistant.example.com:5005"
//           data-title="Gift card help"
//           data-customer-token="<token the store signed, or empty when signed out>"></script>
//
// Options (data- attributes of that tag): socket-url, socket-path, title, subtitle,
// customer-token, init-payload, mask-url, metadata-key, storage-key, open. The page talks to
// it through window.GiftbotChat (open, close, setCustomerToken, newConversation, send); it
// fires a "giftbot:ready" event on window once that is there.

import { Connection } from "./connection.js";
import { newId, Store } from "./storage.js";
import { ChatView } from "./view.js";

const HERE = new URL(import.meta.url);
// Brief connection blips do not deserve a "Reconnecting…" banner.
const STATUS_DELAY_MS = 800;
const MASK_UNAVAILABLE = "[message not shown]";
// What the server masks a claim code to (bot/wallet/codes.py: MASKED_CLAIM_CODE).
const MASKED_CLAIM_CODE = "[claim code hidden]";

function scriptOptions() {
  const script = [...document.querySelectorAll("script[src]")].find(
    (element) => element.src === HERE.href,
  );
  const data = script?.dataset ?? {};
  const defaultSocket = `${location.protocol}//${location.hostname}:5005`;
  return {
    socketUrl: data.socketUrl || defaultSocket,
    socketPath: data.socketPath || "/socket.io/",
    title: data.title || "Gift card help",
    subtitle: data.subtitle || "Card values, claim codes, your balance",
    customerToken: data.customerToken || null,
    initPayload: data.initPayload ?? "/greet",
    maskUrl: data.maskUrl || new URL("../api/mask", HERE).href,
    metadataKey: data.metadataKey || "metadata",
    storageKey: data.storageKey || "giftbot",
    open: data.open === "true",
  };
}

/** The `sub` of a customer token, read only to notice that another shopper signed in. */
function tokenSubject(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sub ?? "") || null;
  } catch {
    return null;
  }
}

/** A reply from Rasa's socket.io channel as transcript entries (rasa: SocketIOOutput). */
function entriesFor(payload) {
  // Custom payloads arrive unwrapped (see README: the agent convention); accept them wrapped too.
  const message = payload.custom && typeof payload.custom === "object" ? payload.custom : payload;
  const agent = typeof message.agent?.name === "string" ? message.agent.name.slice(0, 60) : null;
  const base = { time: Date.now() };
  if (message.event === "agent_joined" || message.event === "agent_left") {
    const who = agent ? `${agent} from customer support` : "A support agent";
    const text = message.event === "agent_joined" ? `${who} has joined the chat.` : `${who} has left the chat.`;
    return [{ ...base, id: newId(), from: "notice", text }];
  }
  const replies = message.quick_replies ?? message.buttons ?? [];
  const entry = {
    ...base,
    id: newId(),
    from: agent ? "agent" : "bot",
    agent,
    text: typeof message.text === "string" ? message.text : "",
    image: message.attachment?.type === "image" ? message.attachment.payload?.src : message.image,
    quickReplies: replies
      .filter((reply) => reply && typeof reply.title === "string")
      .map((reply) => ({ title: reply.title, payload: String(reply.payload ?? reply.title) })),
  };
  if (!entry.quickReplies.length) delete entry.quickReplies;
  if (typeof entry.image !== "string") delete entry.image;
  const elements = message.attachment?.type === "template" ? message.attachment.payload?.elements : null;
  if (Array.isArray(elements)) {
    entry.text = elements.map((e) => [e.title, e.subtitle].filter(Boolean).join("\n")).join("\n\n");
  }
  return entry.text || entry.image || entry.quickReplies ? [entry] : [];
}

class GiftbotChat {
  constructor(options) {
    this.options = options;
    this.store = new Store(options.storageKey);
    this.token = null;
    this.open = false;
    this.status = "offline";
    this.statusTimer = null;
    this.inflight = null;
    this.masking = Promise.resolve();
    this.maskingCount = 0;
    this.typingTimer = null;

    const host = document.createElement("div");
    host.id = "giftbot-chat";
    this.view = new ChatView(
      host,
      { title: options.title, subtitle: options.subtitle, stylesheet: new URL("giftbot-chat.css", HERE).href },
      {
        toggle: () => (this.open ? this.close() : this.show()),
        close: () => this.close(),
        submit: (text) => this.submit(text),
        choose: (reply) => this.choose(reply),
        newConversation: () => this.newConversation(),
      },
    );
    this.connection = new Connection(
      {
        url: options.socketUrl,
        path: options.socketPath,
        userEvent: "user_uttered",
        botEvent: "bot_uttered",
        metadataKey: options.metadataKey,
      },
      {
        onStatus: (status) => this.connectionStatus(status),
        onBotMessage: (payload) => this.received(payload),
        onSession: (secret, id) => this.confirmed(secret, id),
      },
    );
    // Every tab of the store receives each reply, and exactly one tab records it; the others
    // show it from storage. Replies to a message go to the tab that sent it; anything else
    // (an agent writing) to the leader tab. Without Web Locks (plain http off localhost)
    // every tab is a leader, which is right for the usual single tab.
    this.tab = newId();
    addEventListener("pagehide", () => this.setInflight(null));
    this.leader = !navigator.locks;
    navigator.locks?.request(`${options.storageKey}:leader`, () => {
      this.leader = true;
      return new Promise(() => {}); // held until the tab goes away
    });
    this.setCustomerToken(options.customerToken);
    this.render();
    document.body.append(host);
    window.addEventListener("storage", (event) => this.otherTabChanged(event));

    const session = this.store.session();
    // Connect at once when there is a conversation to continue (an agent may write into it).
    if (session.started || this.store.outbox().length) this.connection.connect(session.secret);
    if (options.open || this.store.wasOpen()) this.show({ focus: false });
  }

  // -------------------------------------------------------------- public API

  show({ focus = true } = {}) {
    this.open = true;
    this.store.setOpen(true);
    this.store.updateSession({ unread: 0 });
    const session = this.store.session();
    this.connection.connect(session.secret);
    if (!session.started) {
      this.store.updateSession({ started: true });
      if (this.options.initPayload) {
        this.store.enqueue({ id: newId(), text: this.options.initPayload, entry: null });
        this.flush();
      }
    }
    this.view.setOpen(true, { focus });
    this.render();
  }

  close() {
    this.open = false;
    this.store.setOpen(false);
    this.view.setOpen(false);
  }

  /**
   * Who the shopper is: the token the store signed for them, or null when signed out. When
   * another shopper signs in, or the shopper signs out, the conversation starts afresh, so
   * that nobody sees (or continues) someone else's conversation on a shared computer.
   */
  setCustomerToken(token) {
    this.token = token || null;
    const customer = this.token ? tokenSubject(this.token) : null;
    const session = this.store.session();
    if (session.customer && session.customer !== customer) this.newConversation(customer);
    else if (session.customer !== customer) this.store.updateSession({ customer });
  }

  newConversation(customer = this.store.session().customer) {
    const session = this.store.startSession(customer);
    this.setInflight(null);
    this.setTyping(false);
    this.connection.switchSession(session.secret);
    this.render();
    if (this.open) this.show({ focus: false });
  }

  send(text) {
    this.submit(text);
  }

  // ----------------------------------------------------------------- sending

  submit(text) {
    this.store.retireQuickReplies();
    // The answer to "what is the claim code?" is secret whole, even if it does not parse.
    const secret = this.takeSecretAnswer();
    this.inOrder(async () => this.queue(text, secret ? MASKED_CLAIM_CODE : await this.mask(text)));
  }

  choose(reply) {
    this.store.retireQuickReplies();
    this.takeSecretAnswer();
    this.inOrder(() => this.queue(reply.payload, reply.title));
  }

  /** Whether the assistant has just asked for a secret; asking answers it. */
  takeSecretAnswer() {
    const asked = Boolean(this.store.session().secretAnswer);
    if (asked) this.store.updateSession({ secretAnswer: false });
    return asked;
  }

  /** One at a time, in order: the shown (masked) text must come before the reply to it. */
  inOrder(step) {
    this.maskingCount += 1;
    this.render();
    this.masking = this.masking
      .then(step)
      .catch((error) => console.error("giftbot:", error))
      .finally(() => {
        this.maskingCount -= 1;
        this.render();
      });
  }

  queue(text, shown) {
    const entry = { id: newId(), from: "user", text: shown, time: Date.now(), pending: true };
    this.store.append(entry);
    this.store.enqueue({ id: newId(), text, entry: entry.id });
    this.render();
    this.flush();
  }

  /** The message as the transcript may show and keep it: claim codes hidden by the server. */
  async mask(text) {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        const response = await fetch(this.options.maskUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text }),
          signal: AbortSignal.timeout(5000),
        });
        if (response.ok) {
          const body = await response.json();
          if (typeof body.text === "string") return body.text;
        }
      } catch {
        // offline or slow: try once more, then show a placeholder rather than risk a code
      }
    }
    return MASK_UNAVAILABLE;
  }

  /** Send the oldest unacknowledged message, if connected and nothing is on its way. */
  flush() {
    if (!this.connection.ready || this.inflight) return;
    const [item] = this.store.outbox();
    if (!item) return;
    this.setInflight(item.id);
    this.setTyping(true);
    // The message's own id: a message sent again after a reconnect is the same message, and
    // Rasa does not run it twice (bot/rasa_ext/inbox.py).
    const metadata = { message_id: item.id };
    if (this.token) metadata.customer_token = this.token;
    this.connection.send(item.text, metadata, () => {
      if (this.inflight !== item.id) return;
      this.setInflight(null);
      this.store.dequeue(item.id);
      if (item.entry) this.store.update(item.entry, { pending: false });
      this.setTyping(false);
      this.render();
      this.flush();
    });
  }

  // --------------------------------------------------------------- receiving

  /** The message on its way (one at a time), announced to the other tabs. */
  setInflight(id) {
    if (id) this.store.markSending(this.tab);
    else if (this.inflight) this.store.clearSending(this.tab);
    this.inflight = id;
  }

  received(payload) {
    const mine = this.inflight !== null;
    if (!mine && !(this.leader && !this.store.otherTabSending(this.tab))) return;
    if (payload?.secret_answer === true || payload?.custom?.data?.secret_answer === true) {
      this.store.updateSession({ secretAnswer: true }); // the next message is a secret
      return;
    }
    for (const entry of entriesFor(payload)) {
      this.store.append(entry);
      if (!this.open) this.store.updateSession({ unread: this.store.session().unread + 1 });
    }
    this.render();
  }

  /** The server confirmed the conversation's id: kept, for the store's support staff to quote. */
  confirmed(secret, id) {
    const session = this.store.session();
    if (session.secret === secret && session.id !== id) this.store.updateSession({ id });
  }

  connectionStatus(status) {
    this.status = status;
    clearTimeout(this.statusTimer);
    if (status === "online") {
      this.view.setStatus(status);
      this.render();
      this.flush();
      return;
    }
    this.setInflight(null); // what was on its way is sent again after the reconnect
    this.setTyping(false);
    this.statusTimer = setTimeout(() => {
      this.view.setStatus(this.status);
      this.render();
    }, STATUS_DELAY_MS);
  }

  setTyping(typing) {
    clearTimeout(this.typingTimer);
    this.view.setTyping(typing);
    // Rasa acknowledges when it is done; this is only a guard against a lost acknowledgement.
    if (typing) this.typingTimer = setTimeout(() => this.view.setTyping(false), 60_000);
  }

  // ----------------------------------------------------------------- display

  render() {
    const session = this.store.session();
    const offline = this.status !== "online";
    this.view.sync(this.store.transcript(), offline);
    // Something the shopper sent is still on its way or unanswered (tests wait on this).
    this.view.setBusy(this.maskingCount > 0 || this.store.outbox().length > 0);
    this.view.setUnread(this.open ? 0 : session.unread);
  }

  otherTabChanged(event) {
    if (event.key === this.store.keys.session) {
      const session = this.store.session();
      // The shopper signed out (or another shopper in) in another tab: never send a token
      // that is not the conversation's shopper's.
      if (this.token && tokenSubject(this.token) !== session.customer) this.token = null;
      if (session.secret !== this.connection.sessionSecret) {
        this.setInflight(null);
        this.setTyping(false);
        this.connection.switchSession(session.secret);
      }
      // Another tab started the conversation: listen too, in case this tab is the leader.
      if (session.started) this.connection.connect(session.secret);
    }
    if (event.key === this.store.keys.session || event.key === this.store.keys.transcript) {
      this.render();
    }
  }
}

const chat = new GiftbotChat(scriptOptions());
window.GiftbotChat = {
  open: () => chat.show(),
  close: () => chat.close(),
  setCustomerToken: (token) => chat.setCustomerToken(token),
  newConversation: () => chat.newConversation(),
  send: (text) => chat.send(text),
};
window.dispatchEvent(new CustomEvent("giftbot:ready", { detail: window.GiftbotChat }));
