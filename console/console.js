// The agent console: the queue and the open conversation, refreshed from the console API
// every 2 seconds. Everything is built as DOM text: nothing from a conversation is parsed
// as HTML. Every request that changes something carries the session's CSRF token.

const POLL_MS = 2000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
// While this page is open the agent is present; the server marks them away once the beats stop.
const HEARTBEAT_MS = Number(document.querySelector('meta[name="heartbeat-ms"]').content) || 10000;
const TITLE = document.title;
const $ = (id) => document.getElementById(id);

const state = {
  view: "chats",
  selected: null,
  detail: null,
  caseSelected: null,
  seenWaiting: null,
  shown: { queue: "", transcript: "", notes: "", cases: "", case: "" },
};

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
    item.last_message ? el("span", { class: "q-said" }, `“${item.last_message}”`) : null,
    el("span", { class: "q-journey" }, `Journey: ${item.journey || "none"} · card ${item.serial || "none given"}`),
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
  $("tab-waiting").textContent = String(queue.waiting.length);
  $("tab-cases").textContent = String(queue.open_cases);
  announceArrivals(queue.waiting);
  renderList($("waiting"), $("waiting-empty"), queue.waiting);
  renderList($("mine"), $("mine-empty"), queue.mine);
}

// A new shopper in the queue: the tab's title counts the waiting, and screen readers hear it.
function announceArrivals(waiting) {
  document.title = waiting.length ? `(${waiting.length}) ${TITLE}` : TITLE;
  const ids = new Set(waiting.map((item) => item.id));
  if (state.seenWaiting !== null) {
    const arrived = waiting.filter((item) => !state.seenWaiting.has(item.id));
    if (arrived.length === 1) {
      const item = arrived[0];
      $("announcer").textContent = `New chat waiting: ${sentence(item.reason)}${item.last_message ? `: “${item.last_message}”` : ""}`;
    } else if (arrived.length > 1) {
      $("announcer").textContent = `${arrived.length} new chats waiting.`;
    }
  }
  state.seenWaiting = ids;
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
    ["Journey", h.journey || "none"],
    ["Shopper said", h.last_message || "nothing yet"],
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
  for (const field of $("follow-up-form").elements) field.disabled = !yours;
  const openCase = detail.case && detail.case.status === "open";
  for (const field of $("close-form").elements) field.disabled = !(yours && openCase);
  $("close-hint").textContent = detail.case
    ? `Case ${detail.case.reference} is ${detail.case.status}.`
    : "This conversation has no case.";
}

async function select(id) {
  state.selected = id;
  state.shown = { ...state.shown, queue: "", transcript: "", notes: "" };
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
    if (state.view === "cases") {
      renderCases(await api("cases"));
      if (state.caseSelected !== null) renderCase(await api(`cases/${state.caseSelected}`));
    } else if (state.selected !== null) renderConversation(await api(`conversations/${state.selected}`));
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

$("follow-up-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const followUp = $("follow-up").value.trim();
  if (!followUp) return;
  const done = await act(`${current()}/hand-back`, { follow_up: followUp }, (answer) =>
    showNotice(`Handed back; case ${answer.case_reference} will be answered by email.`),
  );
  if (done) $("follow-up-form").reset();
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

// ------------------------------------------------------------------------------- cases

function age(seconds) {
  return waited(seconds);
}

function renderCases(answer) {
  const key = JSON.stringify(answer) + state.caseSelected;
  if (key === state.shown.cases) return;
  state.shown.cases = key;
  $("cases-count").textContent = String(answer.cases.length);
  $("cases").replaceChildren(
    ...answer.cases.map((item) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "q-item",
            "aria-current": item.reference === state.caseSelected ? "true" : null,
            onclick: () => selectCase(item.reference),
          },
          el("span", { class: "q-title" }, `Case ${item.reference}`),
          el("span", { class: "q-reason" }, sentence(item.reason)),
          item.last_message ? el("span", { class: "q-said" }, `“${item.last_message}”`) : null,
          el(
            "span",
            { class: "q-meta" },
            `open ${age(item.age_seconds)} · ${item.contact_email ? `email ${item.contact_email}` : "no email address yet"}`,
          ),
        ),
      ),
    ),
  );
  $("cases-empty").hidden = answer.cases.length > 0;
}

function renderCase(answer) {
  const c = answer.case;
  $("case").hidden = false;
  $("case-tools").hidden = false;
  $("case-heading").textContent = `Case ${c.reference}`;
  const key = JSON.stringify(answer);
  if (key === state.shown.case) return;
  state.shown.case = key;
  const rows = [
    ["Status", c.status === "closed" ? `closed by ${c.closed_by}: ${c.resolution}` : "open"],
    ["Reason", sentence(c.reason)],
    ["Kind", c.kind],
    ["Open for", age(c.age_seconds)],
    ["Email to", c.contact_email || "none given yet"],
    ["Shopper", c.signed_in ? "signed in" : "signed out"],
    ["Chat", c.conversation || "none"],
  ];
  for (const [name, value] of Object.entries(c.details)) {
    if (value !== null && value !== "") rows.push([sentence(name.replaceAll("_", " ")), String(typeof value === "object" ? JSON.stringify(value) : value)]);
  }
  $("case-context").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  const lines = answer.transcript;
  $("case-transcript").replaceChildren(
    ...lines.map((line) => {
      if (line.from === "notice") return el("li", { class: "t-notice" }, line.text);
      const author = line.from === "agent" ? `${line.agent} (agent)` : line.from === "bot" ? "Assistant" : "Shopper";
      return el("li", { class: `t-${line.from}` }, el("span", { class: "t-author" }, `${author} · ${clock(line.at)}`), el("span", { class: "t-text" }, line.text));
    }),
  );
  if (answer.transcript_error) showAlert(answer.transcript_error);
  $("case-history").replaceChildren(
    ...c.history.map((entry) =>
      el(
        "li",
        { class: `h-${entry.kind}` },
        el("span", { class: "t-author" }, `${entry.kind === "email" ? "Email" : "Note"} · ${entry.author} · ${clock(entry.at)}`),
        el("span", {}, entry.text),
      ),
    ),
  );
  $("case-history-empty").hidden = c.history.length > 0;
  const open = c.status === "open";
  for (const id of ["case-reply-form", "case-note-form", "case-close-form"]) {
    for (const field of $(id).elements) field.disabled = !open || (id === "case-reply-form" && !c.contact_email);
  }
  $("case-reply-hint").textContent = c.contact_email
    ? `Goes to ${c.contact_email} with the case reference, through the outbox.`
    : "The shopper has not given an email address yet.";
}

async function selectCase(reference) {
  state.caseSelected = reference;
  state.shown.cases = "";
  state.shown.case = "";
  showAlert("");
  $("case-notice").textContent = "";
  await refresh();
}

function showView(view) {
  state.view = view;
  $("chats-view").hidden = view !== "chats";
  $("cases-view").hidden = view !== "cases";
  $("show-chats").setAttribute("aria-pressed", String(view === "chats"));
  $("show-cases").setAttribute("aria-pressed", String(view === "cases"));
  state.shown.cases = "";
  state.shown.case = "";
  refresh();
}

$("show-chats").addEventListener("click", () => showView("chats"));
$("show-cases").addEventListener("click", () => showView("cases"));

const currentCase = () => `cases/${state.caseSelected}`;

function caseForm(form, field, path, bodyName, notice) {
  $(form).addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $(field).value.trim();
    if (!text) return;
    const done = await act(`${currentCase()}/${path}`, { [bodyName]: text }, () => {
      $("case-notice").textContent = notice;
    });
    if (done) $(form).reset();
  });
}

caseForm("case-reply-form", "case-reply", "reply", "text", "Email queued in the outbox.");
caseForm("case-note-form", "case-note", "notes", "text", "Note added.");
caseForm("case-close-form", "case-resolution", "close", "resolution", "Case closed.");

// ---------------------------------------------------------------------------- presence

async function beat() {
  try {
    await api("heartbeat", {});
  } catch (error) {
    showAlert(error.message);
  }
}

refresh();
setInterval(refresh, POLL_MS);
setInterval(beat, HEARTBEAT_MS);
