// Draws the page's line charts with Chart.js (served from /ui/vendor, installed from the npm
// registry): the data is the JSON block #chart-data the server rendered; nothing is fetched.
(function () {
  "use strict";
  const block = document.getElementById("chart-data");
  if (!block) return;
  const specs = JSON.parse(block.textContent);
  if (typeof Chart === "undefined") {
    for (const spec of specs) {
      const canvas = document.getElementById(spec.id);
      if (canvas) canvas.replaceWith(document.createTextNode("Charts unavailable: Chart.js is not installed (npm ci in api/ui)."));
    }
    return;
  }
  const colors = ["#2456c8", "#d9480f", "#1c7c3c", "#7b2cbf"];
  const percent = (v) => (v * 100).toFixed(2) + "%";
  for (const spec of specs) {
    const canvas = document.getElementById(spec.id);
    if (!canvas) continue;
    const isRate = spec.unit === "rate";
    new Chart(canvas, {
      type: "line",
      data: {
        labels: spec.labels,
        datasets: spec.series.map((s, i) => ({
          label: s.label,
          data: s.values,
          borderColor: colors[i % colors.length],
          backgroundColor: colors[i % colors.length],
          spanGaps: false,
          tension: 0,
          pointRadius: 3,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "day (UTC)" } },
          y: {
            beginAtZero: true,
            title: { display: true, text: isRate ? "rate" : "ms" },
            ticks: { callback: (v) => (isRate ? percent(v) : v) },
          },
        },
        plugins: {
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + (c.parsed.y === null ? "—" : isRate ? percent(c.parsed.y) : c.parsed.y + " ms") } },
        },
      },
    });
  }
  document.documentElement.dataset.chartsReady = String(specs.length);
})();
