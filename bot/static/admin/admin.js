// つなぐ 管理画面: small progressive enhancements (the pages work without this file).
"use strict";
(function () {
  // Ask before forms marked with data-confirm are sent (deactivate, restore, import).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    // Move focus to the error summary so screen-reader and keyboard users hear it first.
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
      return;
    }
    var trial = document.getElementById("trial") || document.getElementById("result");
    if (trial) trial.scrollIntoView({ block: "start" });
  });
})();
