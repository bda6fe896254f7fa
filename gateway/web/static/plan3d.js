// The 3D harm map: deck.gl (served from the virtualenv, no CDN) with cells extruded by harm and
// coloured by Gi* z, proposed hot spots outlined; the data comes from /api/plan/cells.
'use strict';
(() => {
  const el = document.getElementById('deck');
  const tip = document.getElementById('deck-tip');
  const colour = (z) => {
    const t = Math.max(-1, Math.min(1, z / 5));
    const a = [217, 217, 217], b = t < 0 ? [59, 111, 182] : [215, 48, 31], k = Math.abs(t);
    return [0, 1, 2].map(i => Math.round(a[i] + (b[i] - a[i]) * k)).concat([235]);
  };
  fetch('/api/plan/cells?' + el.dataset.query, {credentials: 'same-origin'})
    .then(r => r.json()).then(d => {
      if (d.error) { document.getElementById('deck-stats').textContent = d.error; return; }
      document.getElementById('deck-stats').textContent = d.months[0] + ' to ' + d.months[1]
        + ': ' + d.crimes + ' crimes, ' + Math.round(d.harm).toLocaleString() + ' harm-days, '
        + d.cells.length + ' cells of ' + d.cell_m + ' m, ' + d.hot + ' hot (Gi*, FDR)';
      const scale = 1500 / (d.max_harm || 1);
      new deck.Deck({
        parent: el,
        initialViewState: {longitude: d.centre[0], latitude: d.centre[1], zoom: 13.2, pitch: 55,
                           bearing: -25},
        controller: true,
        layers: [
          new deck.PolygonLayer({id: 'cells', data: d.cells, getPolygon: c => c.p, extruded: true,
            wireframe: false, getElevation: c => c.h * scale, getFillColor: c => colour(c.z),
            pickable: true, material: {ambient: 0.5, diffuse: 0.6, shininess: 20}}),
          new deck.PathLayer({id: 'hotspots', data: d.hotspots, getPath: h => h.path,
            getColor: [255, 200, 0], getWidth: 4, widthUnits: 'pixels'}),
        ],
        onHover: info => {
          if (info.object && info.object.p) {
            const c = info.object;
            tip.style.display = 'block';
            tip.style.left = (info.x + 12) + 'px'; tip.style.top = (info.y + 12) + 'px';
            tip.textContent = c.id + ': ' + c.c + ' crimes, ' + c.h + ' harm-days, Gi* z ' + c.z
              + (c.hot ? ' (hot)' : '');
          } else { tip.style.display = 'none'; }
        },
        onAfterRender: () => { document.body.dataset.rendered = String(d.cells.length); },
        onError: e => { document.body.dataset.error = String(e); },
      });
    });
})();
