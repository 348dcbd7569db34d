// The copilot panel of the agent's ticket page (templates/admin/support/ticket/_copilot.html).
//
// Each button posts {action, text, tone, language} to POST /api/tickets/{reference}/copilot/
// with the session cookie and the page's CSRF token, and shows the result in the panel;
// "Insert into reply" copies it into the reply box (#hd-reply-body). Nothing is sent to
// the customer from here: the agent sends the reply form as usual.
(function () {
  "use strict";

  function init(panel) {
    var url = panel.getAttribute("data-copilot-url");
    var language = panel.getAttribute("data-copilot-language") || "";
    var csrf = panel.querySelector("input[name=csrfmiddlewaretoken]");
    var reply = document.getElementById("hd-reply-body");
    var status = panel.querySelector("[data-copilot-status]");
    var result = panel.querySelector("[data-copilot-result]");
    var text = panel.querySelector("[data-copilot-text]");
    var sources = panel.querySelector("[data-copilot-sources]");
    var cost = panel.querySelector("[data-copilot-cost]");
    var tone = panel.querySelector("[data-copilot-tone]");
    var buttons = panel.querySelectorAll("[data-copilot-action]");

    function say(message) {
      status.textContent = message;
      status.hidden = !message;
    }

    function busy(on) {
      for (var i = 0; i < buttons.length; i++) {
        if (on) {
          buttons[i].setAttribute("data-was-disabled", buttons[i].disabled ? "1" : "");
          buttons[i].disabled = true;
        } else {
          buttons[i].disabled = buttons[i].getAttribute("data-was-disabled") === "1";
        }
      }
    }

    function errorText(status, body) {
      if (body && body.detail) return body.detail;
      if (body && typeof body === "object") {
        var parts = [];
        for (var key in body) {
          if (Object.prototype.hasOwnProperty.call(body, key)) {
            parts.push([].concat(body[key]).join(" "));
          }
        }
        if (parts.length) return parts.join(" ");
      }
      return "The copilot failed (HTTP " + status + "); try again.";
    }

    function show(data) {
      text.value = data.text || "";
      sources.textContent = "";
      (data.sources || []).forEach(function (source) {
        var item = document.createElement("li");
        if (source.kind === "article") {
          var link = document.createElement("a");
          link.href = source.url;
          link.target = "_blank";
          link.rel = "noopener";
          link.textContent = source.title;
          item.appendChild(document.createTextNode("Article: "));
          item.appendChild(link);
        } else {
          item.textContent = "Similar resolved ticket: " + source.reference;
        }
        sources.appendChild(item);
      });
      cost.textContent = data.model + " · $" + data.cost_usd;
      result.hidden = false;
      say(data.text ? "" : "Nothing in the knowledge base fits this ticket; write the reply yourself.");
    }

    function run(action) {
      var body = { action: action };
      if (action === "rewrite" || action === "translate") {
        body.text = reply ? reply.value : "";
        if (!body.text.trim()) {
          say("Write a draft in the reply box first.");
          return;
        }
      }
      if (action === "rewrite") body.tone = tone.value;
      if (action === "translate" && language) body.language = language;
      busy(true);
      say("Working…");
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrf ? csrf.value : "",
        },
        body: JSON.stringify(body),
      })
        .then(function (response) {
          return response
            .json()
            .catch(function () {
              return null;
            })
            .then(function (data) {
              if (!response.ok) throw new Error(errorText(response.status, data));
              show(data);
            });
        })
        .catch(function (error) {
          say(error.message || "The copilot failed; try again.");
        })
        .then(function () {
          busy(false);
        });
    }

    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        run(event.currentTarget.getAttribute("data-copilot-action"));
      });
    }
    panel.querySelector("[data-copilot-insert]").addEventListener("click", function () {
      if (!reply) return;
      reply.value = text.value;
      reply.dispatchEvent(new Event("input", { bubbles: true }));
      reply.focus();
    });
  }

  function start() {
    var panels = document.querySelectorAll("[data-copilot]");
    for (var i = 0; i < panels.length; i++) init(panels[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
