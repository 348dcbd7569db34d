// Roadmap vote buttons without a page reload. The buttons are ordinary form submits, so
// without JavaScript (or when fetch fails before reaching the server) the form posts and the
// page comes back with the new counts.
(function () {
  "use strict";

  function setButton(button, pressed, kind) {
    var on = kind === "up" ? "btn-primary" : "btn-secondary";
    var off = kind === "up" ? "btn-outline-primary" : "btn-outline-secondary";
    button.classList.toggle(on, pressed);
    button.classList.toggle(off, !pressed);
    button.setAttribute("aria-pressed", pressed ? "true" : "false");
    button.value = pressed ? "withdraw" : kind;
  }

  function render(box, data) {
    box.querySelectorAll("[data-upvotes]").forEach(function (el) { el.textContent = data.upvotes; });
    box.querySelectorAll("[data-downvotes]").forEach(function (el) { el.textContent = data.downvotes + " down"; });
    var card = box.closest("li, article") || document;
    card.querySelectorAll("[data-score]").forEach(function (el) {
      el.textContent = Number(data.weighted_score).toFixed(1);
    });
    box.querySelectorAll("button[data-vote]").forEach(function (button) {
      var kind = button.getAttribute("data-vote");
      setButton(button, data.my_vote === (kind === "up" ? 1 : -1), kind);
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-vote-form]");
    if (!form || !window.fetch) return;
    var button = event.submitter;
    if (!button) return;
    event.preventDefault();
    var box = form.closest("[data-vote-box]");
    var error = box.querySelector("[data-vote-error]");
    var body = new FormData(form);
    body.set("value", button.value);
    error.textContent = "";
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" },
      credentials: "same-origin"
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
      })
      .then(function (result) {
        if (result.status === 401 && result.data.login_url) {
          window.location.assign(result.data.login_url);
          return;
        }
        if (!result.ok) {
          error.textContent = result.data.error || "Your vote could not be saved.";
          return;
        }
        render(box, result.data);
      })
      .catch(function () {
        // Network trouble: fall back to the plain form post, keeping the chosen button.
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "value"; input.value = button.value;
        form.appendChild(input);
        form.submit();
      })
      .finally(function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
  });
})();
