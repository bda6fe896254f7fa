// Live map: an EventSource on /api/live/events. "snapshot" draws everything, "fixes" moves the
// markers (within the poll interval of a fix being stored), "fleet" refreshes the fleet table.
'use strict';
(() => {
  const map = HS.map('map');
  const title = HS.titleBox(map, 'Live');
  const legend = HS.legend(map, 'officers');
  const key = L.control({position: 'bottomleft'});
  key.onAdd = () => { const d = L.DomUtil.create('div', 'legend'); d.innerHTML =
    '<b>hot spots</b><br><i style="background:#2ca02c"></i>being patrolled now<br>'
    + '<i style="background:#9e9e9e"></i>nobody there now'; return d; };
  key.addTo(map);
  const markers = new Map();   // device_id -> {marker, trail, fix}
  let spotsLayer = null;
  let fitted = false;
  let fixCount = 0;
  // When each fix reached this page (fix id, epoch seconds): read by `hotspots bench web`.
  const arrivals = [];
  window.hsArrivals = arrivals;

  const who = (f) => f.officer || ('device ' + f.device_id);

  function place(f) {
    let m = markers.get(f.device_id);
    const colour = HS.colour(who(f));
    if (!m) {
      const marker = L.circleMarker([f.lat, f.lon], {radius: 7, color: '#000', weight: 1,
        fillColor: colour, fillOpacity: 1, className: 'hs-device'}).addTo(map);
      marker.bindTooltip(HS.esc(who(f)), {permanent: true, direction: 'right',
        className: 'officer-label', offset: [8, 0]});
      const trail = L.polyline([[f.lat, f.lon]], {color: colour, weight: 2, opacity: .6}).addTo(map);
      m = {marker, trail, fix: f};
      markers.set(f.device_id, m);
    } else if (f.tst >= m.fix.tst) {
      m.marker.setLatLng([f.lat, f.lon]);
      m.trail.addLatLng([f.lat, f.lon]);
      const pts = m.trail.getLatLngs();
      if (pts.length > 60) m.trail.setLatLngs(pts.slice(-60));
      m.fix = f;
    }
  }

  function drawPatrolled(patrolled) {
    const ul = document.getElementById('patrolled');
    const ids = Object.keys(patrolled).sort();
    ul.innerHTML = ids.length ? ids.map(id => '<li data-hotspot="' + HS.esc(id) + '"><b>' + HS.esc(id)
      + '</b>: ' + patrolled[id].map(HS.esc).join(', ') + '</li>').join('') : '<li class="muted">none</li>';
    document.body.dataset.patrolled = ids.join(',');
    if (spotsLayer) spotsLayer.eachLayer(l => l.setStyle({
      fillColor: patrolled[l.feature.properties.id] ? '#2ca02c' : '#9e9e9e'}));
  }

  function drawWho() {
    const rows = [...markers.values()].map(m => m.fix).sort((a, b) => who(a).localeCompare(who(b)));
    document.querySelector('#who tbody').innerHTML = rows.map(f => '<tr data-device="'
      + HS.esc(f.device_id) + '"><td>' + HS.esc(f.officer || '-') + '</td><td>' + HS.esc(f.device_id)
      + '</td><td>' + HS.esc(f.source || '-') + '</td><td>' + HS.time(f.tst) + '</td></tr>').join('');
    const seen = [...new Set(rows.map(who))];
    legend.update(seen.map(w => [w, HS.colour(w)]));
  }

  function drawFleet(fleet) {
    document.querySelector('#fleet tbody').innerHTML = fleet.devices.map(d => '<tr><td>'
      + HS.esc(d.device_id) + '</td><td>' + HS.esc(d.officer || '-') + '</td><td>'
      + (d.batt == null ? '-' : d.batt + '%') + '</td><td>' + d.states.map(s =>
        '<span class="state state-' + s.replace(/ /g, '-') + '">' + HS.esc(s) + '</span>').join(' ')
      + '</td></tr>').join('');
    document.getElementById('alerts').innerHTML = fleet.alerts.map(a => '<li>' + HS.esc(a) + '</li>').join('');
  }

  function fit() {
    const layers = [...markers.values()].map(m => m.marker);
    if (spotsLayer) layers.push(spotsLayer);
    if (!layers.length) { map.setView([51.5, 0], 13); return; }
    map.fitBounds(L.featureGroup(layers).getBounds(), {padding: [30, 30], maxZoom: 17});
    fitted = true;
  }

  const source = new EventSource('/api/live/events');
  source.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    if (spotsLayer) spotsLayer.remove();
    if (s.hotspots) {
      spotsLayer = L.geoJSON(s.hotspots, {style: {color: '#333', weight: 1, fillColor: '#9e9e9e',
        fillOpacity: .4, className: 'hs-hotspot'}, onEachFeature: (f, l) =>
        l.bindTooltip(HS.esc(f.properties.id), {permanent: true, direction: 'center',
          className: 'hotspot-label'})}).addTo(map);
    }
    s.fixes.forEach(place);
    drawWho(); drawPatrolled(s.patrolled);
    if (s.fleet) drawFleet(s.fleet);
    title.getContainer().textContent = 'Live, ' + new Date(s.now * 1000).toISOString().slice(0, 10)
      + ' (times UTC)' + (s.fence_set ? ', hot spots ' + s.fence_set.version : '');
    if (!fitted) fit();
    document.body.dataset.ready = '1';
  });
  source.addEventListener('fixes', (e) => {
    const s = JSON.parse(e.data);
    const now = Date.now() / 1000;
    for (const f of s.fixes) arrivals.push([f.id, now]);
    if (arrivals.length > 20000) arrivals.splice(0, arrivals.length - 20000);
    s.fixes.forEach(place);
    fixCount += s.fixes.length;
    document.body.dataset.fixes = fixCount;
    if (s.fixes.length) document.body.dataset.lastFixId = s.fixes[s.fixes.length - 1].id;
    drawWho(); drawPatrolled(s.patrolled);
    if (!fitted) fit();
  });
  source.addEventListener('fleet', (e) => drawFleet(JSON.parse(e.data)));
  source.addEventListener('ended', () => { source.close();
    document.getElementById('stream-state').textContent = 'session ended: log in again'; });
  source.addEventListener('problem', (e) => {
    document.getElementById('stream-state').textContent = JSON.parse(e.data).error; });
  source.onopen = () => { document.getElementById('stream-state').textContent = 'connected: updates as fixes arrive'; };
  source.onerror = () => { document.getElementById('stream-state').textContent = 'connection lost: retrying…'; };
  setInterval(() => { document.getElementById('clock').textContent = new Date().toISOString().slice(11, 19) + 'Z'; }, 1000);
})();
