// Markdown tables and the performance targets (PASS / FAIL / n/a) from the results.
import { round } from './measure.mjs';

const PEERS = ['nginx-rtmp', 'nms4', 'nms2'];

const fmt = (x, d = 3) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));

function row(results, server, n) {
  return results.fanout.find((r) => r.server === server && r.n === n && !r.error);
}

const failed = (results, server) => results.fanout.some((r) => r.server === server && r.error);

const ratio = (a, b) => (a === null || a === undefined || !b ? null : round(a / b, 2));

export function fanoutTable(results) {
  const lines = [
    '| server | N | CPU s | Gbit delivered | CPU s / Gbit | peak RSS MiB | readers at pace | latency p50 / p99 ms | flowrelay ÷ this (CPU/Gbit) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results.fanout) {
    if (r.error) {
      lines.push(`| ${r.server} | ${r.n ?? '–'} | error: ${r.error.split('\n')[0].slice(0, 400).replace(/\|/g, '\\|')} | | | | | | |`);
      continue;
    }
    const fr = row(results, 'flowrelay', r.n);
    const vs = PEERS.includes(r.server) && fr ? fmt(ratio(fr.cpuPerGbit, r.cpuPerGbit), 2) : '';
    lines.push(
      `| ${r.server} | ${r.n} | ${fmt(r.cpuS, 2)} | ${fmt(r.deliveredGbit, 3)} | ${fmt(r.cpuPerGbit)} | ${fmt(r.rssMiB, 1)} | ${r.readersAtPace}/${r.readers} | ${fmt(r.latencyMs.p50, 2)} / ${fmt(r.latencyMs.p99, 2)} | ${vs} |`,
    );
  }
  for (const s of results.skipped) lines.push(`| ${s.server} | – | ${s.why} | | | | | | |`);
  return lines.join('\n');
}

export function ratioTable(results) {
  const ns = [...new Set(results.fanout.map((r) => r.n).filter((n) => n !== undefined))];
  const lines = ['| flowrelay | N | peer | CPU/Gbit ratio | RSS ratio | p99 latency ratio |', '|---|---:|---|---:|---:|---:|'];
  for (const variant of ['flowrelay', 'flowrelay-merge50']) {
    for (const n of ns) {
      const fr = row(results, variant, n);
      if (!fr) continue;
      for (const p of PEERS) {
        const pr = row(results, p, n);
        if (!pr) continue;
        lines.push(`| ${variant === 'flowrelay' ? 'prompt' : 'merge 50 ms'} | ${n} | ${p} | ${fmt(ratio(fr.cpuPerGbit, pr.cpuPerGbit), 2)} | ${fmt(ratio(fr.rssMiB, pr.rssMiB), 2)} | ${fmt(ratio(fr.latencyMs.p99, pr.latencyMs.p99), 2)} |`);
      }
    }
  }
  return lines.join('\n');
}

/** The performance targets (README, "Benchmark"), each { target, measured, status }. */
export function targets(results) {
  const out = [];
  const add = (target, measured, status) => out.push({ target, measured, status });
  const ns = [50, 100].filter((n) => row(results, 'flowrelay', n));
  const bigN = ns.length ? ns : [];
  const cmp = (server, peer, label, ok) => {
    if (results.skipped.some((s) => s.server === server)) {
      add(`${label}`, results.skipped.find((s) => s.server === server).why, 'n/a');
      return;
    }
    for (const n of [50, 100]) {
      if (!results.settings.ns.includes(n)) {
        add(`${label}, N=${n}`, `not run in ${results.mode} mode`, 'n/a');
        continue;
      }
      const a = row(results, server, n);
      const b = row(results, peer, n);
      if (!a && failed(results, server)) {
        add(`${label}, N=${n}`, `${server} failed (see the fan-out table)`, 'FAIL');
        continue;
      }
      if (!a || !b) {
        add(`${label}, N=${n}`, n === 100 && results.mode === 'quick' ? 'not run in quick mode' : 'not measured', 'n/a');
        continue;
      }
      const known = a.cpuPerGbit != null && b.cpuPerGbit != null;
      add(`${label}, N=${n}`, `${fmt(a.cpuPerGbit)} vs ${fmt(b.cpuPerGbit)}`, !known ? 'n/a' : ok(a.cpuPerGbit, b.cpuPerGbit) ? 'PASS' : 'FAIL');
    }
  };
  cmp('flowrelay', 'nginx-rtmp', 'prompt: CPU/Gbit below nginx-rtmp', (a, b) => a < b);
  cmp('flowrelay', 'nms4', 'prompt: CPU/Gbit below node-media-server 4', (a, b) => a < b);
  const r50 = row(results, 'flowrelay', 50);
  const latencyStatus = (r, limit, server) => (r?.latencyMs.p99 == null ? (failed(results, server) ? 'FAIL' : 'n/a') : r.latencyMs.p99 < limit ? 'PASS' : 'FAIL');
  add('prompt: added latency p99 < 5 ms at 50 readers', r50 ? `${fmt(r50.latencyMs.p99, 2)} ms` : failed(results, 'flowrelay') ? 'flowrelay failed' : 'not measured', latencyStatus(r50, 5, 'flowrelay'));
  cmp('flowrelay-merge50', 'nms2', 'merged (50 ms): CPU/Gbit at or below node-media-server 2.7.4', (a, b) => a <= b);
  const m50 = row(results, 'flowrelay-merge50', 50);
  if (!results.skipped.some((s) => s.server === 'flowrelay-merge50')) {
    add('merged (50 ms): p99 ≤ 55 ms at 50 readers', m50 ? `${fmt(m50.latencyMs.p99, 2)} ms` : failed(results, 'flowrelay-merge50') ? 'flowrelay-merge50 failed' : 'not measured', latencyStatus(m50, 55.000001, 'flowrelay-merge50'));
  }
  {
    const n = bigN.includes(100) ? 100 : 50;
    const a = row(results, 'flowrelay', n);
    const b = row(results, 'nms4', n);
    const label = `RSS at N=100 ≤ ½ node-media-server 4's${n === 100 ? '' : ' (quick mode: at N=50)'}`;
    if (a && b) add(label, `${fmt(a.rssMiB, 1)} vs ${fmt(b.rssMiB, 1)} MiB (${fmt(ratio(a.rssMiB, b.rssMiB), 2)}x)`, n === 100 ? (a.rssMiB <= b.rssMiB / 2 ? 'PASS' : 'FAIL') : a.rssMiB <= b.rssMiB / 2 ? 'PASS (N=50)' : 'FAIL (N=50)');
    else add(label, 'not measured', 'n/a');
  }
  const srt = results.srt;
  if (srt?.ratio != null) add('SRT ingest CPU/Gbit ≤ 1.2x srt-live-transmit', `${fmt(srt.flowrelay.cpuPerGbit)} vs ${fmt(srt.srtLiveTransmit.cpuPerGbit)} (${fmt(srt.ratio, 2)}x)`, srt.ratio <= 1.2 ? 'PASS' : 'FAIL');
  else add('SRT ingest CPU/Gbit ≤ 1.2x srt-live-transmit', srt?.error ?? 'not measured', 'n/a');
  const idle = results.idle;
  if (idle && !idle.error) add(`${idle.flows} idle flows (one low-bitrate publisher each) < 150 MiB RSS`, `${fmt(idle.rssMiB, 1)} MiB (${idle.publishersAlive}/${idle.flows} publishing)`, idle.rssMiB < 150 && idle.publishersAlive === idle.flows ? 'PASS' : 'FAIL');
  else add('100 idle flows < 150 MiB RSS', idle?.error ?? 'not measured', 'n/a');
  const st = results.start;
  if (st && !st.error) add(`${st.flows} configured flows ready < 2 s`, `${st.readyMs} ms (median of ${st.runs})`, st.readyMs < 2000 ? 'PASS' : 'FAIL');
  else add('1,000 configured flows ready < 2 s', st?.error ?? 'not measured', 'n/a');
  const lagging = results.fanout.filter((r) => !r.error && r.readersAtPace < r.readers);
  add('every reader at real-time pace (≥ 90 % of the fixture rate)', lagging.length ? `not at: ${lagging.map((r) => `${r.server} N=${r.n} (${r.readersAtPace}/${r.readers})`).join(', ')}` : 'all', lagging.length ? 'FAIL' : 'PASS');
  return out;
}

export function targetsTable(list) {
  return ['| target | measured | status |', '|---|---|---|', ...list.map((t) => `| ${t.target} | ${t.measured} | ${t.status} |`)].join('\n');
}

export function extrasTable(results) {
  const lines = ['| measurement | value |', '|---|---|'];
  const s = results.srt;
  if (s && !s.error) {
    lines.push(`| SRT ingest, flowrelay | ${fmt(s.flowrelay.cpuPerGbit)} CPU s/Gbit (${fmt(s.flowrelay.mbitPerS, 1)} Mbit/s, ${fmt(s.flowrelay.rssMiB, 1)} MiB) |`);
    lines.push(`| SRT ingest, srt-live-transmit → UDP | ${fmt(s.srtLiveTransmit.cpuPerGbit)} CPU s/Gbit (${fmt(s.srtLiveTransmit.mbitPerS, 1)} Mbit/s, ${fmt(s.srtLiveTransmit.rssMiB, 1)} MiB) |`);
  } else lines.push(`| SRT ingest | ${s?.error ?? 'skipped'} |`);
  const i = results.idle;
  if (i && !i.error) lines.push(`| RSS, ${i.flows} flows with an idle publisher each | ${fmt(i.rssMiB, 1)} MiB (${fmt(i.rssBeforePublishersMiB, 1)} MiB before the publishers) |`);
  else lines.push(`| RSS, idle flows | ${i?.error ?? 'skipped'} |`);
  const st = results.start;
  if (st && !st.error) lines.push(`| start, ${st.flows} flows configured (spawn → "flowrelay started") | ${st.readyMs} ms (runs: ${st.allMs.join(', ')}) |`);
  else lines.push(`| start time | ${st?.error ?? 'skipped'} |`);
  return lines.join('\n');
}
