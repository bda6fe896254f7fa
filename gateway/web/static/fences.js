// Fence editor: Leaflet-Geoman draws and edits the hot spots; every change is sent to
// /api/fences/check (the project's validator and compiler) and the problems are shown on the
// shapes they belong to. Save stores a new version (with an audit trail); Publish sends the saved
// set to the trackers through the broker (supervisors only).
'use strict';
(() => {
  const el = document.getElementById('map');
  const canPublish = el.dataset.canPublish === 'yes';
  const map = HS.map('map');
  HS.titleBox(map, 'Hot spots editor');
  let shapes = [];          // [{layer, props, featureId}] in feature order
  let savedId = null;
  let savedVersion = null;
  let newCount = 0;
  let fittedOnce = false;
  const status = (text) => { document.getElementById('status').textContent = text; };

  map.pm.addControls({position: 'topleft', drawMarker: false, drawCircleMarker: false,
    drawPolyline: false, drawText: false, cutPolygon: false, rotateMode: false,
    drawRectangle: true, drawPolygon: true, drawCircle: true, editMode: true, dragMode: true,
    removalMode: true});
  map.pm.setGlobalOptions({allowSelfIntersection: true, snappable: false});

  function feature(s) {
    const props = Object.assign({}, s.props);
    if (s.layer instanceof L.Circle) {
      const c = s.layer.getLatLng();
      props.radius_m = Math.round(s.layer.getRadius() * 10) / 10;
      return {type: 'Feature', id: s.featureId, properties: props,
        geometry: {type: 'Point', coordinates: [c.lng, c.lat]}};
    }
    const f = s.layer.toGeoJSON(7);
    return {type: 'Feature', id: s.featureId, properties: props, geometry: f.geometry};
  }
  const collect = () => ({type: 'FeatureCollection', features: shapes.map(feature)});

  function describe(s) {
    return HS.esc((s.props.id || s.featureId || '(no id)') + (s.props.name ? ' — ' + s.props.name : ''));
  }

  function attach(layer, props, featureId) {
    const s = {layer, props: props || {}, featureId};
    shapes.push(s);
    layer.setStyle && layer.setStyle({color: '#1d3557', weight: 2, fillOpacity: .3});
    layer.on('pm:edit pm:dragend', check);
    layer.on('pm:remove', () => { shapes = shapes.filter(x => x !== s); check(); });
    layer.on('click', () => openProps(s));
    return s;
  }

  function openProps(s) {
    if (map.pm.globalEditModeEnabled() || map.pm.globalRemovalModeEnabled()) return;
    const p = s.props;
    const html = '<form class="props"><label>id <input name="id" value="' + HS.esc(p.id || s.featureId || p.fid || '')
      + '"></label><br><label>name <input name="name" value="' + HS.esc(p.name || '') + '"></label><br>'
      + '<label>density <select name="density">' + ['', 'low', 'medium', 'high', 'very_high'].map(d =>
        '<option' + (String(p.density || '') === d ? ' selected' : '') + ' value="' + d + '">' + (d || '(default)')
        + '</option>').join('') + '</select></label><br><button type="submit">Apply</button></form>';
    const popup = L.popup().setLatLng(s.layer.getBounds ? s.layer.getBounds().getCenter() : s.layer.getLatLng())
      .setContent(html).openOn(map);
    const form = popup.getElement().querySelector('form');
    // The Apply click must not fall through to the shape underneath (it would reopen this).
    L.DomEvent.disableClickPropagation(popup.getElement());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const data = new FormData(form);
      s.props = Object.assign({}, s.props, {id: data.get('id').trim(), name: data.get('name').trim()});
      // Left empty: the id the shape came with (the feature's own, or QGIS's fid) stands.
      if (!s.props.id) delete s.props.id;
      if (!s.props.name) delete s.props.name;
      if (data.get('density')) s.props.density = data.get('density'); else delete s.props.density;
      map.closePopup(); check();
    });
  }

  function showProblems(result) {
    shapes.forEach(s => { s.layer.unbindTooltip(); s.layer.setStyle && s.layer.setStyle({color: '#1d3557'}); });
    const byFeature = new Map();
    for (const p of result.problems || []) {
      if (!byFeature.has(p.feature)) byFeature.set(p.feature, []);
      byFeature.get(p.feature).push(p);
    }
    for (const [i, list] of byFeature) {
      const s = shapes[i];
      if (!s) continue;
      const error = list.some(p => p.level === 'error');
      s.layer.setStyle && s.layer.setStyle({color: error ? '#b00020' : '#c77700'});
      s.layer.bindTooltip(list.map(p => HS.esc(p.level + ': ' + p.message)).join('<br>'),
        {permanent: true, direction: 'top', className: 'problem-tip'}).openTooltip();
    }
    document.getElementById('problems').innerHTML = (result.problems || []).map(p =>
      '<li class="' + p.level + '">' + HS.esc(p.text) + '</li>').join('')
      + (result.compile_error ? '<li class="error">' + HS.esc(result.compile_error) + '</li>' : '');
    document.getElementById('compiled').textContent = result.ok
      ? 'version ' + result.version + ', ' + result.device_bytes + ' bytes on the device, '
        + result.hotspots + ' hot spots' : 'not compilable (see the problems)';
    document.body.dataset.checkVersion = result.version || '';
    document.body.dataset.errors = (result.problems || []).filter(p => p.level === 'error').length;
    document.getElementById('save').disabled = !result.ok;
  }

  let pending = null;
  function check() {
    const doc = collect();
    const mine = pending = HS.post('/api/fences/check', doc).then(r => r.json()).then(result => {
      if (mine === pending) showProblems(result);
    });
    const pub = document.getElementById('publish');
    if (pub) pub.disabled = true;
  }

  map.on('pm:create', (e) => {
    newCount += 1;
    let id = 'HS-NEW-' + newCount;
    while (shapes.some(s => (s.props.id || s.featureId) === id)) { newCount += 1; id = 'HS-NEW-' + newCount; }
    const s = attach(e.layer, {id}, undefined);
    check();
    openProps(s);
  });

  // A feature as a Leaflet layer: a Point with radius_m is a circle (as the compiler reads it).
  function build(f) {
    if (!f || typeof f !== 'object' || !f.geometry) return null;
    if (f.geometry.type === 'Point') {
      const [lon, lat] = f.geometry.coordinates;
      return L.circle([lat, lon], {radius: (f.properties || {}).radius_m || 20});
    }
    try { return L.geoJSON(f).getLayers()[0] || null; } catch (e) { return null; }
  }

  function addBuilt(built) {
    for (const [layer, f] of built) {
      layer.addTo(map);
      const props = Object.assign({}, f.properties || {});
      delete props.radius_m;
      attach(layer, props, f.id);
    }
  }

  // A file drawn elsewhere (geojson.io, QGIS) replaces the shapes on the map; Save keeps it.
  // It is checked as it is first, so a problem with the whole file (a projected CRS, not a
  // FeatureCollection) or a feature that cannot be drawn is said, and nothing is drawn wrongly.
  function openFile(file) {
    const refuse = (why) => { status('not opened: ' + file.name + ': ' + why);
      document.body.dataset.opened = 'refused'; };
    return file.text().then(text => {
      let doc;
      try { doc = JSON.parse(text); } catch (e) { refuse('not JSON (' + e.message + ')'); return; }
      return HS.post('/api/fences/check', doc).then(r => r.json()).then(result => {
        const whole = (result.problems || []).filter(p => p.level === 'error' && !(p.feature >= 0));
        if (whole.length || result.compile_error && !(result.problems || []).length) {
          refuse(whole.map(p => p.message).join('; ') || result.compile_error); return;
        }
        const features = Array.isArray(doc.features) ? doc.features : [];
        const built = features.map(f => [build(f), f]);
        const lost = built.map(([layer], i) => layer ? null : i).filter(i => i !== null);
        if (lost.length) {
          const said = (result.problems || []).filter(p => lost.includes(p.feature)).map(p => p.text);
          refuse((said.length ? said : lost.map(i => 'feature ' + i + ' has no geometry to draw'))
            .join('; '));
          return;
        }
        shapes.forEach(s => s.layer.remove());
        shapes = [];
        if (built.length) map.fitBounds(L.featureGroup(built.map(b => b[0])).getBounds(), {padding: [40, 40]});
        addBuilt(built);
        status('opened ' + file.name + ': ' + built.length + ' hot spots (not saved yet)');
        document.body.dataset.opened = String(built.length);
        check();
      });
    });
  }
  const opener = document.getElementById('open-file');
  opener.addEventListener('change', () => {
    if (opener.files.length) openFile(opener.files[0]).finally(() => { opener.value = ''; });
  });

  function load(data) {
    shapes.forEach(s => s.layer.remove());
    shapes = [];
    // Leaflet 1.6 cannot restyle a vector layer added before the map has a view: build the
    // layers, fit the view to them, then add them.
    const built = [];
    if (data.set) {
      for (const f of data.set.geojson.features) {
        const layer = build(f);
        if (layer) built.push([layer, f]);
      }
      savedId = data.set.id; savedVersion = data.set.version;
    }
    if (!fittedOnce) {
      if (built.length) {
        map.fitBounds(L.featureGroup(built.map(b => b[0])).getBounds(), {padding: [40, 40]});
      } else {
        map.setView([51.5, 0], 15);
      }
      fittedOnce = true;
    }
    addBuilt(built);
    document.getElementById('in-force').textContent = data.in_force ? data.in_force.version : 'none';
    document.querySelector('#history tbody').innerHTML = data.history.map(h => '<tr><td>' + h.id
      + '</td><td><code>' + HS.esc(h.version) + '</code></td><td>' + h.device_bytes + '</td><td>'
      + HS.esc(h.created_by) + '</td><td>' + (h.published_at == null ? '-' : HS.esc(h.published_by)
      + ' ' + new Date(h.published_at * 1000).toISOString().slice(0, 16) + 'Z') + '</td></tr>').join('');
    document.querySelector('#changes tbody').innerHTML = data.edits.map(e => '<tr><td>' + HS.esc(e.time)
      + '</td><td>' + HS.esc(e.username) + '</td><td>' + HS.esc(e.hotspot) + '</td><td>'
      + HS.esc(e.change) + '</td></tr>').join('');
    if (data.check) showProblems(data.check);
    document.body.dataset.ready = '1';
  }

  function refresh() {
    return fetch('/api/fences', {credentials: 'same-origin'}).then(r => r.json()).then(load);
  }

  document.getElementById('save').addEventListener('click', () => {
    HS.post('/api/fences/save', collect()).then(r => r.json().then(j => [r.ok, j])).then(([ok, j]) => {
      if (!ok) { status(j.error); if (j.check) showProblems(j.check); return; }
      savedId = j.id; savedVersion = j.version;
      status('saved as set ' + j.id + ' (version ' + j.version + '): '
        + (j.changes.map(c => c.join(' ')).join(', ') || 'no change'));
      document.body.dataset.savedId = j.id;
      refresh().then(() => { const pub = document.getElementById('publish'); if (pub) pub.disabled = false; });
    });
  });
  if (canPublish) {
    document.getElementById('publish').addEventListener('click', () => {
      status('publishing…');
      HS.post('/api/fences/publish', {id: savedId}).then(r => r.json().then(j => [r.ok, j])).then(([ok, j]) => {
        if (!ok) { status('not published: ' + j.error); return; }
        status('published version ' + j.version + ' on ' + j.topic + ' (' + j.bytes + ' bytes)');
        document.body.dataset.published = j.version;
        refresh();
      });
    });
  }
  window.hsEditor = {map, collect};
  refresh();
})();
