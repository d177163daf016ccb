// The station app's only script: live results (Server-Sent Events), forms sent without a page
// load, the keypad, keyboard-wedge scanners and the tones. No framework, no network besides the
// hub.
(function () {
  "use strict";
  var result = document.getElementById("result");
  var csrf = document.querySelector("meta[name=csrf]");
  var audio = null;

  // Every tone played, in order (the screen's own record: a browser test reads it).
  window.hubTones = window.hubTones || [];
  function tone(kind) {
    window.hubTones.push(kind);
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

  // A locked station counts down to its unlock (from the hub's remaining time, not the
  // tablet's clock).
  var ticking = null;
  function countdown() {
    var el = document.getElementById("countdown");
    if (ticking) { clearInterval(ticking); ticking = null; }
    if (!el) return;
    var end = Date.now() + parseInt(el.getAttribute("data-remaining-ms") || "0", 10);
    var draw = function () {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = (el.getAttribute("data-label") || "") + " " + m + ":" + (s < 10 ? "0" : "") + s;
      if (left === 0 && ticking) { clearInterval(ticking); ticking = null; }
    };
    draw();
    ticking = setInterval(draw, 1000);
  }
  countdown();

  var toned = result ? parseInt(result.getAttribute("data-seq") || "0", 10) : 0;
  function show(html) {
    if (!result) return;
    result.outerHTML = html;
    result = document.getElementById("result");
    bind(result);
    countdown();
    // A result arrives twice (the request's answer and the live channel's refresh): its
    // tone plays once, for its number.
    var kind = result && result.getAttribute("data-tone");
    var seq = result ? parseInt(result.getAttribute("data-seq") || "0", 10) : 0;
    if (kind && result.getAttribute("data-fresh") === "1" && seq > toned) {
      toned = seq;
      tone(kind);
    }
  }

  // A form's buttons are off while its request is on the way (no double taps); a form that
  // stays on the page (the code entry) gets them back with the answer.
  function send(form) {
    post(form.action, new URLSearchParams(new FormData(form)), function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    });
  }

  function post(url, body, again) {
    fetch(url, { method: "POST", body: body, credentials: "same-origin",
                 headers: { "X-CSRF-Token": csrf ? csrf.content : "" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/station"; return null; }
        return r.text();
      })
      .then(function (html) { again(); if (html !== null) show(html); })
      .catch(function () { again(); document.body.classList.add("offline"); });
  }

  // A photo from the tablet's camera goes as it is (the body is the image); the answer is the
  // panel with the check's result.
  function upload(input) {
    var file = input.files && input.files[0];
    if (!file) return;
    input.disabled = true;
    fetch("/station/receiving/photo", { method: "POST", body: file, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf ? csrf.content : "",
                 "Content-Type": file.type || "application/octet-stream" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/station"; return null; }
        return r.text();
      })
      .then(function (html) { input.disabled = false; if (html !== null) show(html); })
      .catch(function () { input.disabled = false; document.body.classList.add("offline"); });
  }

  // An import file goes as it is; its outcome (or every error in it) shows below.
  function importFile(input) {
    var file = input.files && input.files[0];
    var out = document.getElementById("import-result");
    if (!file || !out) return;
    input.disabled = true;
    fetch("/station/import?kind=" + encodeURIComponent(input.getAttribute("data-kind")),
      { method: "POST", body: file, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf ? csrf.content : "", "Content-Type": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/station"; return null; }
        return r.text();
      })
      .then(function (html) { input.disabled = false; input.value = ""; if (html !== null) out.innerHTML = html; })
      .catch(function () { input.disabled = false; document.body.classList.add("offline"); });
  }

  function bind(root) {
    if (!root) return;
    root.querySelectorAll("input[data-import-upload]").forEach(function (input) {
      input.addEventListener("change", function () { importFile(input); });
    });
    root.querySelectorAll("input[data-photo-upload]").forEach(function (input) {
      input.addEventListener("change", function () { upload(input); });
    });
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
      // At the pickup counter the hub decides what a scan is for (an item of the order on
      // screen or a customer's code), by the same rule as for the counter's own scanner.
      var form = document.getElementById("entry");
      var scan = form && form.getAttribute("data-scan");
      if (scan) {
        var body = new URLSearchParams();
        body.set("csrf", csrf ? csrf.content : ""); body.set("code", burst);
        post(scan, body, function () {});
      } else if (form) { document.getElementById("code").value = burst; send(form); }
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
    // The banner shows while the hub cannot be reached; the browser retries a dropped stream
    // by itself, and a stream it gave up on (the hub answered with an error while it
    // restarted) is opened again here. Back online, the screen fetches what it missed.
    var connect = function () {
      var events = new EventSource("/station/events");
      events.addEventListener("changed", refresh);
      // The bench scale's reading while the load settles, greyed beside the recorded weight.
      events.addEventListener("weight", function (e) {
        var live = document.getElementById("live-weight");
        var grams = document.getElementById("live-grams");
        if (live && grams) { grams.textContent = e.data; live.hidden = false; }
      });
      events.addEventListener("open", function () {
        if (document.body.classList.contains("offline")) refresh();
        document.body.classList.remove("offline");
      });
      events.addEventListener("error", function () {
        document.body.classList.add("offline");
        if (events.readyState === 2) { setTimeout(connect, 2000); }
      });
    };
    connect();
  }
})();
