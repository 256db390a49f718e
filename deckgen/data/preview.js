// deckgen preview: night mode and phone width toggles, search, and the type-in box.
// Night mode adds the classes Anki puts on its <body class="card card1 …"> to every card
// element here: "nightMode" (Anki desktop, AnkiMobile) and "night_mode" (AnkiDroid, desktop).
(function () {
  "use strict";
  var body = document.body;
  var night = document.getElementById("pv-night");
  var phone = document.getElementById("pv-phone");
  var search = document.getElementById("pv-search");
  var status = document.getElementById("pv-status");
  var empty = document.getElementById("pv-empty");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".pv-frame > .card"));
  var notes = Array.prototype.slice.call(document.querySelectorAll(".pv-note"));
  var decks = Array.prototype.slice.call(document.querySelectorAll(".pv-deck"));

  function setNight(on) {
    body.classList.toggle("pv-night", on);
    cards.forEach(function (card) {
      card.classList.toggle("nightMode", on);
      card.classList.toggle("night_mode", on);
    });
  }

  function setPhone(on) {
    body.classList.toggle("pv-phone", on);
  }

  function filter() {
    var terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    notes.forEach(function (note) {
      var text = note.getAttribute("data-search");
      var match = terms.every(function (t) { return text.indexOf(t) !== -1; });
      note.hidden = !match;
      if (match) shown += 1;
    });
    decks.forEach(function (deck) {
      deck.hidden = deck.querySelector(".pv-note:not([hidden])") === null;
    });
    empty.hidden = shown !== 0;
    status.textContent = terms.length ? shown + " of " + notes.length + " notes" : "";
  }

  function compare(input) {
    // Like Anki's answer side: the typed text against the expected one (whole-answer check).
    var row = input.closest(".pv-cardrow");
    var expected = input.getAttribute("data-expected");
    var typed = input.value.trim();
    row.querySelectorAll('[data-side="back"] code#typeans').forEach(function (code) {
      code.textContent = "";
      if (!typed) {
        code.textContent = expected;
        return;
      }
      var good = typed === expected;
      var first = document.createElement("span");
      first.className = good ? "typeGood" : "typeBad";
      first.textContent = typed;
      code.appendChild(first);
      if (!good) {
        var arrow = document.createElement("span");
        arrow.id = "typearrow";
        arrow.textContent = " \u2192 ";
        var missed = document.createElement("span");
        missed.className = "typeMissed";
        missed.textContent = expected;
        code.appendChild(arrow);
        code.appendChild(missed);
      }
    });
  }

  var params = new URLSearchParams(window.location.search);
  night.checked = params.get("night") === "1";
  phone.checked = params.get("phone") === "1";
  search.value = params.get("q") || "";
  setNight(night.checked);
  setPhone(phone.checked);
  filter();

  night.addEventListener("change", function () { setNight(night.checked); });
  phone.addEventListener("change", function () { setPhone(phone.checked); });
  search.addEventListener("input", filter);
  document.addEventListener("input", function (event) {
    if (event.target.classList && event.target.classList.contains("pv-typeans")) compare(event.target);
  });
})();
