#!/usr/bin/env python3
"""report_check.py — checks on a `tokenmill report --format html` page as
Chromium rendered it (tests/cli/report_render.sh).

    report_check.py seed DB JOB_IDS...   write costed requests and runs into DB
    report_check.py check DOM.html       check the DOM that --dump-dom wrote

check: the probe script's measurement (pre#tm-measure: scrollWidth,
innerWidth) shows no horizontal overflow; every SVG bar (rect with data-row,
data-col, data-value inside <svg data-table=T>) has a cell with the same
row, column and value in <table id=T>; the headline's total spend is the
totals row's cost. Prints one line per page; exits 1 on a failure.
"""
import json
import sqlite3
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.svg_table = None
        self.bars = []            # (table, row, col, value)
        self.cells = {}           # (table, row, col) -> value
        self.table = None
        self.row = None
        self.in_measure = False
        self.measure = ""
        self.card_key = None
        self.div_class = []
        self.text_target = None
        self.cards = {}
        self.in_tfoot = False
        self.tfoot_cells = []
        self.td_text = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svg_table = a.get("data-table")
        elif tag == "rect" and self.svg_table and "data-value" in a:
            self.bars.append((self.svg_table, a["data-row"], a["data-col"], a["data-value"]))
        elif tag == "table":
            self.table = a.get("id")
        elif tag == "tr":
            self.row = a.get("data-row")
        elif tag == "tfoot":
            self.in_tfoot = True
        elif tag == "td":
            if self.table and self.row is not None and "data-col" in a:
                self.cells[(self.table, self.row, a["data-col"])] = a["data-value"]
            if self.in_tfoot and self.table == "main":
                self.td_text = ""
        elif tag == "pre" and a.get("id") == "tm-measure":
            self.in_measure = True
        elif tag == "div":
            cls = a.get("class", "")
            self.div_class.append(cls)
            if cls in ("k", "v"):
                self.text_target = cls
                self.card_text = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg_table = None
        elif tag == "table":
            self.table = None
        elif tag == "tr":
            self.row = None
        elif tag == "tfoot":
            self.in_tfoot = False
        elif tag == "td" and self.td_text is not None:
            self.tfoot_cells.append(self.td_text)
            self.td_text = None
        elif tag == "pre":
            self.in_measure = False
        elif tag == "div" and self.div_class:
            cls = self.div_class.pop()
            if cls == "k":
                self.card_key = self.card_text
            elif cls == "v" and self.card_key:
                self.cards[self.card_key] = self.card_text
            self.text_target = None

    def handle_data(self, data):
        if self.in_measure:
            self.measure += data
        if self.text_target:
            self.card_text += data
        if self.td_text is not None:
            self.td_text += data


def check(path):
    p = Page()
    p.feed(open(path, encoding="utf-8").read())
    errors = []
    if not p.measure:
        errors.append("no measurement (the probe script did not run)")
        m = {}
    else:
        m = json.loads(p.measure)
        if m["scrollWidth"] > m["innerWidth"]:
            errors.append("horizontal overflow: scrollWidth %d > innerWidth %d" % (m["scrollWidth"], m["innerWidth"]))
    if not p.bars:
        errors.append("no chart bars with data-value")
    for table, row, col, value in p.bars:
        cell = p.cells.get((table, row, col))
        if cell is None:
            errors.append("bar %s row %s %s has no table cell" % (table, row, col))
        elif float(cell) != float(value):
            errors.append("bar %s row %s %s = %s, table says %s" % (table, row, col, value, cell))
    total = p.cards.get("Total spend")
    if total is None or total not in p.tfoot_cells:
        errors.append("headline total %r is not in the totals row %r" % (total, p.tfoot_cells))
    print("%s: %d bars = table cells, scrollWidth %s <= innerWidth %s, total %s%s" %
          (path, len(p.bars), m.get("scrollWidth"), m.get("innerWidth"), total,
           "" if not errors else "; FAIL: " + "; ".join(errors)))
    return not errors


def seed(db_path, job_ids):
    """Ten days of requests over the jobs, two workers, two price profiles."""
    db = sqlite3.connect(db_path)
    day0 = 1795046400  # 2026-11-19
    runs = []
    for i in range(6):
        worker = "gpu-node-%d:4242:abcd" % (i % 2)
        start = day0 + i * 2 * 86400 + 3600
        price = 3.0 if i % 2 == 0 else 2.1
        runs.append(("run_%d" % i, worker, start, price))
        db.execute("INSERT INTO runs(id, worker_id, started_at, ended_at, requests_done, prompt_tokens,"
                   " completion_tokens, gpu_seconds, cost_usd, price_usd_per_hour, overhead_seconds, price_profile)"
                   " VALUES (?, ?, ?, ?, 0, 0, 0, 0, 0, ?, 0, ?)",
                   ("run_%d" % i, worker, start, start + 7200, price, "h100-ondemand" if i % 2 == 0 else None))
    k = 0
    for j, job in enumerate(job_ids):
        ids = [r[0] for r in db.execute("SELECT id FROM requests WHERE job_id=? ORDER BY seq", (job,))]
        for rid in ids:
            run = runs[k % len(runs)]
            g = 40.0 + 13 * (k % 7) + j * 20
            pt, ct = 150000 + 9000 * k, 80000 + 4000 * (k % 5)
            waste = g * 0.1 if k % 4 == 0 else 0.0
            db.execute("UPDATE requests SET state='done', finished_at=?, prompt_tokens=?, completion_tokens=?,"
                       " gpu_seconds=?, cost_usd=?, wasted_seconds=?, wasted_usd=?, run_id=? WHERE id=?",
                       (run[2] + 600 + k, pt, ct, g, g * run[3] / 3600, waste, waste * run[3] / 3600, run[0], rid))
            k += 1
    for run in runs:  # whole runs: their requests plus 25 minutes of overhead
        rid = run[0]
        n, pt, ct, g = db.execute("SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0),"
                                  " COALESCE(SUM(gpu_seconds),0) FROM requests WHERE run_id=?", (rid,)).fetchone()
        db.execute("UPDATE runs SET requests_done=?, prompt_tokens=?, completion_tokens=?, gpu_seconds=?,"
                   " overhead_seconds=1500, cost_usd=? WHERE id=?", (n, pt, ct, g + 1500, (g + 1500) * run[3] / 3600, rid))
    db.commit()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(0 if all([check(p) for p in sys.argv[2:]]) else 1)
    else:
        sys.exit("usage: report_check.py seed DB JOB_IDS... | check DOM.html...")
