// The agent console: the queue and the open conversation, refreshed from the console API
// every 2 seconds. Everything is built as DOM text: nothing from a conversation is parsed
// as HTML. Every request that changes something carries the session's CSRF token.

const POLL_MS = 2000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

const state = { selected: null, detail: null, shown: { queue: "", transcript: "", notes: "" } };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// ----------------------------------------------------------------------------- the API

class ApiError extends Error {}

async function api(path, body) {
  const options = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRF-Token"] = csrf;
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`/agent/api/${path}`, options);
  if (response.status === 401 || response.status === 403) {
    window.location.replace("/agent"); // signed out or expired: back to the sign-in form
    throw new ApiError("Your session ended.");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(answer.error || `The console answered ${response.status}.`);
  return answer;
}

function showAlert(message) {
  const alert = $("alert");
  alert.textContent = message || "";
  alert.hidden = !message;
}

async function act(path, body, done) {
  try {
    const answer = await api(path, body);
    showAlert("");
    await refresh();
    if (done) done(answer);
    return answer;
  } catch (error) {
    showAlert(error.message);
    return null;
  }
}

// -------------------------------------------------------------------------- formatting

function waited(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function clock(at) {
  const date = typeof at === "number" ? new Date(at * 1000) : new Date(at);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function summary(item) {
  return [
    el("span", { class: "q-title" }, `Chat ${item.conversation}`),
    el("span", { class: "q-reason" }, sentence(item.reason)),
    el(
      "span",
      { class: "q-meta" },
      `waiting ${waited(item.waited_seconds)} · ${item.channel} · ` +
        `${item.signed_in ? "signed in" : "signed out"} · ${item.verification}`,
    ),
  ];
}

// --------------------------------------------------------------------------- the queue

function renderList(list, empty, items) {
  list.replaceChildren(
    ...items.map((item) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "q-item",
            "aria-current": item.id === state.selected ? "true" : null,
            "data-id": item.id,
            onclick: () => select(item.id),
          },
          summary(item),
        ),
      ),
    ),
  );
  empty.hidden = items.length > 0;
}

function renderQueue(queue) {
  const key = JSON.stringify(queue) + state.selected;
  if (key === state.shown.queue) return;
  state.shown.queue = key;
  $("available").checked = queue.agent.available;
  $("waiting-count").textContent = String(queue.waiting.length);
  renderList($("waiting"), $("waiting-empty"), queue.waiting);
  renderList($("mine"), $("mine-empty"), queue.mine);
}

// --------------------------------------------------------------------- a conversation

function renderContext(detail) {
  const h = detail.handoff;
  const rows = [
    ["Status", h.status === "taken" ? `taken by ${h.taken_by}` : h.status.replace("_", " ")],
    ["Reason", sentence(h.reason)],
    ["Waited", waited(h.waited_seconds)],
    ["Channel", h.channel],
    ["Shopper", h.signed_in ? "signed in" : "signed out"],
    ["Verification", h.verification],
    ["Card", h.serial || "none given"],
    ["Last topic", h.last_intent || "none"],
    ["Case", detail.case ? `${detail.case.reference} (${detail.case.kind}, ${detail.case.status})` : "none"],
  ];
  if (detail.case) {
    for (const [name, value] of Object.entries(detail.case.details)) {
      if (value !== null && value !== "") rows.push([`Case: ${name.replaceAll("_", " ")}`, String(typeof value === "object" ? JSON.stringify(value) : value)]);
    }
  }
  $("context").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function renderTranscript(lines) {
  const key = JSON.stringify(lines);
  if (key === state.shown.transcript) return;
  state.shown.transcript = key;
  const log = $("transcript");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.replaceChildren(
    ...lines.map((line) => {
      if (line.from === "notice") return el("li", { class: "t-notice" }, line.text);
      const author = line.from === "agent" ? `${line.agent} (agent)` : line.from === "bot" ? "Assistant" : "Shopper";
      return el(
        "li",
        { class: `t-${line.from}` },
        el("span", { class: "t-author" }, `${author} · ${clock(line.at)}`),
        el("span", { class: "t-text" }, line.text),
      );
    }),
  );
  if (atBottom || lines.length) log.scrollTop = log.scrollHeight;
}

function renderNotes(notes) {
  const key = JSON.stringify(notes);
  if (key === state.shown.notes) return;
  state.shown.notes = key;
  $("notes").replaceChildren(
    ...notes.map((note) =>
      el("li", {}, el("span", { class: "t-author" }, `${note.author} · ${clock(note.at)}`), el("span", {}, note.text)),
    ),
  );
}

function renderConversation(detail) {
  state.detail = detail;
  const h = detail.handoff;
  $("conversation").hidden = false;
  $("tools").hidden = false;
  $("conversation-heading").textContent = `Chat ${h.conversation}`;
  renderContext(detail);
  renderTranscript(detail.transcript);
  if (detail.transcript_error) showAlert(detail.transcript_error);
  renderNotes(detail.notes);

  const yours = detail.yours;
  $("take").hidden = h.status !== "waiting";
  $("hand-back").hidden = !yours;
  $("reply").disabled = !yours;
  $("send").disabled = !yours;
  let status = "";
  if (yours) status = "You have this conversation: the assistant is silent until you hand it back.";
  else if (h.status === "taken") status = `${h.taken_by} has this conversation.`;
  else if (h.status === "handed_back") status = "This conversation went back to the assistant.";
  else status = "Waiting for an agent. Take it to reply.";
  if ($("conversation-status").textContent !== status) $("conversation-status").textContent = status;

  $("replace").disabled = !(yours && detail.can_replace);
  $("replace-hint").textContent = detail.can_replace
    ? `The verified card ${detail.replace_card}: a new code goes to the order's email address, never into the chat.`
    : "Only for a verified damaged card named in this conversation.";
  for (const field of $("adjust-form").elements) field.disabled = !(yours && detail.can_adjust);
  $("adjust-hint").textContent = detail.can_adjust
    ? "A credit (5.00) or a debit (-5.00) on the shopper's account; a reason is required."
    : "Only for a signed-in shopper's account.";
  const openCase = detail.case && detail.case.status === "open";
  for (const field of $("close-form").elements) field.disabled = !(yours && openCase);
  $("close-hint").textContent = detail.case
    ? `Case ${detail.case.reference} is ${detail.case.status}.`
    : "This conversation has no case.";
}

async function select(id) {
  state.selected = id;
  state.shown = { queue: "", transcript: "", notes: "" };
  showAlert("");
  showNotice("");
  await refresh();
}

// ------------------------------------------------------------------------- refreshing

let busy = false;

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    renderQueue(await api("queue"));
    if (state.selected !== null) renderConversation(await api(`conversations/${state.selected}`));
  } catch (error) {
    showAlert(error.message);
  } finally {
    busy = false;
  }
}

// ------------------------------------------------------------------------------ actions

const current = () => `conversations/${state.selected}`;

$("take").addEventListener("click", () => act(`${current()}/take`, {}, () => $("reply").focus()));
$("hand-back").addEventListener("click", () => act(`${current()}/hand-back`, {}));

async function sendReply() {
  const box = $("reply");
  const text = box.value.trim();
  if (!text || box.disabled) return;
  box.disabled = true;
  const sent = await act(`${current()}/reply`, { text });
  box.disabled = false;
  if (sent) box.value = "";
  box.focus();
}

$("reply-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendReply();
});
$("reply").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendReply();
  }
});

$("note-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("note").value.trim();
  if (text && (await act(`${current()}/notes`, { text }))) $("note").value = "";
});

$("replace").addEventListener("click", () =>
  act(`${current()}/replacement`, {}, (answer) => showNotice(`A replacement code was emailed to ${answer.sent_to}.`)),
);

$("adjust-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { amount: $("adjust-amount").value, reason: $("adjust-reason").value };
  const done = await act(`${current()}/adjustment`, body, (answer) =>
    showNotice(`Balance adjusted: the account now holds ${answer.balance}.`),
  );
  if (done) $("adjust-form").reset();
});

$("close-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const done = await act(`${current()}/close`, { resolution: $("resolution").value }, (answer) =>
    showNotice(`Case ${answer.case.reference} closed.`),
  );
  if (done) $("close-form").reset();
});

$("available").addEventListener("change", (event) => act("availability", { available: event.target.checked }));

$("sign-out").addEventListener("click", async () => {
  await fetch("/agent/sign-out", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf },
  }).catch(() => null);
  window.location.replace("/agent");
});

function showNotice(message) {
  $("notice").textContent = message;
}

refresh();
setInterval(refresh, POLL_MS);
