// The station app's only script: live results (Server-Sent Events), forms sent without a page
// load, the keypad, keyboard-wedge scanners and the tones. No framework, no network besides the
// hub.
(function () {
  "use strict";
  var result = document.getElementById("result");
  var csrf = document.querySelector("meta[name=csrf]");
  var audio = null;

  function tone(kind) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var plan = { ok: [[880, 0.12], [1320, 0.18]], attention: [[660, 0.15], [660, 0.15]],
                   error: [[220, 0.5]] }[kind];
      if (!plan) return;
      var t = audio.currentTime;
      plan.forEach(function (step) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = step[0]; o.type = kind === "error" ? "square" : "sine";
        g.gain.value = 0.2; o.connect(g); g.connect(audio.destination);
        o.start(t); o.stop(t + step[1]); t += step[1] + 0.05;
      });
    } catch (e) { /* no audio: colour, icon and text still say it */ }
  }

  function show(html) {
    if (!result) return;
    result.outerHTML = html;
    result = document.getElementById("result");
    bind(result);
    var kind = result && result.getAttribute("data-tone");
    if (kind && result.getAttribute("data-fresh") === "1") tone(kind);
  }

  function send(form) {
    var body = new URLSearchParams(new FormData(form));
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin",
                         headers: { "X-CSRF-Token": csrf ? csrf.content : "" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/station"; return null; }
        return r.text();
      })
      .then(function (html) { if (html !== null) show(html); })
      .catch(function () { document.body.classList.add("offline"); });
  }

  function bind(root) {
    if (!root) return;
    root.querySelectorAll("form[data-fragment]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        send(form);
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      });
    });
  }
  bind(document);

  // The keypad types into the field last touched (the code by default).
  var target = document.getElementById("code");
  document.querySelectorAll("#entry input").forEach(function (i) {
    i.addEventListener("focus", function () { target = i; });
  });
  document.querySelectorAll(".keypad button[data-key]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!target) return;
      var k = b.getAttribute("data-key");
      target.value = k === "back" ? target.value.slice(0, -1) : target.value + k;
    });
  });

  // A keyboard-wedge scanner types a burst ending in Enter; outside a field it is a scan.
  var burst = "", last = 0;
  document.addEventListener("keydown", function (e) {
    var inField = e.target && e.target.tagName === "INPUT";
    if (inField) return;
    var now = Date.now();
    if (now - last > 50) burst = "";
    last = now;
    if (e.key === "Enter" && burst.length >= 4) {
      var form = document.getElementById("entry");
      if (form) { document.getElementById("code").value = burst; send(form); }
      burst = ""; e.preventDefault();
    } else if (e.key.length === 1) {
      burst += e.key;
    }
  });

  // Live results of this station's scanner.
  if (result && window.EventSource) {
    var refresh = function () {
      var url = (result && result.getAttribute("data-current")) || "/station/pickup/current";
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.status === 401 ? null : r.text(); })
        .then(function (html) { if (html !== null) show(html); });
    };
    var events = new EventSource("/station/events");
    events.addEventListener("changed", refresh);
    events.addEventListener("open", function () {
      if (document.body.classList.contains("offline")) refresh();
      document.body.classList.remove("offline");
    });
    events.addEventListener("error", function () { document.body.classList.add("offline"); });
  }
})();
