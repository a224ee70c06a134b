// Rolecall console: progressive enhancement only; every form works without it.
(function () {
  "use strict";
  var search = document.getElementById("perm-search");
  var list = document.getElementById("perm-list");
  var count = document.getElementById("perm-count");
  function recount() {
    if (count && list) {
      count.textContent = list.querySelectorAll("input:checked").length + " ticked";
    }
  }
  if (search && list) {
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      list.querySelectorAll("li").forEach(function (li) {
        li.hidden = q !== "" && li.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
    list.addEventListener("change", recount);
  }
  var untick = document.getElementById("untick-all");
  if (untick && list) {
    untick.addEventListener("click", function () {
      list.querySelectorAll("input:checked").forEach(function (box) { box.checked = false; });
      recount();
    });
  }
  // Validation as you type: the server parses with the same model the API uses.
  document.querySelectorAll("[data-validate]").forEach(function (input) {
    var timer = null;
    var slot = document.getElementById("err-" + input.name);
    function later() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var url = "/console/validate?kind=" + encodeURIComponent(input.dataset.validate) +
          "&value=" + encodeURIComponent(input.value);
        fetch(url, { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (answer) {
            if (slot) { slot.textContent = answer.message || ""; }
            if (answer.ok) { input.removeAttribute("aria-invalid"); }
            else { input.setAttribute("aria-invalid", "true"); }
          })
          .catch(function () {});
      }, 250);
    }
    input.addEventListener("input", later);
    input.addEventListener("change", later);
  });
})();
