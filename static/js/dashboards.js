/* Draws the dashboards' charts with Chart.js (vendored) from the JSON the page embeds.
   Each chart's numbers are also in the table under it and in its CSV download. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;

  var palette = ["#0d6efd", "#198754", "#dc3545", "#fd7e14", "#6f42c1", "#20c997", "#6c757d"];

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function formatter(unit) {
    switch (unit) {
      case "percent": return function (v) { return v === null ? "—" : Math.round(v * 1000) / 10 + " %"; };
      case "money": return function (v) { return v === null ? "—" : "$" + Number(v).toFixed(4); };
      case "duration": return duration;
      case "decimal": return function (v) { return v === null ? "—" : Number(v).toFixed(2); };
      default: return function (v) { return v === null ? "—" : Number(v).toLocaleString(); };
    }
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    var config = JSON.parse(source.textContent);
    var units = {};
    var datasets = config.datasets.map(function (set, i) {
      units[set.axis] = units[set.axis] || set.unit;
      var colour = set.label === "Perfect calibration" ? "#adb5bd" : palette[i % palette.length];
      return {
        label: set.label,
        data: set.data,
        unit: set.unit,
        yAxisID: set.axis,
        borderColor: colour,
        backgroundColor: config.type === "bar" ? colour + "cc" : colour + "33",
        borderDash: set.label === "Perfect calibration" ? [6, 4] : [],
        spanGaps: true,
        tension: 0,
        pointRadius: config.labels.length > 60 ? 0 : 3,
      };
    });
    if (config.goal !== null) {
      datasets.push({
        label: config.goalLabel || "Goal",
        data: config.labels.map(function () { return config.goal; }),
        unit: datasets.length ? datasets[0].unit : "number",
        yAxisID: "y",
        type: "line",
        borderColor: "#dc3545",
        borderDash: [6, 4],
        pointRadius: 0,
        fill: false,
      });
    }
    var scales = {
      x: { stacked: config.stacked, ticks: { autoSkip: true, maxRotation: 0 } },
      y: { beginAtZero: true, stacked: config.stacked, ticks: { callback: formatter(units.y) } },
    };
    if (units.y2) {
      scales.y2 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                    ticks: { callback: formatter(units.y2) } };
    }
    if (units.y === "percent") { scales.y.suggestedMax = 1; }
    new Chart(canvas, {
      type: config.type,
      data: { labels: config.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + formatter(item.dataset.unit)(item.raw);
              },
            },
          },
        },
      },
    });
    canvas.closest(".hd-chart").dataset.drawn = "true";
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
