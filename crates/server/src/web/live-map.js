// The dashboard's live lot map: follows each lot's /v1/lots/{id}/events (new counts, space states,
// unsure spaces, the new frame and its name for the label form), and turns a click on a bay into
// its select's choice.
document.querySelectorAll('section.lot').forEach(function (section) {
  if (section.dataset.live) return; section.dataset.live = '1';
  var source = new EventSource('/v1/lots/' + encodeURIComponent(section.dataset.lot) + '/events');
  source.addEventListener('counts', function (event) {
    var update = JSON.parse(event.data);
    ['free', 'occupied', 'unknown', 'unsure'].forEach(function (k) {
      var el = section.querySelector('[data-count="' + k + '"]'); if (el) el.textContent = update.counts.lot[k];
    });
    update.changes.forEach(function (c) {
      var p = section.querySelector('polygon[data-space="' + CSS.escape(c.space) + '"]'); if (p) p.dataset.seen = c.to;
    });
    (update.spaces || []).forEach(function (s) {
      var p = section.querySelector('polygon[data-space="' + CSS.escape(s.space) + '"]'); if (!p) return;
      // Reported unknown once seen: too unsure to count, and the reason says why.
      var unsure = s.state === 'unknown' && (p.dataset.seen === 'free' || p.dataset.seen === 'occupied');
      p.setAttribute('data-state', unsure ? 'unsure' : s.state);
      p.querySelector('title').textContent = 'Space ' + s.space + (unsure ? ': unsure, ' + s.reason : '');
    });
    var form = section.querySelector('form.label-frame[data-camera="' + CSS.escape(update.camera) + '"]');
    if (!form) return;
    form.elements.frame.value = update.at;
    form.querySelectorAll('image').forEach(function (img) {
      img.setAttribute('href', img.dataset.href + '?t=' + Date.now());
    });
  });
  section.querySelectorAll('form.label-frame').forEach(function (form) {
    function choice(space) { return form.querySelector('select[data-space="' + CSS.escape(space) + '"]'); }
    form.querySelectorAll('polygon[data-space]').forEach(function (p) {
      p.addEventListener('click', function () {
        var select = choice(p.dataset.space); if (!select) return;
        var order = p.dataset.seen === 'occupied' ? ['', 'free', 'occupied'] : ['', 'occupied', 'free'];
        select.value = order[(order.indexOf(select.value) + 1) % order.length];
        select.dispatchEvent(new Event('change', { bubbles: true }));
      });
    });
    form.addEventListener('change', function () {
      form.querySelectorAll('polygon[data-space]').forEach(function (p) {
        var select = choice(p.dataset.space);
        if (select && select.value) p.setAttribute('data-label', select.value); else p.removeAttribute('data-label');
      });
    });
  });
});
