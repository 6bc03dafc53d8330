// Progressive enhancement for the Returns page: drop files anywhere on the drop zone and see
// what will be uploaded (and whether it is over the limits) before sending. The form works
// without it: the file input itself accepts dropped files.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var input = document.getElementById("files");
  var zone = form.querySelector(".dropzone");
  var chosen = document.getElementById("chosen");
  var maxFile = Number(form.dataset.maxFile), maxTotal = Number(form.dataset.maxTotal);
  var maxFiles = Number(form.dataset.maxFiles);

  function mb(n) { return (n / 1048576).toFixed(1) + " MB"; }

  function describe() {
    var files = Array.prototype.slice.call(input.files || []);
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    var big = files.filter(function (f) { return f.size > maxFile; });
    var problem = big.length ? big[0].name + " is " + mb(big[0].size) + ", over the " + mb(maxFile) + " a return may be."
      : total > maxTotal ? "These files come to " + mb(total) + ", over the " + mb(maxTotal) + " one upload may be: upload them in smaller batches."
      : files.length > maxFiles ? "Choose at most " + maxFiles + " files at a time." : "";
    chosen.textContent = files.length ? files.length + " file(s), " + mb(total) + (problem ? ". " + problem : ".") : "";
    input.setCustomValidity(problem);
  }

  input.addEventListener("change", describe);
  describe();  // files chosen before this script ran (a slow page) are described too
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      describe();
    }
  });
})();
