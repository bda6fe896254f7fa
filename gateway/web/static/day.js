// The day's map: hot spots coloured by patrol-minutes, each officer's tracks in their own colour
// with their name at the end, a legend naming both, the date and a scale.
'use strict';
(() => {
  const t0 = performance.now();
  const el = document.getElementById('map');
  const date = el.dataset.date;
  const map = HS.map('map');
  HS.titleBox(map, 'Hot spots, ' + date + ' (' + (el.dataset.tz || 'UTC') + ')');
  const officers = HS.legend(map, 'officers');
  fetch('/api/day?date=' + encodeURIComponent(date), {credentials: 'same-origin'})
    .then(r => r.json()).then(d => {
      const t1 = performance.now();
      if (d.error) { el.textContent = d.error; return; }
      const minutes = Object.fromEntries(d.hotspots.map(s => [s.hotspot, s.patrol_minutes]));
      const ramp = d.ramp || [];
      const colourFor = (m) => {
        if (!(m > 0)) return '#9e9e9e';
        for (let i = ramp.length - 1; i >= 0; i--) if (m >= ramp[i][0]) return ramp[i][1];
        return ramp.length ? ramp[0][1] : '#fc4e2a';
      };
      const spots = L.geoJSON(d.hotspot_shapes, {style: f => ({color: '#333', weight: 1,
        fillColor: colourFor(minutes[f.properties.id]), fillOpacity: .7, className: 'hs-hotspot'}),
        onEachFeature: (f, l) => l.bindTooltip(HS.esc(f.properties.id + ': '
          + (minutes[f.properties.id] || 0) + ' min'), {permanent: true, direction: 'center',
          className: 'hotspot-label'})});
      const layers = [spots];
      const seen = [];
      for (const t of d.tracks) {
        const colour = HS.colour(t.label);
        if (!seen.includes(t.label)) seen.push(t.label);
        // A segment of one fix is a dot: a one-point polyline draws nothing.
        layers.push((t.coords.length > 1
          ? L.polyline(t.coords, {color: colour, weight: 2, className: 'hs-track'})
          : L.circleMarker(t.coords[0], {radius: 4, color: colour, weight: 2, className: 'hs-track'}))
          .bindTooltip(HS.esc(t.label + ' (' + t.device_id + ')')));
      }
      // Officer names at the end of each officer's last segment.
      const last = new Map();
      d.tracks.forEach(t => last.set(t.label, t.coords[t.coords.length - 1]));
      for (const [label, at] of last) {
        layers.push(L.circleMarker(at, {radius: 3, color: HS.colour(label)})
          .bindTooltip(HS.esc(label), {permanent: true, direction: 'right', className: 'officer-label'}));
      }
      const group = L.featureGroup(layers);
      if (group.getBounds().isValid()) map.fitBounds(group.getBounds(), {padding: [20, 20]});
      else map.setView([51.5, 0], 13);
      group.addTo(map);
      officers.update(seen.map(l => [l, HS.colour(l)]));
      const patrol = L.control({position: 'bottomleft'});
      patrol.onAdd = () => { const div = L.DomUtil.create('div', 'legend'); div.id = 'patrol-legend';
        div.innerHTML = '<b>hot spot patrol-minutes</b><br>' + (d.ramp_labels || []).map(
          ([c, label]) => '<i style="background:' + c + '"></i>' + HS.esc(label)).join('<br>');
        return div; };
      patrol.addTo(map);
      requestAnimationFrame(() => {
        document.body.dataset.tracks = d.tracks.length;
        document.body.dataset.fetchMs = Math.round(t1 - t0);
        document.body.dataset.renderMs = Math.round(performance.now() - t0);
        document.body.dataset.ready = '1';
      });
    });
})();
