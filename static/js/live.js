// Live updates over WebSocket (protocol: support/consumers.py).
//
// HelpdeskLive.Socket keeps one connection open: it reconnects with exponential backoff
// and jitter (1 s, 2 s, 4 s … at most 30 s), calls onOpen again after each reconnect so
// the page can ask for what it missed (by message id), and gives up only when the server
// says the user may not connect (close codes 4401 / 4403). Every page also works without
// it: forms post and the page reloads; the indicator then says live updates are off.
//
// On a ticket page ([data-live-ticket]: the portal's and the agent workspace's), new
// messages, status and details appear as they happen.
(function () {
  "use strict";

  var REFUSED = { 4401: true, 4403: true };

  function Socket(path, options) {
    this.path = path;
    this.options = options || {};
    this.attempts = 0;
    this.ws = null;
    this.stopped = false;
    this.timer = null;
  }

  Socket.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + this.path;
  };

  Socket.prototype.state = function (name, detail) {
    if (this.options.onState) this.options.onState(name, detail || "");
  };

  Socket.prototype.connect = function () {
    var self = this;
    if (!("WebSocket" in window)) {
      self.state("offline", "This browser cannot receive live updates.");
      return;
    }
    var reconnecting = self.attempts > 0;
    self.state(reconnecting ? "reconnecting" : "connecting");
    var ws;
    try {
      ws = new WebSocket(self.url());
    } catch (error) {
      self.retry();
      return;
    }
    self.ws = ws;
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      if (frame.type === "hello") {
        self.attempts = 0;
        self.state("live");
        if (self.options.onOpen) self.options.onOpen(self, reconnecting);
        return;
      }
      if (frame.type === "error" && self.options.onError) self.options.onError(frame);
      if (self.options.onFrame) self.options.onFrame(frame);
    };
    ws.onclose = function (event) {
      self.ws = null;
      if (self.stopped) return;
      if (REFUSED[event.code]) {
        self.stopped = true;
        self.state("refused", event.reason);
        return;
      }
      self.retry(event.code === 4429 ? 30000 : null);
    };
  };

  Socket.prototype.retry = function (delay) {
    var self = this;
    self.attempts += 1;
    var wait = delay || Math.min(30000, 1000 * Math.pow(2, self.attempts - 1));
    wait = Math.round(wait * (0.5 + Math.random() / 2));
    self.state(self.attempts > 3 ? "offline" : "reconnecting", wait);
    clearTimeout(self.timer);
    self.timer = setTimeout(function () { self.connect(); }, wait);
  };

  Socket.prototype.send = function (frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  };

  Socket.prototype.close = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  };

  // ---- ticket pages -------------------------------------------------------------------

  function lastId(container, attribute) {
    var max = 0;
    container.querySelectorAll("[" + attribute + "]").forEach(function (el) {
      var id = parseInt(el.getAttribute(attribute), 10);
      if (id > max) max = id;
    });
    return max;
  }

  function showIndicator(el, name) {
    if (!el) return;
    var texts = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: "Reconnecting…",
      offline: "Live updates are off: reload the page to see new messages.",
      refused: "Live updates are off for this page."
    };
    el.hidden = false;
    el.textContent = texts[name] || name;
    el.setAttribute("data-state", name);
  }

  function TicketPage(root) {
    this.root = root;
    this.reference = root.getAttribute("data-live-ticket");
    this.conversation = root.querySelector("[data-live-conversation]");
    this.indicator = root.querySelector("[data-live-indicator]");
    this.notice = root.querySelector("[data-live-notice]");
    this.typing = root.querySelector("[data-live-typing]");
    this.events = root.querySelector("[data-live-events]");
    this.wasOpen = root.getAttribute("data-live-open") === "true";
  }

  TicketPage.prototype.start = function () {
    var self = this;
    self.socket = new Socket("/ws/tickets/", {
      onState: function (name) { showIndicator(self.indicator, name); },
      onOpen: function (socket) {
        socket.send({
          action: "subscribe",
          ticket: self.reference,
          after: lastId(self.conversation, "data-message-id")
        });
      },
      onFrame: function (frame) { self.handle(frame); }
    });
    self.socket.connect();
  };

  TicketPage.prototype.handle = function (frame) {
    var self = this;
    if (frame.ticket !== undefined && frame.ticket !== self.reference) return;
    if (frame.type === "subscribed") {
      frame.messages.forEach(function (message) { self.addMessage(message); });
      self.applyState(frame.state);
    } else if (frame.type === "message") {
      self.addMessage(frame);
      if (frame.state) self.applyState(frame.state);
    } else if (frame.type === "ticket") {
      self.applyState(frame);
    }
  };

  TicketPage.prototype.addMessage = function (message) {
    if (document.getElementById("message-" + message.id)) return;
    var holder = document.createElement("div");
    holder.innerHTML = message.html; // rendered and escaped by the server's own template
    var node = holder.firstElementChild;
    if (!node) return;
    node.classList.add("hd-live-new");
    this.conversation.appendChild(node);
  };

  TicketPage.prototype.applyState = function (state) {
    var root = this.root;
    root.querySelectorAll("[data-live-status]").forEach(function (badge) {
      badge.textContent = state.status_label;
      badge.className = state.badge_class;
    });
    root.querySelectorAll("[data-live-priority]").forEach(function (badge) {
      if (state.priority_label) badge.textContent = state.priority_label;
      if (state.priority_class) badge.className = state.priority_class;
    });
    Object.keys(state.fields || {}).forEach(function (name) {
      root.querySelectorAll('[data-live-field="' + name + '"]').forEach(function (el) {
        el.textContent = state.fields[name] || "—";
      });
    });
    if (this.typing) {
      this.typing.hidden = !(state.status === "analyzing" || state.status === "ai_responding");
    }
    if (this.events && state.events) this.addEvents(state.events);
    if (this.notice && state.is_open !== this.wasOpen) {
      this.notice.hidden = false; // the actions on the page no longer fit: offer a reload
    }
  };

  TicketPage.prototype.addEvents = function (events) {
    var body = this.events;
    var last = lastId(body, "data-event-id");
    events.forEach(function (event) {
      if (event.id <= last) return;
      var row = document.createElement("tr");
      row.setAttribute("data-event-id", event.id);
      [event.when, event.description, event.who].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  };

  window.HelpdeskLive = { Socket: Socket, TicketPage: TicketPage, showIndicator: showIndicator };

  function init() {
    document.querySelectorAll("[data-live-ticket]").forEach(function (root) {
      new TicketPage(root).start();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
