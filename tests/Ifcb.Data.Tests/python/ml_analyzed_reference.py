#!/usr/bin/env python3
"""Independent reference for MlAnalyzedTests: ml_analyzed, look time and run time of every bin below the given folders.

Standard library only, so anyone can re-derive the constants in MlAnalyzedTests.cs:

    python3 tests/Ifcb.Data.Tests/python/ml_analyzed_reference.py testdata/bins tests/Ifcb.Data.Tests/ml-analyzed-cases

It reads the .adc/.hdr text directly and follows the definition of pyifcb 1.3.1 (joefutrelle/pyifcb,
ifcb/metrics/ml_analyzed.py, which ports hsosik/ifcb-analysis IFCB_volume_analyzed*.m), written from its description:
  v1 (IFCBn_YYYY_DDD_HHMMSS): flow 5/48000 mL per step x 40 steps/s; keep the first row of each trigger; negative
      trigger-open / frame-grab times get +86400 s (bins that span midnight); run = last frame grab; each gap between a
      trigger open and the previous frame grab counts at least MIN_PROC (0.073 s; 0.050 s for IFCB5 from 2015-06-01);
      look = run - sum(gaps) - MIN_PROC.
  v2 (DYYYYMMDDTHHMMSS_IFCBnnn): 0.25 mL/min; from the ADC's runTime/inhibitTime columns (see v2() below), or from the
      .hdr runTime/inhibitTime when the ADC has no inhibitTime column or a single row.
Output: one tab-separated line per bin: lid, path relative to its root, ml_analyzed, look_time, run_time, source
(adc, hdr, or "none: reason"); numbers as Python repr (round-trip).
"""
import math
import os
import re
import statistics
import sys
from datetime import datetime, timedelta

V1_FLOW_ML_PER_S = 5.0 / 48000.0 * 40.0
V2_FLOW_ML_PER_MIN = 0.25


def read_rows(path):
    with open(path) as f:
        rows = [line.strip().split(',') for line in f if line.strip()]
    return rows


def header_times(path):
    """runTime and inhibitTime from a .hdr ("key: value" lines, or the 2010 "run time = X s  inhibit time = Y" line)."""
    props = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip()
                m = re.match(r'^run time = ([\d.]+) s\s+inhibit time = ([\d.]+)', line)
                if m:
                    props['runtime'], props['inhibittime'] = m.group(1), m.group(2)
                    continue
                parts = line.split(': ')
                if len(parts) == 2:
                    props[parts[0].strip().lower()] = parts[1].strip()
    if 'runtime' not in props or 'inhibittime' not in props:
        return None
    return float(props['runtime']), float(props['inhibittime'])


def bin_time(lid):
    m = re.match(r'^IFCB(\d)_(\d{4})_(\d{3})_(\d{2})(\d{2})(\d{2})$', lid)
    inst, year, doy, h, mi, s = (int(g) for g in m.groups())
    return inst, datetime(year, 1, 1, h, mi, s) + timedelta(days=doy - 1)


def v1(lid, rows):
    if not rows:
        return None, 'none: empty ADC'
    instrument, when = bin_time(lid)
    min_proc = 0.050 if instrument == 5 and when >= datetime(2015, 6, 1) else 0.073
    seen, kept = set(), []
    for r in rows:
        trigger = float(r[0])
        if trigger not in seen:
            seen.add(trigger)
            kept.append(r)
    wrap = lambda t: t + 86400.0 if t < 0 else t
    trigger_open = [wrap(float(r[7])) for r in kept]
    frame_grab = [wrap(float(r[8])) for r in kept]
    run = frame_grab[-1]
    gaps = [max(trigger_open[i] - frame_grab[i - 1], min_proc) for i in range(1, len(kept))]
    look = run - sum(gaps) - min_proc
    return (look * V1_FLOW_ML_PER_S, look, run), 'adc'


def from_header(hdr_path):
    times = header_times(hdr_path)
    if times is None:
        return None, 'none: no runTime/inhibitTime in the .hdr'
    run, inhibit = times
    look = run - inhibit
    return (V2_FLOW_ML_PER_MIN * look / 60.0, look, run), 'hdr'


def v2(rows, hdr_path):
    if len(rows) == 1 or (rows and len(rows[0]) < 24):
        return from_header(hdr_path)
    if not rows:
        return None, 'none: empty ADC'
    adc_time = [float(r[1]) for r in rows]
    run_time = [float(r[22]) for r in rows]
    inhibit = [float(r[23]) for r in rows]
    n = len(rows)
    if sum(inhibit) == 0:
        return None, 'none: every inhibitTime is 0'
    # Rows whose inhibit time is positive and did not jump (within -0.1..5 s of the previous row); row 0 always counts.
    good = [0] + [i for i in range(1, n) if inhibit[i] > 0 and -0.1 < inhibit[i] - inhibit[i - 1] < 5]
    steps = [round(inhibit[good[k + 1]] - inhibit[good[k]], 4) for k in range(len(good) - 1)]
    if not steps:
        return None, 'none: fewer than two good inhibitTime rows'
    counts = {}
    for s in steps:
        counts[s] = counts.get(s, 0) + 1
    best = max(counts.values())
    mode_step = min(s for s, c in counts.items() if c == best)
    run_offset = inhibit_offset = 0.0
    if run_time[1] - adc_time[1] > 10:
        run_offset = run_time[1] - adc_time[1]
        inhibit_offset = inhibit[1] + 2 * mode_step
    if len(good) == n:
        inhibit_total = inhibit[-1] - inhibit_offset
    else:
        inhibit_total = inhibit[good[-1]] + (n - len(good)) * mode_step - inhibit_offset
    run = run_time[-1] - run_offset
    first = min(n, 50)
    run_from_adc_clock = adc_time[-1] + statistics.median(
        [run_time[i] - adc_time[i] for i in range(first)]) - run_offset
    if abs(run - run_from_adc_clock) > 0.2:
        run = run_from_adc_clock
    look = run - inhibit_total
    return (V2_FLOW_ML_PER_MIN * look / 60.0, look, run), 'adc'


def main(roots):
    for root in roots:
        for folder, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if not name.endswith('.adc'):
                    continue
                lid = name[:-4]
                stem = os.path.join(folder, lid)
                rows = read_rows(stem + '.adc')
                if re.match(r'^D\d{8}T\d{6}_IFCB\d{3}$', lid):
                    values, source = v2(rows, stem + '.hdr')
                elif re.match(r'^IFCB\d_\d{4}_\d{3}_\d{6}$', lid):
                    values, source = v1(lid, rows)
                else:
                    continue
                ml, look, run = values if values else (math.nan, math.nan, math.nan)
                print('\t'.join([lid, os.path.relpath(stem, root), repr(ml), repr(look), repr(run), source]))


if __name__ == '__main__':
    main(sys.argv[1:])
