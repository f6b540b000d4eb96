/**
 * The inspector's page: plain HTML and a script that fetches `/data` every
 * second and draws on canvases. No framework, nothing fetched from elsewhere.
 */
const SCRIPT = `
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
let samples = [];
let history = 120;
let intervalMs = 1000;

function fmt(v) {
  if (v === undefined || v === null) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Draws lines [{ name, values: (number|undefined)[] }] over the last history samples. */
function lines(id, series) {
  const c = document.getElementById(id);
  const ctx = c.getContext('2d');
  const w = c.width, h = c.height, left = 44, bottom = 16, top = 6;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== undefined && v > max) max = v;
  max = max <= 0 ? 1 : max * 1.1;
  ctx.strokeStyle = '#ddd';
  ctx.fillStyle = '#555';
  ctx.font = '10px sans-serif';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ((h - top - bottom) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(w, y);
    ctx.stroke();
    ctx.fillText(fmt(max * (1 - i / 4)), 2, y + 3);
  }
  ctx.fillText('-' + Math.round((history * intervalMs) / 1000) + ' s', left, h - 3);
  ctx.fillText('now', w - 22, h - 3);
  const x = (i, n) => left + ((w - left) * (history - n + i)) / Math.max(1, history - 1);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color || COLORS[k % COLORS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === undefined) { pen = false; return; }
      const y = top + (h - top - bottom) * (1 - v / max);
      if (pen) ctx.lineTo(x(i, s.values.length), y);
      else ctx.moveTo(x(i, s.values.length), y);
      pen = true;
    });
    ctx.stroke();
  });
  const legend = document.getElementById(id + '-legend');
  if (legend) {
    legend.innerHTML = series
      .map((s, k) => '<span><i style="background:' + (s.color || COLORS[k % COLORS.length]) + '"></i>' +
        escapeHtml(s.name) + ' ' + fmt(s.values[s.values.length - 1]) + '</span>')
      .join('');
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (ch) => '&#' + ch.charCodeAt(0) + ';');
}

/** Horizontal bars, one row per group: its state, then each ring's fill. */
function groupBars(groups) {
  const c = document.getElementById('groups');
  const ctx = c.getContext('2d');
  const rowH = 34;
  c.height = Math.max(40, groups.length * rowH + 8);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.font = '12px sans-serif';
  if (groups.length === 0) {
    ctx.fillStyle = '#888';
    ctx.fillText('no process groups', 8, 24);
    return;
  }
  groups.forEach((g, i) => {
    const y = 4 + i * rowH;
    const color = g.state === 'running' ? '#2ca02c' : g.state === 'stopping' ? '#ff7f0e' : '#d62728';
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(12, y + 14, 7, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = '#222';
    ctx.fillText(g.name + ' (' + g.state + ', pid ' + g.pid + ', ' + g.restarts + ' restarts)', 26, y + 12);
    const bar = (fill, x, label) => {
      const bw = 160, frac = Math.min(1, fill / g.ringBytes);
      ctx.fillStyle = '#eee';
      ctx.fillRect(x, y + 18, bw, 10);
      ctx.fillStyle = frac > 0.8 ? '#d62728' : '#1f77b4';
      ctx.fillRect(x, y + 18, Math.max(1, bw * frac), 10);
      ctx.fillStyle = '#555';
      ctx.fillText(label + ' ' + (frac * 100).toFixed(1) + '%', x + bw + 6, y + 27);
    };
    bar(g.inboundFill, 26, 'to group');
    bar(g.outboundFill, 290, 'to main');
  });
}

function peerTable(peers) {
  const rows = peers.map((p) => '<tr><td>' + escapeHtml(p.address) + '</td><td>' + fmt(p.rttMs) + '</td><td>' +
    (p.loss * 100).toFixed(1) + '%</td><td>' + fmt(p.retransmitsPerSecond) + '</td><td>' + p.retransmissions +
    '</td><td>' + p.pendingBytes + '</td></tr>');
  document.getElementById('peer-rows').innerHTML = rows.join('') ||
    '<tr><td colspan="6">no peers connected</td></tr>';
}

function draw() {
  const typeNames = new Map();
  for (const s of samples) for (const [n, v] of Object.entries(s.types)) typeNames.set(n, (typeNames.get(n) || 0) + v);
  const top = [...typeNames.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map((e) => e[0]);
  lines('types', top.map((n) => ({ name: n, values: samples.map((s) => s.types[n] || 0) })));
  lines('queue', [
    { name: 'max', values: samples.map((s) => s.queue.max) },
    { name: 'at sample', values: samples.map((s) => s.queue.last) },
  ]);
  lines('tick', [
    { name: 'max ms', values: samples.map((s) => s.tickMs.max) },
    { name: 'mean ms', values: samples.map((s) => s.tickMs.mean) },
    { name: 'ticks/s', values: samples.map((s) => s.ticksPerSecond), color: '#bbb' },
  ]);
  const peerNames = [...new Set(samples.flatMap((s) => s.peers.map((p) => p.address)))].slice(0, 8);
  const of = (s, a) => s.peers.find((p) => p.address === a);
  lines('rtt', peerNames.map((a) => ({ name: a, values: samples.map((s) => of(s, a)?.rttMs) })));
  lines('loss', peerNames.map((a) => ({ name: a, values: samples.map((s) => {
    const p = of(s, a);
    return p === undefined ? undefined : p.loss * 100;
  }) })));
  lines('resent', peerNames.map((a) => ({ name: a, values: samples.map((s) => of(s, a)?.retransmitsPerSecond) })));
  const last = samples[samples.length - 1];
  groupBars(last ? last.groups : []);
  peerTable(last ? last.peers : []);
}

async function refresh() {
  try {
    const since = samples.length ? samples[samples.length - 1].t : 0;
    const r = await fetch('/data?since=' + since, { cache: 'no-store' });
    const d = await r.json();
    history = d.history;
    intervalMs = d.intervalMs;
    document.getElementById('who').textContent = 'pid ' + d.pid + ', ' + d.group;
    samples = samples.concat(d.samples).slice(-history);
    document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    draw();
  } catch (err) {
    document.getElementById('status').textContent = 'cannot reach the process: ' + err;
  }
}
refresh();
setInterval(refresh, 1000);
`;

const STYLE = `
body { font: 13px sans-serif; margin: 12px; color: #222; background: #f6f6f6; }
h1 { font-size: 16px; margin: 0 0 8px; } h2 { font-size: 13px; margin: 0 0 4px; }
section { background: #fff; border: 1px solid #ddd; padding: 8px; margin: 0 8px 8px 0; display: inline-block; vertical-align: top; }
.legend span { margin-right: 10px; white-space: nowrap; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 3px; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
#status { color: #888; margin-left: 8px; }
`;

function chart(id: string, title: string): string {
  return `<section><h2>${title}</h2><canvas id="${id}" width="460" height="150"></canvas><div class="legend" id="${id}-legend"></div></section>`;
}

/** The whole page, served at `/`. */
export const INSPECTOR_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tsage inspector</title><style>${STYLE}</style></head>
<body>
<h1>tsage inspector <small id="who"></small><span id="status">connecting...</span></h1>
${chart('types', 'Messages per second, by type')}
${chart('queue', 'Queue depth (messages waiting for the next tick)')}
${chart('tick', 'Tick time (ms) and ticks per second')}
<section><h2>Process groups: health and ring fill</h2><canvas id="groups" width="560" height="40"></canvas></section>
${chart('rtt', 'Peer round-trip time (ms)')}
${chart('loss', 'Peer packet loss (%)')}
${chart('resent', 'Peer retransmissions per second')}
<section><h2>Peers</h2><table><thead><tr><th>address</th><th>RTT ms</th><th>loss</th><th>resent/s</th><th>resent</th><th>pending bytes</th></tr></thead><tbody id="peer-rows"></tbody></table></section>
<script>${SCRIPT}</script>
</body></html>
`;
