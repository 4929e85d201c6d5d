// The slice page: run `mix check` on the spec text (POST /api/mixcheck, read-only) and show
// rows, tokens and per-component counts; download the spec; materialize it through the
// confirm/token flow (`--allow-writes`).
const $ = (id) => document.getElementById(id);
const fmt = (v) => (v === null || v === undefined ? "" : String(v));

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const got = await r.json();
  if (!r.ok) throw new Error(got.error);
  return got;
}

function cells(tr, values) {
  for (const v of values) {
    const td = document.createElement("td");
    td.textContent = fmt(v);
    if (typeof v === "number") td.className = "num";
    tr.append(td);
  }
}

function showPlan(plan) {
  $("check").hidden = false;
  const tokens = plan.tokens === null ? "" : ` · ${plan.tokens} tokens`;
  $("check-summary").textContent = plan.ok
    ? `mix ${plan.name}: ${plan.rows} rows${tokens} at records v${plan.records_version}`
    : `mix ${plan.name}: ${plan.problems.length} problem(s)`;
  for (const [id, items] of [["check-problems", plan.problems], ["check-warnings", plan.warnings]]) {
    $(id).replaceChildren(...items.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
  }
  const body = $("check-components").querySelector("tbody");
  body.replaceChildren();
  for (const c of plan.components) {
    const tr = document.createElement("tr");
    cells(tr, [c.name, c.available, c.available_tokens, c.overlap, c.target, c.taken, c.unique, c.taken_tokens, c.note]);
    body.append(tr);
  }
  const splits = $("check-splits").querySelector("tbody");
  splits.replaceChildren();
  for (const [name, n] of Object.entries(plan.splits)) {
    const tr = document.createElement("tr");
    cells(tr, [name, n]);
    splits.append(tr);
  }
}

async function check() {
  $("check-status").textContent = "checking…";
  try {
    const plan = await post("/api/mixcheck", { spec: $("spec").value });
    showPlan(plan);
    $("check-status").textContent = plan.ok ? "ok" : "has problems";
    return plan;
  } catch (e) {
    $("check").hidden = true;
    $("check-status").textContent = e.message;
    return null;
  }
}

$("check-button").addEventListener("click", check);
$("download-spec").addEventListener("click", () => {
  const url = URL.createObjectURL(new Blob([$("spec").value], { type: "application/x-yaml" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: "spec.yaml" });
  a.click();
  URL.revokeObjectURL(url);
});
const materialize = $("materialize-button");
if (materialize) {
  materialize.addEventListener("click", async () => {
    try {
      if (!$("materialize-check").checked) throw new Error("tick the box after reading the check");
      const spec = $("spec").value;
      const plan = await check();
      if (!plan || !plan.ok) throw new Error("the check has problems; nothing written");
      const token = await post("/api/confirm/materialize", { name: plan.name, spec });
      const got = await post("/api/materialize", { name: plan.name, spec, confirm: token.confirm });
      const box = $("materialized");
      box.hidden = false;
      box.replaceChildren(`wrote mix ${got.ref}: ${got.rows} rows · `);
      const a = Object.assign(document.createElement("a"), { href: `/mixes/${got.ref}`, textContent: "open it →", id: "mix-link" });
      box.append(a);
      $("check-status").textContent = "materialized";
    } catch (e) {
      $("check-status").textContent = e.message;
    }
  });
}
check();
