// The help center's live chat (templates/knowledge/_chat.html) over /ws/chat/.
// A chat is a ticket with channel "chat": the assistant answers (its answer appears as it
// is written), "Talk to a human" hands it to the team, and the conversation is resumed
// on every page and visit until it is closed. Without JavaScript the widget is a link to
// the ticket form; without a connection it says so and points to the ticket pages.
(function () {
  "use strict";

  var OPEN_KEY = "hd-chat-open";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function Chat(root) {
    this.root = root;
    this.toggle = root.querySelector("[data-chat-toggle]");
    this.panel = root.querySelector(".hd-chat-panel");
    this.log = root.querySelector("[data-chat-log]");
    this.form = root.querySelector("[data-chat-form]");
    this.typing = root.querySelector("[data-chat-typing]");
    this.errorBox = root.querySelector("[data-chat-error]");
    this.offline = root.querySelector("[data-chat-offline]");
    this.indicator = root.querySelector("[data-live-indicator]");
    this.humanButton = root.querySelector("[data-chat-human]");
    this.newButton = root.querySelector("[data-chat-new]");
    this.pageLink = root.querySelector("[data-chat-page]");
    this.signedIn = root.getAttribute("data-signed-in") === "true";
    this.ticket = null;
    this.state = null;
    this.socket = null;
    this.drafts = {};
  }

  Chat.prototype.lastId = function () {
    var max = 0;
    this.log.querySelectorAll("[data-chat-message]").forEach(function (node) {
      max = Math.max(max, parseInt(node.getAttribute("data-chat-message"), 10));
    });
    return max;
  };

  Chat.prototype.open = function () {
    this.panel.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    window.sessionStorage.setItem(OPEN_KEY, "1");
    if (this.signedIn && !this.socket) this.connect();
    var input = this.root.querySelector("textarea");
    if (input) input.focus();
  };

  Chat.prototype.close = function () {
    this.panel.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    window.sessionStorage.removeItem(OPEN_KEY);
  };

  Chat.prototype.connect = function () {
    var self = this;
    self.socket = new window.HelpdeskLive.Socket("/ws/chat/", {
      onState: function (name) {
        var down = name === "offline" || name === "refused";
        window.HelpdeskLive.showIndicator(self.indicator, name);
        if (down) self.indicator.textContent = "Offline";
        self.offline.hidden = !down;
        self.form.hidden = down;
      },
      onOpen: function (socket) {
        socket.send({ action: "resume", ticket: self.ticket, after: self.lastId() });
      },
      onFrame: function (frame) { self.handle(frame); }
    });
    self.socket.connect();
  };

  Chat.prototype.handle = function (frame) {
    var self = this;
    if (frame.type === "chat") {
      if (frame.ticket !== self.ticket) self.clear();
      self.ticket = frame.ticket;
      frame.messages.forEach(function (message) { self.addMessage(message); });
      self.applyState(frame.state);
      return;
    }
    if (frame.type === "error") {
      self.showError(frame.message);
      return;
    }
    if (frame.type === "handed_over") {
      self.note("A person from our team will join this chat. You can leave: we answer here, on the ticket page and by email.");
      return;
    }
    if (!self.ticket || frame.ticket !== self.ticket) return;
    if (frame.type === "message") {
      self.addMessage(frame);
      if (frame.state) self.applyState(frame.state);
    } else if (frame.type === "ticket") self.applyState(frame);
    else if (frame.type === "stream.start") self.draft(frame.stream, "");
    else if (frame.type === "stream.delta") self.draft(frame.stream, frame.text);
    else if (frame.type === "stream.end") self.dropDraft(frame.stream);
  };

  Chat.prototype.clear = function () {
    this.log.querySelectorAll("[data-chat-message], [data-chat-draft], .hd-chat-note").forEach(function (node) { node.remove(); });
    this.drafts = {};
  };

  Chat.prototype.bubble = function (kind, sender, text) {
    var node = el("div", "hd-chat-msg hd-chat-" + kind);
    node.appendChild(el("div", "hd-chat-sender", sender));
    node.appendChild(el("div", "hd-chat-body", text));
    return node;
  };

  Chat.prototype.addMessage = function (message) {
    if (this.log.querySelector('[data-chat-message="' + message.id + '"]')) return;
    var node = this.bubble(message.sender_kind, message.sender_kind === "customer" ? "You" : message.sender, message.body);
    node.setAttribute("data-chat-message", message.id);
    var draft = this.log.querySelector("[data-chat-draft]");
    if (message.sender_kind === "ai" && draft) draft.remove(); // the real answer replaces it
    this.log.appendChild(node);
    this.log.scrollTop = this.log.scrollHeight;
  };

  Chat.prototype.draft = function (id, text) {
    var node = this.drafts[id];
    if (!node) {
      node = this.bubble("ai hd-chat-draft", "AI assistant (writing…)", text);
      node.setAttribute("data-chat-draft", id);
      this.drafts[id] = node;
      this.log.appendChild(node);
    }
    node.querySelector(".hd-chat-body").textContent = text;
    if (this.typing) this.typing.hidden = true;
    this.log.scrollTop = this.log.scrollHeight;
  };

  Chat.prototype.dropDraft = function (id) {
    if (this.drafts[id]) this.drafts[id].remove();
    delete this.drafts[id];
  };

  Chat.prototype.note = function (text) {
    this.log.appendChild(el("p", "hd-chat-note small text-body-secondary", text));
    this.log.scrollTop = this.log.scrollHeight;
  };

  Chat.prototype.applyState = function (state) {
    this.state = state;
    var intro = this.log.querySelector("[data-chat-intro]");
    if (intro) intro.hidden = !!state;
    this.newButton.hidden = !state;
    this.pageLink.hidden = !state;
    if (!state) {
      this.humanButton.hidden = true;
      if (this.typing) this.typing.hidden = true;
      return;
    }
    this.pageLink.href = "/tickets/" + encodeURIComponent(state.ticket) + "/";
    // An AI resolution may not have helped: a person stays one click away until a person
    // has the chat or it is closed.
    this.humanButton.hidden = state.status === "escalated" || state.status === "closed";
    var thinking = state.status === "new" || state.status === "analyzing" || state.status === "ai_responding";
    if (this.typing) this.typing.hidden = !thinking || Object.keys(this.drafts).length > 0;
  };

  Chat.prototype.showError = function (text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = false;
    var box = this.errorBox;
    setTimeout(function () { box.hidden = true; }, 6000);
  };

  Chat.prototype.submit = function (event) {
    event.preventDefault();
    var input = this.form.querySelector("textarea");
    var text = input.value.trim();
    if (!text) return;
    var frame = this.ticket ? { action: "send", body: text } : { action: "start", message: text };
    if (!this.socket || !this.socket.send(frame)) {
      this.showError("Not connected. Try again in a moment, or open a ticket.");
      return;
    }
    input.value = "";
  };

  Chat.prototype.start = function () {
    var self = this;
    self.toggle.hidden = false;
    self.toggle.addEventListener("click", function () {
      if (self.panel.hidden) self.open(); else self.close();
    });
    self.root.querySelector("[data-chat-close]").addEventListener("click", function () { self.close(); });
    if (self.form) {
      self.form.addEventListener("submit", function (event) { self.submit(event); });
      self.form.querySelector("textarea").addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey) { self.submit(event); }
      });
      self.humanButton.addEventListener("click", function () {
        if (!self.socket || !self.socket.send({ action: "human" })) self.showError("Not connected.");
      });
      self.newButton.addEventListener("click", function () {
        self.ticket = null;
        self.clear();
        self.applyState(null);
        self.note("Your next message starts a new chat.");
      });
    }
    if (window.sessionStorage.getItem(OPEN_KEY)) self.open();
  };

  function init() {
    var root = document.querySelector("[data-chat]");
    if (root && window.HelpdeskLive) new Chat(root).start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
