// The only script of the console: the live commission preview on the settings page (the
// server computes it, with the same code that pays commission; this only sends the typed
// rates), and the progress of exports.
(function () {
  var form = document.getElementById("rules");
  var tiers = document.getElementById("preview-tiers");
  if (!form || !tiers) return;
  var total = document.getElementById("preview-total");
  var problem = document.getElementById("preview-error");
  var timer = null;

  function yuan(fen) {
    var sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    return sign + "¥" + Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
  }

  function percent(bps) {
    return (bps % 100 ? (bps / 100).toFixed(2) : String(bps / 100)) + "%";
  }

  function show(preview) {
    tiers.textContent = "";
    preview.tiers.forEach(function (tier) {
      var item = document.createElement("li");
      item.textContent = tier.tier + " 级：" + yuan(tier.amount_fen) + "（" + percent(tier.rate_bps) + "）";
      tiers.appendChild(item);
    });
    total.textContent = yuan(preview.total_fen);
    problem.hidden = true;
  }

  function refresh() {
    fetch(form.dataset.preview || "preview", {
      method: "POST", body: new FormData(form), credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (answer.ok) { show(answer.body); return; }
      var fields = answer.body.errors || {};
      problem.textContent = Object.keys(fields).map(function (k) { return fields[k].join("；"); }).join(" ") || answer.body.message;
      problem.hidden = false;
    });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();

// The exports page: while an export waits or runs, ask the server how far it is every two
// seconds; once it is done (or failed) reload, so the download link (or the error) shows.
(function () {
  var open = document.querySelectorAll("[data-progress]");
  if (!open.length) return;

  function poll(card) {
    fetch(card.dataset.progress, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (state) {
      if (!state) return;
      if (state.status !== "queued" && state.status !== "running") { location.reload(); return; }
      card.querySelector("progress").value = state.percent;
      card.querySelector("[data-percent]").textContent = state.percent + "%";
      if (state.rows_total) {
        card.querySelector("[data-rows]").textContent = state.rows_written + " / " + state.rows_total + " 行";
      }
      setTimeout(function () { poll(card); }, 2000);
    });
  }

  open.forEach(function (card) { setTimeout(function () { poll(card); }, 2000); });
})();
