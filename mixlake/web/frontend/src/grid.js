// mixlake records grid: AG Grid (community, infinite row model) over /api/records, facets
// from /api/facets that cross-filter the grid and each other, keyboard navigation and labels,
// the embedding map (map.js) and saving the filter as a slice.
// Built by `make frontend` (npm ci + esbuild) into ../static/grid.js, which is committed.
import {
  CellStyleModule,
  ColumnApiModule,
  EventApiModule,
  GridStateModule,
  InfiniteRowModelModule,
  ModuleRegistry,
  RenderApiModule,
  RowApiModule,
  RowSelectionModule,
  ScrollApiModule,
  TooltipModule,
  createGrid,
  themeQuartz,
} from "ag-grid-community";
import { renderFacets } from "./facets.js";
import { setupMap } from "./map.js";

ModuleRegistry.registerModules([
  CellStyleModule,
  ColumnApiModule,
  EventApiModule,
  GridStateModule,
  InfiniteRowModelModule,
  RenderApiModule,
  RowApiModule,
  RowSelectionModule,
  ScrollApiModule,
  TooltipModule,
]);

const PAGE = 100;
const el = document.getElementById("grid");
if (el) start(el);

function start(el) {
  const cfg = JSON.parse(el.dataset.config);
  const state = {
    version: cfg.version,
    where: cfg.where,
    filters: cfg.filters || [],
    sort: cfg.sort || "id",
    desc: !!cfg.desc,
    total: null,
  };
  const narrow = window.innerWidth < 700;
  const hidden = new Set(JSON.parse(localStorage.getItem("mixlake.hidden") || "[]"));
  const columnDefs = cfg.columns.map((c) => column(c, narrow, hidden, cfg.version));
  const api = createGrid(el, {
    theme: themeQuartz.withParams({ fontSize: 13, headerFontSize: 13, spacing: 5 }),
    columnDefs,
    rowModelType: "infinite",
    cacheBlockSize: PAGE,
    maxBlocksInCache: 20,
    rowHeight: 34,
    getRowId: (p) => p.data.id,
    rowSelection: { mode: "multiRow", checkboxes: true, headerCheckbox: false },
    tooltipShowDelay: 400,
    initialState: { sort: { sortModel: [{ colId: state.sort, sort: state.desc ? "desc" : "asc" }] } },
    datasource: datasource(state),
    onRowDoubleClicked: (e) => openRow(e.data, state.version),
    onSelectionChanged: () => showSelection(api),
  });
  window.mixlakeGrid = { api, state };
  columnChooser(api, cfg.columns, hidden);
  keyboard(api, state, cfg);
  let mapRefresh = null;
  const refresh = () => {
    syncUrl(state);
    api.setGridOption("datasource", datasource(state));
    loadFacets(state, refresh);
    if (mapRefresh) mapRefresh();
  };
  mapRefresh = setupMap(state, query, refresh);
  state.refresh = refresh;
  loadFacets(state, refresh);
  labelButtons(api, state, cfg);
  sliceButton(state);
}

// Save the current filter (WHERE box, facets, map selection) as a named slice: confirm, then
// one append to the lake's `slices` table; the slice page turns it into a mix component.
function sliceButton(state) {
  const button = document.getElementById("slice-save");
  const input = document.getElementById("slice-name");
  const status = document.getElementById("slice-status");
  if (!button || !input) return;
  button.addEventListener("click", async () => {
    const name = input.value.trim();
    try {
      if (!name) throw new Error("give the slice a name");
      const c = await fetch(`/api/confirm/slice?${new URLSearchParams({ name })}`);
      const token = await c.json();
      if (!c.ok) throw new Error(token.error);
      const r = await fetch("/api/slice", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name,
          version: String(state.version),
          where: state.where || "",
          filters: state.filters,
          confirm: token.confirm,
        }),
      });
      const got = await r.json();
      if (!r.ok) throw new Error(got.error);
      status.replaceChildren(`saved slice ${got.name} (${got.rows} rows at v${got.records_version}) · `);
      const a = document.createElement("a");
      a.id = "slice-link";
      a.href = `/slices/${encodeURIComponent(got.name)}`;
      a.textContent = "make it a mix →";
      status.append(a);
    } catch (e) {
      status.textContent = e.message;
    }
  });
}

function column(c, narrow, hidden, version) {
  const def = {
    field: c.name,
    headerName: c.name,
    sortable: true,
    sortingOrder: ["asc", "desc"],
    hide: hidden.has(c.name) && c.name !== "id",
    width: c.kind === "number" ? 120 : 130,
    tooltipField: c.name,
  };
  if (c.name === "id") {
    Object.assign(def, { pinned: "left", width: narrow ? 110 : 130, tooltipField: undefined });
    def.cellRenderer = (p) => {
      if (!p.data) return "…";
      const a = document.createElement("a");
      a.href = `/records/${p.data.id}?version=${version}`;
      a.textContent = p.data.id.slice(0, 12);
      a.className = "mono";
      return a;
    };
  } else if (c.name === "text") {
    Object.assign(def, { width: narrow ? 220 : 380, pinned: narrow ? null : "left" });
    def.cellClass = "grid-text";
  } else if (c.name === "label") {
    def.cellRenderer = (p) => {
      const v = p.value;
      if (v === null || v === undefined) return "";
      const s = document.createElement("span");
      s.className = v === 1 ? "label good" : "label bad";
      s.textContent = v === 1 ? "good" : "bad";
      return s;
    };
  } else if (c.kind === "number") {
    def.cellClass = "num";
    def.valueFormatter = (p) =>
      typeof p.value === "number" ? +p.value.toPrecision(4) + "" : p.value ?? "";
  }
  return def;
}

function query(state, extra) {
  const q = new URLSearchParams();
  if (state.version !== "" && state.version !== null) q.set("version", state.version);
  if (state.where) q.set("where", state.where);
  if (state.filters.length) q.set("filters", JSON.stringify(state.filters));
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q;
}

function datasource(state) {
  return {
    getRows: async (params) => {
      const s = params.sortModel[0];
      state.sort = s ? s.colId : "id";
      state.desc = s ? s.sort === "desc" : false;
      syncUrl(state);
      const q = query(state, {
        sort: state.sort,
        desc: state.desc,
        offset: params.startRow,
        limit: params.endRow - params.startRow,
      });
      try {
        const r = await fetch(`/api/records?${q}`);
        const got = await r.json();
        if (!r.ok) throw new Error(got.error);
        state.total = got.total;
        showCount(state);
        params.successCallback(got.rows, got.total);
      } catch (e) {
        showError(e.message);
        params.failCallback();
      }
    },
  };
}

function syncUrl(state) {
  const q = query(state, state.sort !== "id" || state.desc ? { sort: state.sort, desc: state.desc } : {});
  history.replaceState(null, "", `/records?${q}`);
  document.querySelectorAll("a[data-keep-filter]").forEach((a) => {
    const u = new URL(a.href, location.href);
    const keep = query(state);
    a.href = `${u.pathname}?${keep}`;
  });
}

function showCount(state) {
  const el = document.getElementById("count");
  const filtered = state.filters.length ? ` · ${state.filters.length} facet filter(s)` : "";
  if (el) el.textContent = `${state.total} rows match${state.where ? " " + state.where : ""}${filtered}`;
}

function showError(message) {
  const el = document.getElementById("grid-error");
  if (el) el.textContent = message || "";
}

async function loadFacets(state, refresh) {
  const box = document.getElementById("facets");
  if (!box) return;
  box.setAttribute("aria-busy", "true");
  try {
    const r = await fetch(`/api/facets?${query(state)}`);
    const got = await r.json();
    if (!r.ok) throw new Error(got.error);
    renderFacets(box, got.facets, state, refresh);
  } catch (e) {
    showError(e.message);
  } finally {
    box.removeAttribute("aria-busy");
  }
}

function openRow(row, version) {
  if (row) window.location = `/records/${row.id}?version=${version}`;
}

function columnChooser(api, columns, hidden) {
  const box = document.getElementById("column-list");
  if (!box) return;
  for (const c of columns) {
    if (c.name === "id") continue;
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !hidden.has(c.name);
    input.dataset.column = c.name;
    input.addEventListener("change", () => {
      api.setColumnsVisible([c.name], input.checked);
      input.checked ? hidden.delete(c.name) : hidden.add(c.name);
      localStorage.setItem("mixlake.hidden", JSON.stringify([...hidden]));
    });
    label.append(input, " " + c.name);
    box.append(label);
  }
}

function focusRow(api, index) {
  const n = api.getDisplayedRowCount();
  const i = Math.max(0, Math.min(n - 1, index));
  api.ensureIndexVisible(i);
  api.setFocusedCell(i, "id");
  const node = api.getDisplayedRowAtIndex(i);
  return node;
}

function keyboard(api, state, cfg) {
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const focused = api.getFocusedCell();
    const at = focused ? focused.rowIndex : -1;
    if (ev.key === "j" || ev.key === "k") {
      focusRow(api, at + (ev.key === "j" ? 1 : -1));
      ev.preventDefault();
    } else if (ev.key === "Enter" && at >= 0) {
      openRow(api.getDisplayedRowAtIndex(at)?.data, state.version);
      ev.preventDefault();
    } else if (cfg.labels && (ev.key === "1" || ev.key === "2") && at >= 0) {
      const node = api.getDisplayedRowAtIndex(at);
      if (node?.data) {
        saveLabels(api, state, [node.data.id], ev.key === "1" ? "good" : "bad").then(() =>
          focusRow(api, at + 1),
        );
      }
      ev.preventDefault();
    }
  });
}

function showSelection(api) {
  const el = document.getElementById("selection-count");
  if (el) el.textContent = `${api.getSelectedRows().length} selected`;
}

function labelButtons(api, state, cfg) {
  for (const b of document.querySelectorAll("button[data-label]")) {
    b.addEventListener("click", () => {
      const ids = api.getSelectedRows().map((r) => r.id);
      if (ids.length) saveLabels(api, state, ids, b.dataset.label);
    });
  }
  const exp = document.getElementById("export-form");
  if (exp) {
    exp.addEventListener("submit", () => {
      const ids = api.getSelectedRows().map((r) => r.id);
      exp.querySelector("input[name=ids]").value = ids.join(",");
      exp.querySelector("input[name=filters]").value = JSON.stringify(state.filters);
    });
  }
}

let labelToken = null;

async function saveLabels(api, state, ids, label) {
  const status = document.getElementById("label-status");
  try {
    if (!labelToken) {
      const r = await fetch("/api/confirm/label?name=ui");
      const got = await r.json();
      if (!r.ok) throw new Error(got.error);
      labelToken = got.confirm;
    }
    const r = await fetch("/api/label", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "ui", ids, label, confirm: labelToken }),
    });
    const got = await r.json();
    if (!r.ok) {
      labelToken = null;
      throw new Error(got.error);
    }
    for (const id of ids) {
      const node = api.getRowNode(id);
      if (node?.data) node.setData({ ...node.data, label: label === "good" ? 1 : 0 });
    }
    if (status) status.textContent = `labelled ${ids.length} ${label} · ${got.total_labelled} labelled in all`;
  } catch (e) {
    if (status) status.textContent = e.message;
  }
}
