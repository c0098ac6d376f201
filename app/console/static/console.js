// The only script of the console: the live commission preview on the settings page. The
// server computes it (the same code that pays commission); this only sends the typed rates.
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
