// mixlake UI: click a table row to open its record; ask before submitting a mutation; say
// that the first semantic search loads the embedding model.
document.addEventListener("click", (ev) => {
  const row = ev.target.closest("tr[data-href]");
  if (row && !ev.target.closest("a")) window.location = row.dataset.href;
});
document.addEventListener("submit", (ev) => {
  if (ev.target.id === "confirm-form" && !window.confirm("This changes the lake (a new version). Go ahead?")) {
    ev.preventDefault();
  }
  if (ev.target.id === "search-form") {
    const fts = ev.target.querySelector("input[name=fts]");
    const button = ev.target.querySelector("button");
    const note = document.createElement("span");
    note.id = "search-progress";
    note.className = "meta";
    note.textContent = fts && fts.checked
      ? "searching…"
      : "searching… (the first semantic search loads the embedding model: up to ~30 s)";
    button.disabled = true;
    button.after(note);
  }
});
