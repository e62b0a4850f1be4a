// The link to the Rasa server's socket.io channel (bot/channels/socketio.py). A conversation is
// a secret this browser keeps: `session_request` sends it, and the server answers
// `session_confirm` with the conversation's id (an HMAC of the secret, so knowing the id alone
// opens nothing); bot replies go to the room of that id. After any reconnect (a network drop,
// the server restarting) we ask for the same session again, so the conversation continues.

import { io } from "../vendor/socket.io/socket.io.esm.min.js";

// Longest wait for Rasa to acknowledge a message. Rasa acknowledges once it has finished
// handling it (every reply sent), so this covers slow actions.
const ACK_TIMEOUT_MS = 90_000;

export class Connection {
  /**
   * @param {object} options url, path, userEvent, botEvent
   * @param {object} handlers onStatus(status), onBotMessage(payload), onSession(secret, id)
   */
  constructor(options, handlers) {
    this.options = options;
    this.handlers = handlers;
    this.sessionSecret = null;
    this.sessionId = null; // the conversation's id, once the server has confirmed it
    this.ready = false;
    this.socket = null;
    this.everOnline = false;
  }

  connect(sessionSecret) {
    if (this.socket) {
      this.switchSession(sessionSecret);
      return;
    }
    this.sessionSecret = sessionSecret;
    this.socket = io(this.options.url, {
      path: this.options.path,
      // Websocket first; long-polling is the fallback. Behind a balancer each poll must reach
      // the server that opened the session, which its sticky cookie says: a page on another
      // origin than Rasa's sends that cookie only with credentials, and Rasa allows them for
      // the origins in GIFTBOT_WIDGET_ORIGINS alone (bot/settings.py).
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      withCredentials: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
    });
    this.handlers.onStatus("connecting");
    this.socket.on("connect", () => {
      this.sessionId = null;
      this.socket.emit("session_request", { session_secret: this.sessionSecret });
    });
    this.socket.on("session_confirm", (confirmed) => {
      // An answer to a request made for an older session is ignored.
      if (confirmed?.session_secret !== this.sessionSecret) return;
      if (typeof confirmed.session_id !== "string") return;
      this.sessionId = confirmed.session_id;
      this.handlers.onSession?.(this.sessionSecret, this.sessionId);
      this.ready = true;
      this.everOnline = true;
      this.handlers.onStatus("online");
    });
    this.socket.on(this.options.botEvent, (payload) => {
      if (payload && typeof payload === "object") this.handlers.onBotMessage(payload);
    });
    this.socket.on("disconnect", () => this.lost());
    this.socket.on("connect_error", () => this.lost());
  }

  lost() {
    this.ready = false;
    this.handlers.onStatus(this.everOnline ? "reconnecting" : "connecting-failed");
  }

  /** Move to another conversation (a new chat, or another shopper signed in). */
  switchSession(sessionSecret) {
    if (!this.socket || sessionSecret === this.sessionSecret) {
      this.sessionSecret = sessionSecret;
      return;
    }
    // Rasa has no "leave room": a fresh connection is the only way out of the old one.
    this.sessionSecret = sessionSecret;
    this.sessionId = null;
    this.ready = false;
    this.socket.disconnect().connect();
  }

  /**
   * Send one message; `done(delivered)` runs once Rasa has handled it (true), or when the
   * answer did not come in time (false). Not called when the connection drops first: the
   * caller sends the message again after the reconnect.
   */
  send(message, metadata, done) {
    const data = { message, session_id: this.sessionId };
    if (metadata) data[this.options.metadataKey] = metadata;
    const socket = this.socket;
    socket.timeout(ACK_TIMEOUT_MS).emit(this.options.userEvent, data, (error) => {
      if (!error) done(true);
      else if (socket.connected) done(false);
    });
  }
}
