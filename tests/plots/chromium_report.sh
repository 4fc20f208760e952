#!/bin/sh
# tests/plots/chromium_report.sh — report.html in headless Chromium (Debian `chromium`).
#
# What it is for: the report of a synthetic sweep must load from file://, every <img>
# must load (naturalWidth > 0) and not be blank (more than one colour when drawn on a
# canvas), and the page must log no console error. A copy of the page gets a small
# checking script (the real report has none); --dump-dom prints its verdict.
# Exit: 0 pass, 1 fail, 77 skip (chromium not installed).
# Usage: chromium_report.sh TEST_PLOTS MT_PLOT SCHEMA.sql WORKDIR [png|svg]
set -eu
test_plots=$1 mt_plot=$2 schema=$3 work=$4 format=${5:-png}

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIP: chromium not installed (Debian: apt-get install -y chromium)"
    exit 77
fi

rm -rf "$work"
mkdir -p "$work/profile"
"$test_plots" --make-db "$schema" "$work/test.db"
"$mt_plot" --db "$work/test.db" --out "$work/out" --format "$format" >"$work/mt-plot.log" 2>&1 || {
    echo "FAIL: mt-plot failed"; cat "$work/mt-plot.log"; exit 1; }

checker='<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push("error: " + e.message); }, true);
  window.addEventListener("load", function () {
    var imgs = document.images, bad = [];
    for (var i = 0; i < imgs.length; i++) {
      var im = imgs[i];
      if (!im.complete || im.naturalWidth === 0) { bad.push("not loaded: " + im.src); continue; }
      var c = document.createElement("canvas");
      c.width = Math.min(im.naturalWidth, 800); c.height = Math.min(im.naturalHeight, 800);
      var g = c.getContext("2d");
      g.drawImage(im, 0, 0, c.width, c.height);
      var d = g.getImageData(0, 0, c.width, c.height).data, first = -1, colours = 0, seen = {};
      for (var p = 0; p < d.length && colours < 3; p += 4 * 7) {
        var k = d[p] + "," + d[p + 1] + "," + d[p + 2];
        if (!seen[k]) { seen[k] = 1; colours++; }
      }
      if (colours < 2) bad.push("blank: " + im.src);
    }
    var out = document.createElement("pre");
    out.id = "mt-check";
    out.textContent = "MT-CHECK images=" + imgs.length + " bad=" + bad.length + " errors=" +
      errors.length + (bad.length || errors.length ? " " + bad.concat(errors).join("; ") : "");
    document.body.appendChild(out);
  });
})();
</script>'
# The test copy sits next to the report so relative image paths still resolve.
awk -v s="$checker" '{ if ($0 == "</body>") print s; print }' "$work/out/report.html" \
    >"$work/out/report_test.html"
grep -q 'MT-CHECK' "$work/out/report_test.html" || { echo "FAIL: could not inject checker"; exit 1; }

timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --allow-file-access-from-files --user-data-dir="$work/profile" \
    --enable-logging=stderr --v=0 --virtual-time-budget=10000 \
    --dump-dom "file://$work/out/report_test.html" >"$work/dom.html" 2>"$work/chromium.err" || {
    echo "FAIL: chromium exited with $?"; tail -20 "$work/chromium.err"; exit 1; }

verdict=$(grep -o '<pre id="mt-check">MT-CHECK[^<]*' "$work/dom.html" | sed 's/^<pre id="mt-check">//' || true)
echo "$verdict"
status=0
case "$verdict" in
"MT-CHECK images="*" bad=0 errors=0") ;;
*) echo "FAIL: page check: ${verdict:-no verdict (page did not load)}"; status=1 ;;
esac
images=$(echo "$verdict" | sed -n 's/.*images=\([0-9]*\).*/\1/p')
expected=$(grep -c '<img ' "$work/out/report.html" || true)
if [ -z "$images" ] || [ "$images" -lt 10 ] || [ "$images" != "$expected" ]; then
    echo "FAIL: $images images in the page, $expected in report.html (want >= 10)"
    status=1
fi
# Console messages the page logged (chromium prints them as CONSOLE lines).
if grep -i 'CONSOLE' "$work/chromium.err" >"$work/console.txt"; then
    echo "FAIL: console messages:"; cat "$work/console.txt"; status=1
fi
[ $status -eq 0 ] && echo "PASS: report.html ($format images) loads in $($browser --version 2>/dev/null | head -1)"
exit $status
