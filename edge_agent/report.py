"""The yearly report as the records office reads it: text, CSV, and a printable page in HTML and PDF with
charts. Every form takes the same report (`figures.yearly_figures`), and both printable forms draw their
charts with `charts_svg` from `figures.chart_series`, so a chart never says other than the JSON.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from edge_agent.figures import chart_series

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # fonts-dejavu-core, a set-up package
FORMATS = ("text", "json", "csv", "html", "pdf")
_INK, _HIT, _GRID = "#1f4e8c", "#c0392b", "#bbbbbb"


def title_of(report: dict, agency: str) -> str:
    whose = f"{agency}, unit {report['unit']}" if report.get("scope") == "unit" else f"{agency}, all units"
    return f"ALPR figures {report['year']}: {whose}"


def rows(report: dict) -> list[tuple[str, str, object]]:
    """(figure, key, value) rows of everything in the report, months as `month:<name>` keys."""
    out: list[tuple[str, str, object]] = []
    for key, value in report.items():
        if key == "months":
            for m in value:
                for field in ("detections", "hits", "hit_ratio"):
                    out.append((f"month:{m['name']}", field, m[field]))
        elif key in ("sharing", "units"):
            for i, entry in enumerate(value, 1):
                for k, v in entry.items():
                    out.append((f"{key}:{i}", k, v))
        elif isinstance(value, dict):
            out += [(key, k, v) for k, v in value.items()]
        else:
            out.append((key, "", value))
    return out


def to_csv(report: dict) -> str:
    from edge_agent.export import csv_cell

    return "figure,key,value\n" + "".join(f"{csv_cell(f)},{csv_cell(k)},{csv_cell(str(v))}\n" for f, k, v in rows(report))


def to_text(report: dict, agency: str) -> str:
    lines = [f"{title_of(report, agency)} ({report['time_zone']})",
             f"  {report['detections']} detections ({report['detection_means']}), {report['hits']} hits,"
             f" hit ratio {report['hit_ratio']:.4%}"]
    for name in ("hits_by_list", "dispositions", "searches_by_purpose"):
        for k, v in report[name].items():
            lines.append(f"  {name.replace('_', ' ')}: {k}: {v}")
    lines.append(f"  searches: {report['searches']}; exports: {report['exports']}; purges: {report['purges']};"
                 f" reads purged: {report['reads_purged']}")
    lines.append("  month  detections  hits")
    lines += [f"  {m['name']:<5} {m['detections']:>11} {m['hits']:>5}" for m in report["months"]]
    for entry in report.get("sharing", []):
        lines.append(f"  sharing: {entry['direction']} {entry['data']} with {entry['agency_name']}"
                     f" ({entry['jurisdiction']}), approved by {entry['approved_by']} on {entry['approved_on']}")
    return "\n".join(lines)


def charts_svg(report: dict) -> list[tuple[str, str]]:
    """(caption, SVG) of each chart: detections and hits per month as bars, the hit ratio per month as a line.
    Each bar and point carries its value (data-value), which is what a test compares with the JSON."""
    s = chart_series(report)
    return [("Detections per month", _bars(s["months"], s["detections"], _INK, "detections")),
            ("Hits per month", _bars(s["months"], s["hits"], _HIT, "hits")),
            ("Hit ratio per month (hits / detections)", _line(s["months"], s["hit_ratio"], "hit_ratio"))]


_W, _H, _L, _B, _T = 640, 220, 70, 30, 14  # size, left and bottom margins, top


def _frame(top: float, fmt) -> list[str]:
    parts = []
    for i in range(5):
        y = _T + (_H - _B - _T) * i / 4
        parts.append(f'<line x1="{_L}" y1="{y:.1f}" x2="{_W - 10}" y2="{y:.1f}" stroke="{_GRID}" stroke-width="0.5"/>')
        parts.append(f'<text x="{_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#333">'
                     f'{html.escape(fmt(top * (4 - i) / 4))}</text>')
    return parts


def _svg(parts: list[str], series: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}"'
            f' data-series="{series}">' + "".join(parts) + "</svg>")


def _bars(months: list[str], values: list[int], colour: str, series: str) -> str:
    top = max(values) or 1
    parts = _frame(top, lambda v: f"{v:,.0f}")
    slot = (_W - _L - 10) / len(months)
    for i, (name, v) in enumerate(zip(months, values)):
        h = (_H - _B - _T) * v / top
        x = _L + i * slot + slot * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{_H - _B - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour}"'
                     f' data-month="{name}" data-value="{v}"/>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{_H - _B + 16}" font-size="11" text-anchor="middle"'
                     f' fill="#333">{name}</text>')
    return _svg(parts, series)


def _line(months: list[str], values: list[float], series: str) -> str:
    top = max(values) or 0.01
    parts = _frame(top, lambda v: f"{v:.2%}")
    slot = (_W - _L - 10) / len(months)
    points = []
    for i, (name, v) in enumerate(zip(months, values)):
        x, y = _L + i * slot + slot / 2, _H - _B - (_H - _B - _T) * v / top
        points.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_HIT}" data-month="{name}" data-value="{v}"/>')
        parts.append(f'<text x="{x:.1f}" y="{_H - _B + 16}" font-size="11" text-anchor="middle" fill="#333">{name}</text>')
    parts.insert(0, f'<polyline points="{" ".join(points)}" fill="none" stroke="{_HIT}" stroke-width="1.5"/>')
    return _svg(parts, series)


def _tables(report: dict) -> list[tuple[str, list[tuple[str, object]]]]:
    """The report's figures as captioned two-column tables, for both printable forms."""
    summary = [("Detections (one stored read each)", report["detections"]), ("Hits", report["hits"]),
               ("Hit ratio", f"{report['hit_ratio']:.4%}"), ("Searches", report["searches"]),
               ("Exports for evidence or release", report["exports"]), ("Purges run", report["purges"]),
               ("Reads purged", report["reads_purged"])]
    if "detections_in_no_month" in report:
        summary.append(("Detections counted before monthly figures", report["detections_in_no_month"]))
    tables = [("Summary", summary), ("Hits by list", list(report["hits_by_list"].items())),
              ("Dispositions", list(report["dispositions"].items())),
              ("Searches by purpose", list(report["searches_by_purpose"].items())),
              ("By month", [(m["name"], f"{m['detections']} detections, {m['hits']} hits") for m in report["months"]])]
    if "units" in report:
        tables.append(("Units", [(f"{u['agency']}/{u['unit']}", f"{u['detections']} detections, {u['hits']} hits")
                                 for u in report["units"]]))
    if "sharing" in report:
        tables.append(("Sharing register", [(f"{e['direction']} {e['data']}: {e['agency_name']} ({e['jurisdiction']})",
                                             f"approved by {e['approved_by']} on {e['approved_on']}")
                                            for e in report["sharing"]] or [("none", "")]))
    return tables


def to_html(report: dict, agency: str) -> str:
    e = html.escape
    body = [f"<h1>{e(title_of(report, agency))}</h1>",
            f"<p>Year {report['year']} in {e(report['time_zone'])}. A detection is {e(report['detection_means'])}."
            " The figures are counts kept as things happened; purging the records behind them changes none.</p>"]
    for caption, svg in charts_svg(report):
        body.append(f"<figure>{svg}<figcaption>{e(caption)}</figcaption></figure>")
    for caption, pairs in _tables(report):
        cells = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in pairs) or \
            "<tr><td>none</td></tr>"
        body.append(f"<h2>{e(caption)}</h2><table>{cells}</table>")
    style = ("body{font-family:sans-serif;max-width:46em;margin:2em auto;color:#111}"
             "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
             "figure{margin:1em 0}@media print{figure{break-inside:avoid}}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title_of(report, agency))}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def to_pdf(report: dict, agency: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(True, margin=15)
    if FONT.is_file():
        pdf.add_font("DejaVu", fname=str(FONT))
        font, clean = "DejaVu", str
    else:  # the core font knows Latin-1 only
        font, clean = "Helvetica", lambda t: str(t).encode("latin-1", "replace").decode("latin-1")
    pdf.add_page()
    pdf.set_font(font, size=15)
    pdf.multi_cell(0, 8, clean(title_of(report, agency)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, size=9)
    pdf.multi_cell(0, 5, clean(f"Year {report['year']} in {report['time_zone']}. A detection is "
                               f"{report['detection_means']}. Counts kept as things happened."),
                   new_x="LMARGIN", new_y="NEXT")
    for caption, svg in charts_svg(report):
        if pdf.get_y() > 200:
            pdf.add_page()
        pdf.set_font(font, size=11)
        pdf.cell(0, 8, clean(caption), new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(svg.encode()), x=pdf.l_margin, w=170)
    for caption, pairs in _tables(report):
        if pdf.get_y() > 240:
            pdf.add_page()
        pdf.set_font(font, size=11)
        pdf.cell(0, 8, clean(caption), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, size=9)
        for k, v in pairs or [("none", "")]:
            pdf.cell(95, 5, clean(str(k))[:70], border=1)
            pdf.cell(80, 5, clean(str(v))[:60], border=1, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def write_report(report: dict, agency: str, fmt: str, out: Path | None) -> str | None:
    """The report in `fmt` into `out` (text formats may go to the console instead: returned when no `out`)."""
    import json

    if fmt == "pdf":
        if out is None:
            raise ValueError("a PDF report needs --out FILE")
        out.write_bytes(to_pdf(report, agency))
        return None
    text = {"json": lambda: json.dumps(report, indent=2) + "\n", "csv": lambda: to_csv(report),
            "html": lambda: to_html(report, agency), "text": lambda: to_text(report, agency) + "\n"}[fmt]()
    if out is None:
        return text
    out.write_text(text, encoding="utf-8")
    return None
