// The ticket page's merge form (templates/admin/support/ticket/_merge_split.html):
// a merge closes this ticket and cannot be undone, so the browser asks first.
(function () {
  "use strict";
  document.querySelectorAll("form[data-merge-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var into = (form.querySelector("input[name=into]").value || "").trim().toUpperCase();
      var question =
        "Merge " + form.dataset.reference + " into " + into + "?\n\n" +
        form.dataset.reference + " will be closed, its messages move to " + into +
        ", and the customer is told once. This cannot be undone.";
      if (!window.confirm(question)) {
        event.preventDefault();
      }
    });
  });
})();
