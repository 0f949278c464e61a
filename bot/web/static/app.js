// Small progressive enhancement: a header checkbox ticks every checkbox of its table (data-check-all="name").
document.addEventListener("change", function (event) {
  var name = event.target.getAttribute("data-check-all");
  if (!name) return;
  var table = event.target.closest("table");
  table.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
    box.checked = event.target.checked;
  });
});
