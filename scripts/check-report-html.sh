#!/usr/bin/env bash
# Renders an oc-harness report.html in headless Chromium (Debian's `chromium` package) and checks
# it: no console message (the page has no script, so any message — and any "Uncaught" error —
# is a failure; Chromium logs every console level as INFO:CONSOLE), and every <svg> chart of the
# rendered DOM has at least one mark (a rect of non-zero width and height, a polyline of two
# points or more, or a circle of non-zero radius). Takes screenshots at 1280 px and at 390 px
# (a phone) to look at. At 390 px no table may reach past the right edge (a table in a box
# that scrolls sideways is cut for a reader who does not know to swipe) and the page may not
# scroll sideways.
#
# Headless Chromium lays a window out at least 500 px wide, whatever --window-size says (a
# 390 px screenshot of the page itself is a 500 px layout, cropped), so the phone is a 390 px
# iframe holding the page (srcdoc, so that the wrapper may measure it), in a wrapper page in
# the temporary directory. The page itself has no script; the wrapper has one, to measure.
#
# Usage: scripts/check-report-html.sh REPORT.html [SCREENSHOT_DIR]
# Exit codes: 0 fine, 1 the page failed a check, 2 bad usage or Chromium/python3 missing.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 REPORT.html [SCREENSHOT_DIR]" >&2
    exit 2
fi
report=$1
if [[ ! -f $report ]]; then
    echo "error: $report: no such file" >&2
    exit 2
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    echo "error: $chromium not found: install Debian's chromium package (apt-get install chromium), or set CHROMIUM" >&2
    exit 2
fi
if ! command -v python3 >/dev/null; then
    echo "error: python3 not found (it reads the rendered DOM)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shots=${2:-$work/shots}
mkdir -p "$shots"
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"

# One headless run; $1 names its logs, the rest are extra flags.
render() {
    local name=$1
    shift
    local profile
    profile=$(mktemp -d "$work/profile.XXXX")
    if ! timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" "$url" \
        >"$work/$name.out" 2>"$work/$name.err"; then
        echo "FAIL: chromium could not render $report ($name); its log:" >&2
        tail -20 "$work/$name.err" >&2
        exit 1
    fi
}

render dom --dump-dom
render wide --screenshot="$shots/report-1280.png" --window-size=1280,2000 --hide-scrollbars

phone="$work/phone.html"
python3 - "$report" "$phone" <<'PY'
import html
import sys

page = open(sys.argv[1], encoding="utf-8").read()
wrapper = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>html, body { margin: 0; } iframe { border: 0; width: 390px; height: 2400px; display: block; }</style>
<script>
function measure(frame) {
  const doc = frame.contentDocument;
  const width = doc.documentElement.clientWidth;
  const cut = [...doc.querySelectorAll("table")]
    .map((t) => [t, t.getBoundingClientRect()])
    .filter(([, r]) => r.right > width + 0.5 || r.left < -0.5)
    .map(([t, r]) => `table.${t.className.replace(/ /g, ".") || "(no class)"} spans ${Math.round(r.left)} to ${Math.round(r.right)} px`);
  if (doc.documentElement.scrollWidth > width) cut.push(`the page is ${doc.documentElement.scrollWidth} px wide`);
  document.body.setAttribute("data-viewport", String(width));
  document.body.setAttribute("data-cut", cut.join("; "));
}
</script></head>
<body><iframe onload="measure(this)" srcdoc="%s"></iframe></body></html>
""" % html.escape(page, quote=True)
open(sys.argv[2], "w", encoding="utf-8").write(wrapper)
PY
report_url=$url
url="file://$phone"
render phone-dom --dump-dom --window-size=390,2400 --hide-scrollbars
render phone --screenshot="$shots/report-390.png" --window-size=390,2400 --hide-scrollbars
url=$report_url

status=0
console=$(grep -hE 'CONSOLE|Uncaught' "$work"/dom.err "$work"/wide.err "$work"/phone-dom.err \
    "$work"/phone.err || true)
if [[ -n $console ]]; then
    echo "FAIL: the page logged to the console:" >&2
    echo "$console" | sed 's/^\[[^]]*\] //' | sort -u >&2
    status=1
fi

if ! python3 - "$work/dom.out" <<'PY'
import sys
from html.parser import HTMLParser


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class Charts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts = []  # [label, marks]
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            if self.depth == 0:
                self.charts.append([a.get("aria-label") or f"chart {len(self.charts) + 1}", 0])
            self.depth += 1
        elif self.depth:
            mark = (
                (tag == "rect" and number(a.get("width")) > 0 and number(a.get("height")) > 0)
                or (tag == "polyline" and len((a.get("points") or "").split()) >= 2)
                or (tag == "circle" and number(a.get("r")) > 0)
            )
            if mark:
                self.charts[-1][1] += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "svg" and self.depth:
            self.depth -= 1


parser = Charts()
with open(sys.argv[1], encoding="utf-8") as dom:
    parser.feed(dom.read())
if not parser.charts and "<body" not in open(sys.argv[1], encoding="utf-8").read():
    print("FAIL: chromium rendered no DOM", file=sys.stderr)
    sys.exit(1)
empty = [label for label, marks in parser.charts if marks == 0]
for label in empty:
    print(f"FAIL: the chart '{label}' has no mark", file=sys.stderr)
print(f"{len(parser.charts)} charts, {len(parser.charts) - len(empty)} with marks")
sys.exit(1 if empty else 0)
PY
then
    status=1
fi

if ! python3 - "$work/phone-dom.out" <<'PY'
import re
import sys

dom = open(sys.argv[1], encoding="utf-8").read()
viewport = re.search(r'data-viewport="(\d+)"', dom)
cut = re.search(r'data-cut="([^"]*)"', dom)
if not viewport or cut is None:
    print("FAIL: could not measure the page at 390 px", file=sys.stderr)
    sys.exit(1)
if viewport.group(1) != "390":
    print(f"FAIL: the phone's viewport is {viewport.group(1)} px, not 390", file=sys.stderr)
    sys.exit(1)
if cut.group(1):
    print(f"FAIL: at 390 px, content is cut: {cut.group(1)}", file=sys.stderr)
    sys.exit(1)
print("at 390 px, every table fits the width")
PY
then
    status=1
fi

if [[ -n ${2:-} ]]; then
    echo "screenshots: $shots/report-1280.png, $shots/report-390.png"
fi
if [[ $status -eq 0 ]]; then
    echo "ok: $report renders without console messages, every chart has marks, no table is cut at 390 px"
fi
exit $status
