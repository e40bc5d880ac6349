// Release builder: "select all" ticks every approved item shown by the filter.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (!all) return;
  var boxes = function () { return document.querySelectorAll("input.rel-item"); };
  var sync = function () {
    var list = boxes(), ticked = 0;
    list.forEach(function (b) { if (b.checked) ticked++; });
    all.checked = list.length > 0 && ticked === list.length;
    all.indeterminate = ticked > 0 && ticked < list.length;
  };
  all.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
  });
  boxes().forEach(function (b) { b.addEventListener("change", sync); });
  sync();
})();
