// What the widget keeps in the browser, so that a conversation survives reloads, closed tabs
// and other tabs of the same store:
//   localStorage   <prefix>:session     the session secret (only this browser has it), the
//                                       conversation's id once confirmed, who was signed in,
//                                       unread count
//   localStorage   <prefix>:transcript  the messages as shown (claim codes already hidden)
//   sessionStorage <prefix>:outbox      what the shopper typed that Rasa has not acknowledged
//   localStorage   <prefix>:sending     which tab has a message on its way (it records the replies)
//   sessionStorage <prefix>:open        whether this tab's panel is open
// The outbox holds the shopper's own words unmasked (the assistant needs them), so it lives in
// sessionStorage: it survives a reload and the server restarting, and is gone with the tab.
// Every change re-reads storage first, so that two tabs of the store never overwrite each other.

const MAX_ENTRIES = 200;
const SENDING_EXPIRES_MS = 90_000; // as long as the wait for Rasa's acknowledgement

// When the browser refuses storage (blocked cookies, some private modes), keep it in memory:
// the chat still works for the life of the page.
const local = usable(() => window.localStorage);
const session = usable(() => window.sessionStorage);

function usable(get) {
  try {
    const storage = get();
    storage.setItem("giftbot:probe", "1");
    storage.removeItem("giftbot:probe");
    return storage;
  } catch {
    const memory = new Map();
    return {
      getItem: (key) => (memory.has(key) ? memory.get(key) : null),
      setItem: (key, value) => memory.set(key, String(value)),
    };
  }
}

export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Store {
  constructor(prefix) {
    this.keys = {
      session: `${prefix}:session`,
      transcript: `${prefix}:transcript`,
      outbox: `${prefix}:outbox`,
      sending: `${prefix}:sending`,
      open: `${prefix}:open`,
    };
  }

  // ------------------------------------------------------------------ session

  session() {
    const stored = read(local, this.keys.session, null);
    if (stored && typeof stored.secret === "string") return stored;
    // Nothing stored, or a session of the widget before secrets: its conversation cannot be
    // joined any more, so start afresh (the transcript would belong to another conversation).
    return this.startSession(stored && typeof stored.customer === "string" ? stored.customer : null);
  }

  updateSession(changes) {
    const session = { ...this.session(), ...changes };
    write(local, this.keys.session, session);
    return session;
  }

  /** A new conversation: new secret (its id comes from the server), empty transcript and outbox. */
  startSession(customer) {
    const fresh = { secret: newId(), id: null, customer, started: false, unread: 0 };
    write(local, this.keys.session, fresh);
    write(local, this.keys.transcript, []);
    write(session, this.keys.outbox, []); // sessionStorage (the module's `session`)
    return fresh;
  }

  // --------------------------------------------------------------- transcript

  transcript() {
    const entries = read(local, this.keys.transcript, []);
    return Array.isArray(entries) ? entries : [];
  }

  append(entry) {
    const entries = this.transcript();
    entries.push(entry);
    write(local, this.keys.transcript, entries.slice(-MAX_ENTRIES));
  }

  update(id, changes) {
    const entries = this.transcript().map((e) => (e.id === id ? { ...e, ...changes } : e));
    write(local, this.keys.transcript, entries);
  }

  /** Quick replies are for the latest question only: hide them once the shopper answers. */
  retireQuickReplies() {
    const entries = this.transcript();
    if (entries.some((e) => e.quickReplies)) {
      write(
        local,
        this.keys.transcript,
        entries.map(({ quickReplies, ...e }) => e),
      );
    }
  }

  // ------------------------------------------------------------------- outbox

  outbox() {
    const items = read(session, this.keys.outbox, []);
    return Array.isArray(items) ? items : [];
  }

  enqueue(item) {
    write(session, this.keys.outbox, [...this.outbox(), item]);
  }

  dequeue(id) {
    write(session, this.keys.outbox, this.outbox().filter((item) => item.id !== id));
  }

  // ------------------------------------------------------------------ sending

  markSending(tab) {
    write(local, this.keys.sending, { tab, at: Date.now() });
  }

  clearSending(tab) {
    if (read(local, this.keys.sending, null)?.tab === tab) write(local, this.keys.sending, null);
  }

  /** Another tab has a message on its way (a stale mark, from a crashed tab, expires). */
  otherTabSending(tab) {
    const mark = read(local, this.keys.sending, null);
    return Boolean(mark && mark.tab !== tab && Date.now() - mark.at < SENDING_EXPIRES_MS);
  }

  // --------------------------------------------------------------------- open

  wasOpen() {
    return read(session, this.keys.open, false) === true;
  }

  setOpen(open) {
    write(session, this.keys.open, open);
  }
}

function read(storage, key, fallback) {
  try {
    const raw = storage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback; // storage disabled or a corrupt value: start afresh rather than break
  }
}

function write(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full: what is on screen stays right; it just won't survive a reload.
  }
}
