"""The run report as one self-contained HTML file: summary, SVG timeline, sortable table.

Nothing is loaded from elsewhere (no CDN, no fonts, no images): the file works offline and
can be mailed or archived with the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from html import escape
from itertools import groupby

from .model import JobReport, RunReport, RunSummary

TIMELINE_WIDTH = 1000  # pixels for the time axis
LABEL_WIDTH = 240
AXIS_HEIGHT = 24

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
.cards{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #ccc;border-radius:4px;padding:.4em .8em}
.card b{display:block;font-size:1.2em}
svg text{font-size:11px;fill:#333}svg .grp{font-weight:bold}
rect.q{fill:#f0b429}rect.r{fill:#2f80ed}rect.r.failed{fill:#d64545}rect.r.cancelled{fill:#888}
rect.live{opacity:.55}.legend span{display:inline-block;width:1em;height:.8em;margin:0 .3em 0 1em}
table{border-collapse:collapse;font-size:12px}th,td{border-bottom:1px solid #ddd;padding:2px 6px;text-align:left}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}td{white-space:nowrap}td.n{text-align:right}
tr.failed td{background:#fdecec}tr.cancelled td{color:#777}
"""

TABLE_SCRIPT = """
(function() {
  var rows = JSON.parse(document.getElementById('jobs-data').textContent);
  var body = document.querySelector('table.jobs tbody');
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function when(t) {
    if (t === null) return '-';
    var d = new Date(t * 1000);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z';
  }
  function duration(s) {
    if (s === null) return '-';
    if (s < 120) return s.toFixed(1) + 's';
    if (s < 7200) return (s / 60).toFixed(1) + 'm';
    return (s / 3600).toFixed(1) + 'h';
  }
  function share(v) { return v === null ? '-' : Math.round(v * 100) + '%'; }
  function mib(v) { return v === null ? '-' : v + 'M'; }
  function plain(v) { return v === null ? '' : String(v); }
  // one formatter per column of COLUMNS (the row arrays hold raw values in that order)
  var shown = [plain, plain, plain, plain, plain, plain, plain, when, when, when, duration, duration,
               plain, share, mib, mib, duration];
  function draw() {
    var fragment = document.createDocumentFragment();
    rows.forEach(function(row) {
      var tr = document.createElement('tr');
      tr.className = row[4];
      row.forEach(function(value, i) {
        var td = document.createElement('td');
        td.textContent = shown[i](value);
        if (i >= 5 && i !== 6) td.className = 'n';
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    body.textContent = '';
    body.appendChild(fragment);
  }
  document.querySelectorAll('table.jobs th').forEach(function(th, i) {
    th.addEventListener('click', function() {
      var down = th.dataset.dir === 'asc';
      th.dataset.dir = down ? 'desc' : 'asc';
      rows.sort(function(a, b) {
        var x = a[i], y = b[i];
        if (x === y) return 0;
        if (x === null) return 1;  // unknown values last, whichever the direction
        if (y === null) return -1;
        return (x < y ? -1 : 1) * (down ? -1 : 1);
      });
      draw();
    });
  });
  draw();
})();
"""


def render_html(report: RunReport, now: float | None = None) -> str:
    now = time.time() if now is None else now
    summary = report.summary
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>esap run {escape(summary.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>esap run {escape(summary.run_id)}</h1>",
        f"<p>{escape(summary.front)} run <code>{escape(summary.key)}</code>, created "
        f"{_when(summary.created)}; report written {_when(now)}.</p>",
        _summary_html(summary),
        "<h2>Timeline</h2>",
        '<p class="legend"><span style="background:#f0b429"></span>queued<span style="background:#2f80ed">'
        '</span>running<span style="background:#d64545"></span>running, failed<span style="background:#888">'
        "</span>running, cancelled; faded: still live</p>",
        timeline_svg(report.jobs, now),
        "<h2>Jobs</h2><p>Click a column to sort.</p>",
        _table_html(report.jobs),
        f"<script>{TABLE_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _summary_html(summary: RunSummary) -> str:
    cards = [("jobs", str(summary.jobs))]
    cards += [(state, str(count)) for state, count in summary.states.items()]
    cards += [
        ("wall time", _duration(summary.wall_s) if summary.final else "running"),
        ("CPU-hours used", _number(summary.cpu_hours_used)),
        ("CPU-hours reserved", _number(summary.cpu_hours_reserved)),
        ("CPU-hours requested", _number(summary.cpu_hours_requested)),
        ("CPU efficiency", _share(summary.efficiency)),
    ]
    cards += [(f"site {site}", f"{count} jobs") for site, count in summary.sites.items()]
    body = "".join(f'<div class="card">{escape(label)}<b>{escape(value)}</b></div>' for label, value in cards)
    return f'<h2>Summary</h2><div class="cards" id="summary">{body}</div>'


def timeline_svg(jobs: Iterable[JobReport], now: float) -> str:
    """One bar per job (queued, then running), grouped by site and by rule/step."""
    ordered = sorted(jobs, key=lambda j: (j.site, j.group, j.queued, j.job_id))
    if not ordered:
        return "<p>No jobs.</p>"
    start = min(j.queued for j in ordered)
    end = max(j.ended if j.ended is not None else now for j in ordered)
    span = max(end - start, 1e-3)
    scale = TIMELINE_WIDTH / span
    row = 14 if len(ordered) <= 300 else 4
    bar = row - 2 if row > 4 else 3
    out: list[str] = []
    y = AXIS_HEIGHT
    for (site, group), members in groupby(ordered, key=lambda j: (j.site, j.group)):
        block = list(members)
        out.append(f'<text class="grp" x="0" y="{y + 11}">{escape(site)} / {escape(group)} '
                   f"({len(block)})</text>")
        y += 16
        for job in block:
            out.append(_bar(job, start, scale, now, y, bar, label=row > 4))
            y += row
        y += 6
    axis = _axis(start, span)
    height = y + 4
    width = LABEL_WIDTH + TIMELINE_WIDTH + 20
    return (f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{axis}{"".join(out)}</svg>')


def _bar(job: JobReport, start: float, scale: float, now: float, y: int, height: int, *, label: bool) -> str:
    def x(t: float) -> float:
        return LABEL_WIDTH + (t - start) * scale

    live = job.ended is None
    end = now if live else job.ended
    assert end is not None
    run_from = job.started if job.started is not None else end
    title = f"{job.job_id} {job.name} {job.state}"
    extra = " live" if live else ""
    pieces = [f'<g class="bar"><title>{escape(title)}</title>']
    if label:
        pieces.append(f'<text x="8" y="{y + height - 2}">{escape(job.name[:36])}</text>')
    pieces.append(f'<rect class="q{extra}" x="{x(job.queued):.1f}" y="{y}" '
                  f'width="{max(0.5, x(run_from) - x(job.queued)):.1f}" height="{height}"/>')
    if job.started is not None:
        state = f" {job.state}" if job.state in ("failed", "cancelled") else ""
        pieces.append(f'<rect class="r{state}{extra}" x="{x(job.started):.1f}" y="{y}" '
                      f'width="{max(0.5, x(end) - x(job.started)):.1f}" height="{height}"/>')
    pieces.append("</g>")
    return "".join(pieces)


def _axis(start: float, span: float) -> str:
    ticks = []
    for i in range(6):
        t = span * i / 5
        x = LABEL_WIDTH + TIMELINE_WIDTH * i / 5
        anchor = "end" if i == 5 else "start"
        ticks.append(f'<line x1="{x:.0f}" y1="14" x2="{x:.0f}" y2="100%" stroke="#eee"/>'
                     f'<text x="{x:.0f}" y="11" text-anchor="{anchor}">+{_duration(t)}</text>')
    return "".join(ticks)


COLUMNS = ("job", "name", "site", "scheduler id", "state", "exit", "reason", "queued", "started",
           "ended", "waited", "ran", "cores", "CPU eff.", "mem peak", "mem req.", "walltime req.")


def _table_html(jobs: Iterable[JobReport]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = [_row(job) for job in sorted(jobs, key=lambda j: (j.queued, j.job_id))]
    data = json.dumps(rows, separators=(",", ":")).replace("</", "<\\/")
    return (f'<table class="jobs"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
            "<noscript>The table of jobs needs JavaScript; `esap report RUN --json` has the same.</noscript>"
            f'<script type="application/json" id="jobs-data">{data}</script>')


def _row(job: JobReport) -> list[object]:
    """The raw values of one table row, in the order of COLUMNS (the page formats them)."""
    waited = None if job.started is None else job.started - job.queued
    reason = job.reason or ""
    if job.cause and job.cause not in reason:
        reason = f"{job.cause}: {reason}"
    if job.retry_note:
        reason += f" [{job.retry_note}]"
    if job.missing_outputs:
        reason += f" missing outputs: {', '.join(job.missing_outputs)}"
    if job.segments:
        reason += " [segments: " + ", ".join(f"{s.job_id} {s.state}" for s in job.segments) + "]"
    return [job.job_id, job.name, job.site, job.native_id or "-", job.state, job.exit_code, reason.strip(),
            _round(job.queued), _round(job.started), _round(job.ended), _round(waited), _round(job.run_s),
            job.cores, _round(job.cpu_efficiency, 3), job.max_memory_mib, job.memory_mib, job.walltime_s]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + "Z"


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
