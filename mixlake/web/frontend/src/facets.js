// Facets: one small chart per column (histogram bars, or value counts), drawn as plain DOM so
// they are cheap to redraw on every filter change. Click a bar or value to filter; drag across
// histogram bars to brush a range; "clear" drops the facet's filter. Each facet is counted by
// the server over the rows the other facets select (cross-filtering).

const NULL_KEY = "\u2205null"; // a null value, kept apart from the string "null"
const fmt = (x) => (typeof x === "number" ? +x.toPrecision(3) + "" : String(x));

export function renderFacets(box, facets, state, refresh) {
  box.replaceChildren();
  for (const f of facets) {
    const card = document.createElement("section");
    card.className = "facet";
    card.dataset.column = f.column;
    const head = document.createElement("header");
    const title = document.createElement("span");
    title.className = "mono";
    title.textContent = f.column;
    head.append(title);
    if (f.active.length) {
      card.classList.add("active");
      const clear = document.createElement("button");
      clear.className = "link clear";
      clear.textContent = "clear";
      clear.addEventListener("click", () => {
        state.filters = state.filters.filter((x) => x.column !== f.column);
        refresh();
      });
      head.append(clear);
    }
    card.append(head);
    card.append(f.kind === "histogram" ? histogram(f, state, refresh) : values(f, state, refresh));
    box.append(card);
  }
}

function setFilter(state, filter) {
  state.filters = state.filters.filter((x) => x.column !== filter.column).concat([filter]);
}

function histogram(f, state, refresh) {
  const wrap = document.createElement("div");
  const bars = document.createElement("div");
  bars.className = "bars";
  const max = Math.max(1, ...f.bins.map((b) => b.n));
  const active = f.active[0];
  let anchor = null;
  f.bins.forEach((b, i) => {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.bin = i;
    bar.title = `${fmt(b.lo)} – ${fmt(b.hi)}: ${b.n} rows`;
    const fill = document.createElement("div");
    fill.style.height = `${Math.round((100 * b.n) / max)}%`;
    if (active && b.lo >= (active.lo ?? -Infinity) && b.hi <= (active.hi ?? Infinity)) {
      bar.classList.add("in");
    }
    bar.append(fill);
    bar.addEventListener("mousedown", (ev) => {
      anchor = i;
      ev.preventDefault();
    });
    bar.addEventListener("mouseup", () => {
      const a = Math.min(anchor ?? i, i);
      const z = Math.max(anchor ?? i, i);
      anchor = null;
      const last = z === f.bins.length - 1;
      setFilter(state, {
        column: f.column,
        op: "range",
        lo: f.bins[a].lo,
        hi: f.bins[z].hi,
        closed: last,
      });
      refresh();
    });
    bars.append(bar);
  });
  const axis = document.createElement("div");
  axis.className = "axis";
  axis.textContent = f.bins.length
    ? `${fmt(f.lo)} … ${fmt(f.hi)} · ${f.rows} rows${f.nulls ? ` · ${f.nulls} null` : ""}`
    : `no values${f.nulls ? ` · ${f.nulls} null` : ""}`;
  wrap.append(bars, axis);
  return wrap;
}

function values(f, state, refresh) {
  const list = document.createElement("ul");
  list.className = "values";
  const max = Math.max(1, ...f.values.map((v) => v.n));
  const active = f.active[0];
  const keyOf = (x) => (x === null ? NULL_KEY : String(x));
  const chosen = new Set(active ? active.values.map(keyOf) : []);
  for (const v of f.values) {
    const li = document.createElement("li");
    const key = keyOf(v.value);
    li.dataset.value = v.value === null ? "null" : key;
    if (chosen.has(key)) li.classList.add("in");
    const bar = document.createElement("span");
    bar.className = "vbar";
    bar.style.width = `${Math.round((100 * v.n) / max)}%`;
    const label = document.createElement("span");
    label.className = "vlabel";
    label.textContent = `${v.value === null ? "null" : key} · ${v.n}`;
    li.append(bar, label);
    li.addEventListener("click", () => {
      if (f.kind === "flag") {
        const val = v.value === null ? null : v.value === "true";
        setFilter(state, { column: f.column, op: "is", values: [val] });
      } else {
        chosen.has(key) ? chosen.delete(key) : chosen.add(key);
        state.filters = state.filters.filter((x) => x.column !== f.column);
        const values = [...chosen].map((k) => (k === NULL_KEY ? null : k));
        if (chosen.size) setFilter(state, { column: f.column, op: "in", values });
      }
      refresh();
    });
    list.append(li);
  }
  return list;
}
