// The embedding map: regl-scatterplot (WebGL) over /api/map, a 2-D PCA projection computed on
// the server and sent as Float32 arrays. Points are coloured by cluster, source or any score;
// the clusters carry their top terms; points outside the grid's filter are dimmed. A lasso or
// a box drawn on the map becomes a `map` filter of the grid and the facets.
import createScatterplot from "regl-scatterplot";

const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
];
const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
const MAX_VERTICES = 150; // keeps a lasso filter a few KB in the address, far under limits

// A linear scale with the two methods regl-scatterplot calls (domain and range, get and set);
// it keeps the domain of the visible part of the map, so labels follow pan and zoom.
function linear(domain, range) {
  const s = (v) => range[0] + ((v - domain[0]) / (domain[1] - domain[0])) * (range[1] - range[0]);
  s.domain = (d) => (d ? ((domain = [...d]), s) : domain);
  s.range = (r) => (r ? ((range = [...r]), s) : range);
  return s;
}

export function decode(buf) {
  const len = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, len)));
  const n = header.points;
  const at = (i) => new Float32Array(buf, 4 + len + i * n * 4, n);
  const names = header.arrays;
  return { header, arrays: Object.fromEntries(names.map((name, i) => [name, at(i)])) };
}

function simplify(coords) {
  const step = Math.max(1, Math.ceil(coords.length / MAX_VERTICES));
  return coords.filter((_, i) => i % step === 0).map(([x, y]) => [+x.toFixed(5), +y.toFixed(5)]);
}

export function setupMap(gridState, query, refresh) {
  const panel = document.getElementById("map-panel");
  if (!panel) return null;
  const box = panel.querySelector(".map-canvas");
  const canvas = box.querySelector("canvas");
  const status = panel.querySelector("#map-status");
  const legend = panel.querySelector("#map-legend");
  const labels = panel.querySelector("#map-labels");
  const colour = panel.querySelector("#map-color");
  const info = panel.querySelector("#map-point");
  const map = { plot: null, header: null, loaded: false, selected: 0, color: colour.value };
  window.mixlakeMap = map;
  let xScale = null;
  let yScale = null;

  function placeLabels() {
    if (!map.header || !xScale) return;
    const [w, h] = [box.clientWidth, box.clientHeight];
    for (const el of labels.children) {
      const px = xScale(+el.dataset.x);
      const py = yScale(+el.dataset.y);
      el.style.transform = `translate(${px}px, ${py}px)`;
      el.hidden = px < 0 || py < 0 || px > w || py > h;
    }
  }

  function ensurePlot() {
    if (map.plot) return map.plot;
    const { width, height } = box.getBoundingClientRect();
    xScale = linear([-1, 1], [0, width]);
    yScale = linear([-1, 1], [height, 0]);
    map.plot = createScatterplot({
      canvas,
      width,
      height,
      xScale,
      yScale,
      pointSize: 4,
      pointSizeSelected: 1,
      backgroundColor: "#ffffff",
      lassoColor: [0.1, 0.35, 0.9, 1],
      lassoClearEvent: "deselect",
      opacityBy: "valueB",
      opacity: [0.12, 0.9],
    });
    map.plot.subscribe("view", placeLabels);
    map.plot.subscribe("lassoEnd", ({ coordinates }) => {
      if (coordinates.length < 3) return;
      gridState.filters = gridState.filters.filter((f) => f.column !== "map");
      gridState.filters.push({ column: "map", op: "lasso", polygon: simplify(coordinates) });
      refresh();
    });
    map.plot.subscribe("select", ({ points }) => {
      map.selected = points.length;
      if (points.length === 1) showPoint(points[0]);
    });
    return map.plot;
  }

  async function showPoint(index) {
    const q = new URLSearchParams({ index });
    if (gridState.version !== null && gridState.version !== "") q.set("version", gridState.version);
    const r = await fetch(`/api/map/point?${q}`);
    const got = await r.json();
    if (!r.ok) return;
    info.replaceChildren();
    const a = document.createElement("a");
    a.href = `/records/${got.id}?version=${gridState.version}`;
    a.className = "mono";
    a.textContent = got.id.slice(0, 12);
    info.append(a, ` ${got.source} · ${got.text}`);
  }

  function drawLegend(h) {
    legend.replaceChildren();
    const c = h.color;
    if (c.kind === "categorical") {
      const terms = Object.fromEntries(h.clusters.map((cl) => [String(cl.cluster), cl.top_terms]));
      c.categories.forEach((cat, i) => {
        const li = document.createElement("li");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = PALETTE[i % PALETTE.length];
        const top = c.column === "cluster" && terms[cat.name] ? ` ${terms[cat.name].slice(0, 3).join(" ")}` : "";
        li.dataset.category = cat.name;
        li.append(sw, ` ${cat.name}${top} · ${cat.points}`);
        legend.append(li);
      });
    } else {
      const li = document.createElement("li");
      li.className = "ramp";
      li.style.background = `linear-gradient(90deg, ${RAMP.join(", ")})`;
      legend.append(`${+c.lo.toPrecision(3)}`, li, `${+c.hi.toPrecision(3)}${c.nulls ? ` · ${c.nulls} null` : ""}`);
    }
    labels.replaceChildren();
    for (const cl of h.clusters) {
      const el = document.createElement("span");
      el.className = "cluster-label";
      el.dataset.cluster = cl.cluster;
      el.dataset.x = cl.x;
      el.dataset.y = cl.y;
      el.textContent = `${cl.cluster}: ${cl.top_terms.slice(0, 3).join(" ") || "—"}`;
      el.title = `cluster ${cl.cluster} · ${cl.points} points · ${cl.top_terms.join(", ")}`;
      labels.append(el);
    }
    placeLabels();
  }

  function showStatus(h) {
    const sel = gridState.filters.some((f) => f.column === "map") ? " · map selection on" : "";
    status.textContent =
      `${h.points} of ${h.rows} rows have an embedding · ${h.method.toUpperCase()} ` +
      `(${Math.round(100 * (h.explained[0] + h.explained[1]))}% of variance) · ` +
      `${h.matched} match the filter${sel}`;
    panel.querySelector("#map-clear").hidden = !sel;
  }

  async function load(parts) {
    const q = query(gridState, { color: colour.value, parts });
    panel.setAttribute("aria-busy", "true");
    try {
      const r = await fetch(`/api/map?${q}`);
      if (!r.ok) throw new Error((await r.json()).error);
      const { header, arrays } = decode(await r.arrayBuffer());
      const plot = ensurePlot();
      if (parts === "all") {
        map.x = arrays.x;
        map.y = arrays.y;
        map.value = arrays.value;
        const cat = header.color.kind === "categorical";
        plot.set({ colorBy: "valueA", pointColor: cat ? PALETTE : RAMP });
        map.zType = cat ? "categorical" : "continuous";
      }
      map.header = { ...(map.header || {}), ...header, color: header.color || map.header.color };
      await plot.draw(
        { x: map.x, y: map.y, valueA: map.value, valueB: arrays.match },
        { zDataType: map.zType, wDataType: "categorical", preventFilterReset: true },
      );
      if (parts === "all") drawLegend(map.header);
      showStatus(map.header);
      map.loaded = true;
    } catch (e) {
      status.textContent = e.message;
    } finally {
      panel.removeAttribute("aria-busy");
    }
  }

  for (const input of panel.querySelectorAll("input[name=map-mode]")) {
    input.addEventListener("change", () => {
      const plot = ensurePlot();
      if (input.value === "pan") plot.set({ mouseMode: "panZoom" });
      else plot.set({ mouseMode: "lasso", lassoType: input.value === "box" ? "rectangle" : "freeform" });
    });
  }
  colour.addEventListener("change", () => load("all"));
  panel.querySelector("#map-clear").addEventListener("click", () => {
    gridState.filters = gridState.filters.filter((f) => f.column !== "map");
    map.plot?.deselect();
    refresh();
  });
  panel.querySelector("#map-open").addEventListener("click", () => {
    panel.classList.toggle("open");
    localStorage.setItem("mixlake.map", panel.classList.contains("open") ? "1" : "0");
    if (panel.classList.contains("open") && !map.loaded) load("all");
  });
  if (localStorage.getItem("mixlake.map") === "1") {
    panel.classList.add("open");
    load("all");
  }
  // called by the grid after every filter change: only the "matches" array is fetched again
  return () => (map.loaded && panel.classList.contains("open") ? load("match") : null);
}
