// mixlake UI: click a table row to open its record; ask before submitting a mutation.
document.addEventListener("click", (ev) => {
  const row = ev.target.closest("tr[data-href]");
  if (row && !ev.target.closest("a")) window.location = row.dataset.href;
});
document.addEventListener("submit", (ev) => {
  if (ev.target.id === "confirm-form" && !window.confirm("This changes the lake (a new version). Go ahead?")) {
    ev.preventDefault();
  }
});
