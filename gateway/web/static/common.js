// Shared by the pages: CSRF-carrying requests, officer colours, map furniture (scale, legend,
// title). No inline script anywhere: the Content-Security-Policy forbids it.
'use strict';
const HS = {};
HS.csrf = document.querySelector('meta[name="csrf-token"]').content;
HS.post = (url, body) => fetch(url, {
  method: 'POST', credentials: 'same-origin',
  headers: {'Content-Type': 'application/json', 'X-CSRF-Token': HS.csrf},
  body: JSON.stringify(body)});
HS.PALETTE = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22',
  '#7f7f7f', '#ff7f0e', '#d62728', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173'];
HS._colours = new Map();
HS.colour = (who) => {
  if (!HS._colours.has(who)) HS._colours.set(who, HS.PALETTE[HS._colours.size % HS.PALETTE.length]);
  return HS._colours.get(who);
};
HS.esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g,
  c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
HS.time = (epoch) => new Date(epoch * 1000).toISOString().slice(11, 19) + 'Z';
HS.map = (id) => {
  const map = L.map(id, {preferCanvas: false});
  L.control.scale({imperial: false, position: 'bottomleft'}).addTo(map);
  return map;
};
HS.titleBox = (map, text) => {
  const c = L.control({position: 'topright'});
  c.onAdd = () => { const d = L.DomUtil.create('div', 'map-title'); d.id = 'map-title';
    d.textContent = text; return d; };
  c.addTo(map);
  return c;
};
// A legend naming which colour is which officer (or device).
HS.legend = (map, title) => {
  const c = L.control({position: 'bottomright'});
  c.onAdd = () => { const d = L.DomUtil.create('div', 'legend'); d.id = 'legend'; return d; };
  c.addTo(map);
  c.update = (entries) => {
    const d = document.getElementById('legend');
    d.innerHTML = '<b>' + HS.esc(title) + '</b><br>' + (entries.length ? entries.map(
      ([label, colour]) => '<i style="background:' + colour + '"></i>' + HS.esc(label)).join('<br>')
      : '<span class="muted">none</span>');
  };
  return c;
};
