// Live updates over WebSocket (protocol: support/consumers.py).
//
// HelpdeskLive.Socket keeps one connection open: it reconnects with exponential backoff
// and jitter (1 s, 2 s, 4 s … at most 30 s), calls onOpen again after each reconnect so
// the page can ask for what it missed (by message id), and gives up only when the server
// says the user may not connect (close codes 4401 / 4403). Every page also works without
// it: forms post and the page reloads; the indicator then says live updates are off.
//
// On a ticket page ([data-live-ticket]: the portal's and the agent workspace's), new
// messages, status and details appear as they happen. On the agent's page the socket also
// carries presence: the page says what this agent is doing ("viewing", "typing" while the
// reply box is being written in, "idle" while the tab is hidden), repeats it as a
// heartbeat, and lists the other agents here ([data-presence]). And the reply form
// ([data-reply-form]) is guarded: a public message from someone else that arrives after
// the page was loaded (its id above the form's seen_message_id) shows a warning above the
// reply box, and Send asks for confirmation first (then confirm_send=1 tells the server
// the agent chose to send anyway; without it the server refuses and keeps the draft).
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
        self.user = frame.user || null;
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
    this.presence = root.querySelector("[data-presence]");
    this.replyForm = root.querySelector("[data-reply-form]");
    this.warning = root.querySelector("[data-collision-warning]");
    this.subscribed = false;
    this.myState = null; // the presence state last sent on this subscription
    this.lastInput = 0;
    this.arrived = []; // messages from others since the page was loaded
    this.seen = 0;
    if (this.replyForm && this.replyForm.elements.seen_message_id) {
      this.seen = parseInt(this.replyForm.elements.seen_message_id.value, 10) || 0;
    }
  }

  TicketPage.prototype.start = function () {
    var self = this;
    self.socket = new Socket("/ws/tickets/", {
      onState: function (name) { showIndicator(self.indicator, name); },
      onOpen: function (socket) {
        self.subscribed = false;
        self.myState = null;
        socket.send({
          action: "subscribe",
          ticket: self.reference,
          after: lastId(self.conversation, "data-message-id")
        });
      },
      onFrame: function (frame) { self.handle(frame); }
    });
    self.socket.connect();
    if (self.presence) self.startPresence();
    if (self.replyForm) self.guardReply();
  };

  TicketPage.prototype.handle = function (frame) {
    var self = this;
    if (frame.ticket !== undefined && frame.ticket !== self.reference) return;
    if (frame.type === "subscribed") {
      frame.messages.forEach(function (message) { self.addMessage(message); });
      self.applyState(frame.state);
      self.subscribed = true;
      self.myState = "viewing"; // what the server assumes on subscribe
      if (frame.agents) self.showAgents(frame.agents);
      if (self.presence) self.sendPresence(false);
    } else if (frame.type === "presence") {
      self.showAgents(frame.agents || []);
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
    this.noteArrival(message);
  };

  // ---- presence (agent's page) --------------------------------------------------------

  TicketPage.prototype.startPresence = function () {
    var self = this;
    var beat = parseInt(self.presence.getAttribute("data-presence-heartbeat"), 10) || 15;
    var box = self.replyForm && self.replyForm.elements.body;
    if (box) {
      box.addEventListener("input", function () {
        self.lastInput = Date.now();
        self.sendPresence(false);
        clearTimeout(self.typingTimer);
        self.typingTimer = setTimeout(function () { self.sendPresence(false); }, 5000);
      });
    }
    document.addEventListener("visibilitychange", function () { self.sendPresence(false); });
    setInterval(function () { self.sendPresence(true); }, beat * 1000);
  };

  TicketPage.prototype.currentState = function () {
    if (document.visibilityState === "hidden") return "idle";
    return Date.now() - this.lastInput < 5000 ? "typing" : "viewing";
  };

  // Tell the server this agent's state when it changed, or always (the heartbeat).
  TicketPage.prototype.sendPresence = function (always) {
    if (!this.subscribed || !this.socket) return;
    var state = this.currentState();
    if (!always && state === this.myState) return;
    if (this.socket.send({ action: "presence", ticket: this.reference, state: state })) {
      this.myState = state;
    }
  };

  TicketPage.prototype.showAgents = function (agents) {
    if (!this.presence) return;
    var me = this.socket && this.socket.user ? this.socket.user.id : null;
    var list = this.presence.querySelector("[data-presence-list]");
    var labels = { viewing: "viewing", typing: "typing…", idle: "idle" };
    var others = agents.filter(function (agent) { return agent.id !== me; });
    list.textContent = "";
    others.forEach(function (agent, index) {
      var item = document.createElement("span");
      item.setAttribute("data-presence-agent", agent.id);
      item.setAttribute("data-state", agent.state);
      item.textContent = agent.name + " (" + (labels[agent.state] || agent.state) + ")";
      if (index) list.appendChild(document.createTextNode(", "));
      list.appendChild(item);
    });
    this.presence.hidden = others.length === 0;
  };

  // ---- collision: a message that arrived while the agent was writing -----------------

  TicketPage.prototype.noteArrival = function (message) {
    if (!this.replyForm || message.is_internal || !(message.id > this.seen)) return;
    var me = this.socket && this.socket.user ? this.socket.user.id : null;
    if (message.author_id != null && message.author_id === me) return;
    this.arrived.push(message);
    var who = message.author || message.sender || "someone";
    this.lastFrom = who;
    if (!this.warning) return;
    this.warning.textContent = this.arrived.length === 1
      ? "New message from " + who + " since you opened this ticket: read it before you send."
      : this.arrived.length + " new messages since you opened this ticket, the latest from " +
        who + ": read them before you send.";
    this.warning.hidden = false;
  };

  TicketPage.prototype.guardReply = function () {
    var self = this;
    var form = self.replyForm;
    form.addEventListener("submit", function (event) {
      var internal = form.elements.is_internal && form.elements.is_internal.checked;
      if (!self.arrived.length || internal || form.elements.confirm_send.value === "1") return;
      var sendAnyway = window.confirm(
        "A new message from " + self.lastFrom + " arrived since you opened this ticket. " +
        "Send your reply anyway?"
      );
      if (sendAnyway) {
        form.elements.confirm_send.value = "1";
      } else {
        event.preventDefault(); // the draft stays in the reply box
      }
    });
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
