// The agents' live feed (admin: Tickets → Live feed) over /ws/agents/feed/.
// The page is rendered complete by the server; this keeps it current: each ticket that
// changes is moved into the columns it now belongs to (new, escalated, SLA at risk) under
// the chosen filter, counts come from the server in their own frames (at most about one a
// second, after the changes that moved them), and a snapshot is asked for again every
// minute (tickets become "at risk" as time passes, without any event) and after a
// reconnect. Filter links still work as plain links.
(function () {
  "use strict";

  var MAX_CARDS = 25;
  var REFRESH_MS = 60000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function dueText(iso, breached) {
    if (!iso) return "";
    var minutes = Math.round((new Date(iso) - new Date()) / 60000);
    if (breached || minutes < 0) return "SLA breached";
    if (minutes < 60) return "due in " + minutes + " min";
    var hours = Math.floor(minutes / 60);
    return "due in " + hours + " h " + (minutes % 60) + " min";
  }

  function card(ticket) {
    var item = el("li", "hd-feed-card");
    item.setAttribute("data-feed-ticket", ticket.reference);
    var link = el("a");
    link.href = ticket.url;
    link.appendChild(el("strong", "", ticket.reference));
    link.appendChild(document.createTextNode(" " + ticket.subject));
    item.appendChild(link);
    var meta = el("div", "hd-meta");
    meta.appendChild(el("span", "hd-badge hd-status-" + ticket.status, ticket.status_label));
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(el("span", "hd-badge hd-priority-" + ticket.priority, ticket.priority_label));
    if (ticket.channel === "email") {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(el("span", "hd-badge hd-channel-email", "email"));
    }
    var who = " " + ticket.requester + (ticket.organization ? " · " + ticket.organization : "");
    who += " · " + (ticket.assignee || "unassigned");
    meta.appendChild(document.createTextNode(who));
    if (ticket.sla_due_at) {
      meta.appendChild(document.createTextNode(" · "));
      var due = el("span", ticket.sla_breached ? "hd-breached" : "", dueText(ticket.sla_due_at, ticket.sla_breached));
      due.setAttribute("data-feed-due", ticket.sla_due_at);
      meta.appendChild(due);
    }
    item.appendChild(meta);
    return item;
  }

  function Feed(root) {
    this.root = root;
    this.filter = root.getAttribute("data-feed-filter") || "all";
    this.indicator = root.querySelector("[data-live-indicator]");
    this.activity = root.querySelector("[data-feed-activity]");
  }

  Feed.prototype.column = function (bucket) {
    return this.root.querySelector('[data-feed-column="' + bucket + '"]');
  };

  Feed.prototype.setCounts = function (counts) {
    var root = this.root;
    Object.keys(counts).forEach(function (bucket) {
      var badge = root.querySelector('[data-feed-count="' + bucket + '"]');
      if (badge) badge.textContent = counts[bucket];
    });
  };

  Feed.prototype.fixEmpty = function (list) {
    var empty = list.querySelector("[data-feed-empty]");
    var cards = list.querySelectorAll("[data-feed-ticket]").length;
    if (cards && empty) empty.remove();
    if (!cards && !empty) {
      var note = el("li", "hd-meta", "Nothing here.");
      note.setAttribute("data-feed-empty", "");
      list.appendChild(note);
    }
  };

  Feed.prototype.snapshot = function (frame) {
    var self = this;
    self.filter = frame.filter;
    self.setCounts(frame.counts);
    Object.keys(frame.columns).forEach(function (bucket) {
      var list = self.column(bucket);
      if (!list) return;
      list.textContent = "";
      frame.columns[bucket].forEach(function (ticket) { list.appendChild(card(ticket)); });
      self.fixEmpty(list);
    });
    self.root.querySelectorAll("[data-feed-filter-link]").forEach(function (link) {
      var on = link.getAttribute("data-feed-filter-link") === self.filter;
      link.classList.toggle("default", on);
      if (on) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
    });
  };

  Feed.prototype.update = function (frame) {
    var self = this;
    var ticket = frame.ticket;
    self.root.querySelectorAll('[data-feed-ticket="' + ticket.reference + '"]').forEach(function (old) {
      var list = old.parentNode;
      old.remove();
      self.fixEmpty(list);
    });
    if (frame.matches) {
      ticket.buckets.forEach(function (bucket) {
        var list = self.column(bucket);
        if (!list) return;
        var fresh = card(ticket);
        fresh.classList.add("hd-live-new");
        if (bucket === "new") list.insertBefore(fresh, list.firstChild);
        else self.insertByDue(list, fresh, ticket.sla_due_at);
        var cards = list.querySelectorAll("[data-feed-ticket]");
        for (var i = MAX_CARDS; i < cards.length; i++) cards[i].remove();
        self.fixEmpty(list);
      });
      self.log(ticket, frame.change);
    }
  };

  Feed.prototype.insertByDue = function (list, fresh, due) {
    var cards = list.querySelectorAll("[data-feed-ticket]");
    for (var i = 0; i < cards.length; i++) {
      var other = cards[i].querySelector("[data-feed-due]");
      if (due && other && other.getAttribute("data-feed-due") > due) {
        list.insertBefore(fresh, cards[i]);
        return;
      }
    }
    list.appendChild(fresh);
  };

  Feed.prototype.log = function (ticket, change) {
    if (!this.activity) return;
    var words = {
      ticket_opened: "opened",
      escalated: "escalated",
      assigned: "assigned",
      resolved: "resolved",
      customer_replied: "customer replied",
      public_reply: "answered",
      sla_at_risk: "SLA at risk"
    };
    var line = el("li", "hd-meta");
    line.appendChild(el("time", "", new Date().toLocaleTimeString()));
    line.appendChild(document.createTextNode(" " + ticket.reference + " " + (words[change] || ticket.status_label.toLowerCase()) + ": " + ticket.subject));
    this.activity.insertBefore(line, this.activity.firstChild);
    while (this.activity.children.length > 8) this.activity.lastChild.remove();
  };

  Feed.prototype.start = function () {
    var self = this;
    self.socket = new window.HelpdeskLive.Socket("/ws/agents/feed/?filter=" + encodeURIComponent(self.filter), {
      onState: function (name) { window.HelpdeskLive.showIndicator(self.indicator, name); },
      onFrame: function (frame) {
        if (frame.type === "snapshot") self.snapshot(frame);
        else if (frame.type === "ticket") self.update(frame);
        else if (frame.type === "counts" && frame.filter === self.filter) self.setCounts(frame.counts);
      }
    });
    self.socket.connect();
    self.root.querySelectorAll("[data-feed-filter-link]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var value = link.getAttribute("data-feed-filter-link");
        if (!self.socket.send({ action: "filter", filter: value })) return; // plain link
        event.preventDefault();
        self.socket.path = "/ws/agents/feed/?filter=" + encodeURIComponent(value);
        window.history.replaceState(null, "", "?filter=" + encodeURIComponent(value));
      });
    });
    setInterval(function () { self.socket.send({ action: "refresh" }); }, REFRESH_MS);
  };

  function init() {
    var root = document.querySelector("[data-feed]");
    if (root && window.HelpdeskLive) new Feed(root).start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
