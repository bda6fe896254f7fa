// The 2D harm map: every cell with crime, coloured by harm or by Gi* z, the proposed hot spots
// outlined with their ids, a legend, a title with the period, a scale. Cells are drawn on a
// canvas: a force's year is thousands of cells.
'use strict';
(() => {
  const el = document.getElementById('map');
  const map = HS.map('map');
  map.options.zoomSnap = 0.25;  // a town's cells fill the map, not a quarter of it
  const canvas = L.canvas({padding: 0.2});
  const title = HS.titleBox(map, 'Crime harm by cell');
  const HARM = ['#ffffcc', '#ffeda0', '#fed976', '#feb24c', '#fd8d3c', '#fc4e2a', '#e31a1c', '#b10026'];
  const zColour = (z) => {
    const t = Math.max(-1, Math.min(1, z / 5));
    const a = [217, 217, 217], b = t < 0 ? [59, 111, 182] : [215, 48, 31], k = Math.abs(t);
    return 'rgb(' + [0, 1, 2].map(i => Math.round(a[i] + (b[i] - a[i]) * k)).join(',') + ')';
  };
  let cells = null, maxHarm = 1;
  const harmColour = (h) => HARM[Math.min(HARM.length - 1, Math.floor(Math.sqrt(h / maxHarm) * HARM.length))];
  const legend = L.control({position: 'bottomright'});
  legend.onAdd = () => { const d = L.DomUtil.create('div', 'legend'); d.id = 'plan-legend'; return d; };
  legend.addTo(map);
  const select = document.getElementById('colour-by');
  const restyle = () => {
    if (!cells) return;
    const byZ = select.value === 'z';
    cells.eachLayer(l => l.setStyle({fillColor: byZ ? zColour(l.cell.z) : harmColour(l.cell.h)}));
    const d = document.getElementById('plan-legend');
    if (byZ) {
      d.innerHTML = '<b>Gi* z</b><br>' + [[-5, '≤ -5 (cold)'], [0, '0'], [2, '2'], [5, '≥ 5 (hot)']].map(
        ([z, label]) => '<i style="background:' + zColour(z) + '"></i>' + HS.esc(label)).join('<br>');
    } else {
      d.innerHTML = '<b>harm-days per cell</b><br>' + HARM.map((c, i) => '<i style="background:' + c
        + '"></i>' + HS.esc('≥ ' + Math.round(maxHarm * (i / HARM.length) ** 2))).join('<br>');
    }
    d.innerHTML += '<br><i class="outline"></i>proposed hot spot';
  };
  select.addEventListener('change', restyle);
  fetch('/api/plan/cells?' + el.dataset.query, {credentials: 'same-origin'})
    .then(r => r.json()).then(d => {
      if (d.error) { el.textContent = d.error; return; }
      maxHarm = d.max_harm || 1;
      document.getElementById('map-title').textContent = 'Crime harm by cell, ' + d.months[0]
        + ' to ' + d.months[1] + ' (' + d.cells.length + ' cells of ' + d.cell_m + ' m, '
        + d.hot + ' hot)';
      cells = L.featureGroup(d.cells.map(c => {
        const poly = L.polygon(c.p.map(([lon, lat]) => [lat, lon]), {renderer: canvas, weight: 0,
          fillOpacity: 0.75});
        poly.cell = c;
        poly.bindTooltip(HS.esc(c.id + ': ' + c.c + ' crimes, ' + c.h + ' harm-days, Gi* z ' + c.z
          + (c.hot ? ' (hot)' : '')));
        return poly;
      }));
      cells.addTo(map);
      const spots = L.geoJSON(d.proposals, {style: {color: '#111', weight: 2.5, fill: false,
        className: 'hs-proposal'},
        onEachFeature: (f, l) => l.bindTooltip(HS.esc(f.properties.id), {permanent: true,
          direction: 'top', className: 'hotspot-label'})}).addTo(map);
      const bounds = cells.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, {padding: [10, 10]});
      else map.setView([51.5, 0], 12);
      restyle();
      requestAnimationFrame(() => {
        document.body.dataset.cells = d.cells.length;
        document.body.dataset.proposals = d.proposals.features.length;
        document.body.dataset.ready = '1';
      });
    });
})();
