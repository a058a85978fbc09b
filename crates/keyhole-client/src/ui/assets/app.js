// Keyhole's local viewer. Everything shown here was verified and decrypted by this device's
// client; the page talks to it alone.
'use strict';

const main = document.getElementById('main');
let timeline = null;
const filters = { camera: '', kind: '', date: '' };

// Builds an element; text is always set as text, never parsed as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) node.append(c);
  return node;
}

// A page is shown only if no later one began while it was fetching: clicks and navigation
// overlap, and a slow, stale answer must not replace a newer page (or its status line).
let renders = 0;
function begin() {
  const mine = ++renders;
  return () => mine === renders;
}

function when(ms) {
  return new Date(ms).toLocaleString();
}

function capitalized(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function localDate(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

const STATE_TEXT = {
  verified: 'Verified',
  checking: 'Checking the whole clip…',
  unchecked: 'Not checked in full',
  tampered: 'Tampered',
  missing: 'Missing',
  recording: 'Clip still recording',
  none: 'No clip',
};

function badge(state) {
  return el('span', { class: `badge ${state}`, text: STATE_TEXT[state] || state });
}

function cameraName(id) {
  const c = timeline.cameras.find((c) => c.id === id);
  return c ? c.name : id;
}

// A camera's name as an event card shows it: marked when the camera was removed.
function cameraLabel(id) {
  const c = timeline.cameras.find((c) => c.id === id);
  return c && c.removed ? `${c.name} (removed)` : cameraName(id);
}

// An event's length in words: "4.0 s", "1 min 30 s".
function duration(ms) {
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

// The end of a local day (yyyy-mm-dd), in ms: where a jump to that day starts.
function endOfDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d + 1).getTime();
}

function pageUrl(refresh, before) {
  const q = new URLSearchParams();
  if (refresh) q.set('refresh', 'true');
  if (filters.camera) q.set('camera', filters.camera);
  if (before) q.set('before', String(before));
  return `/api/timeline?${q}`;
}

// The newest page (or, with a day picked, the page that ends with that day), after the device
// has caught up with what is new on each camera.
async function load(refresh) {
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(el('p', { class: 'note', text: 'Checking what is new on every camera…' }));
  const answer = await fetch(pageUrl(refresh, filters.date ? endOfDay(filters.date) : null));
  const body = await answer.json();
  if (!answer.ok) {
    main.replaceChildren(el('p', { class: 'reason', role: 'alert', text: body.error || 'Failed.' }));
    main.setAttribute('aria-busy', 'false');
    return;
  }
  timeline = body;
  remember(timeline.events);
  // Changes to the account that its devices and cameras did not make.
  timeline.foreign = (await getJson('/api/audit').catch(() => [])).filter((e) => !e.yours).length;
  route();
}

// The next, older page, added below what is shown.
async function loadOlder() {
  const body = await getJson(pageUrl(false, timeline.next_before));
  remember(body.events);
  timeline.events.push(...body.events);
  timeline.next_before = body.next_before;
  showTimeline();
}

function showTimeline() {
  begin();
  const form = el('form', { class: 'filters', 'aria-label': 'Filter events' });
  const cameraSelect = el('select', { id: 'filter-camera' }, el('option', { value: '', text: 'All cameras' }));
  for (const c of timeline.cameras) {
    cameraSelect.append(el('option', { value: c.id, text: c.removed ? `${c.name} (removed)` : c.name }));
  }
  const kinds = [...new Set(timeline.events.map((e) => e.kind))].sort();
  const kindSelect = el('select', { id: 'filter-kind' }, el('option', { value: '', text: 'All kinds' }));
  for (const k of kinds) kindSelect.append(el('option', { value: k, text: k }));
  const dateInput = el('input', { id: 'filter-date', type: 'date' });
  cameraSelect.value = filters.camera;
  kindSelect.value = filters.kind;
  dateInput.value = filters.date;
  form.append(
    el('label', {}, 'Camera', cameraSelect),
    el('label', {}, 'Kind', kindSelect),
    el('label', {}, 'Day', dateInput),
  );
  // The kind is picked among what is shown; a camera or a day loads its own page.
  kindSelect.addEventListener('change', () => { filters.kind = kindSelect.value; showTimeline(); });
  cameraSelect.addEventListener('change', () => { filters.camera = cameraSelect.value; load(false); });
  dateInput.addEventListener('change', () => { filters.date = dateInput.value; load(false); });

  const parts = [el('h2', { class: 'visually-hidden', text: 'Events' }), form];
  if (timeline.offline) {
    parts.push(el('p', { class: 'note offline', role: 'status', text: `${capitalized(timeline.offline)}: the server cannot be reached; shown as this device last verified it.` }));
  }
  if (timeline.foreign) {
    parts.push(el('p', { class: 'problems', role: 'alert', id: 'foreign-changes' },
      `${timeline.foreign} change(s) to this account were not made by its devices or cameras. `,
      el('a', { href: '#/audit', text: 'See the audit log' })));
  }
  const problems = timeline.problems.filter((p) => !filters.camera || p.camera === filters.camera);
  if (problems.length) {
    const list = el('ul');
    for (const p of problems) {
      list.append(el('li', {
        class: 'problem',
        text: `${cameraName(p.camera)}${p.object ? ` — object ${p.object}` : ''}: ${p.problem}`,
      }));
    }
    parts.push(el('section', { class: 'problems', role: 'alert' },
      el('h2', { text: 'The server showed footage that does not verify' }), list));
  }
  if (filters.camera && filters.date) parts.push(recordingAxis(filters.camera, filters.date));

  const shown = timeline.events.filter((e) =>
    (!filters.camera || e.camera === filters.camera) &&
    (!filters.kind || e.kind === filters.kind) &&
    (!filters.date || localDate(e.started_at) === filters.date));
  const list = el('ul', { class: 'events', 'aria-label': 'Events, newest first' });
  for (const e of shown) {
    const thumb = e.thumbnail
      ? el('img', { src: `/api/thumbnails/${e.event}`, alt: `${e.kind} at ${cameraName(e.camera)}, ${when(e.started_at)}`, loading: 'lazy' })
      : el('div', { class: 'nothumb', role: 'img', 'aria-label': 'No thumbnail' });
    const info = el('div', { class: 'info' },
      el('span', { class: 'what', text: e.kind }),
      el('span', { class: 'where', text: cameraLabel(e.camera) }),
      el('time', { class: 'when', datetime: new Date(e.started_at).toISOString(), text: when(e.started_at) }),
      el('span', { class: 'duration', text: e.duration_ms ? duration(e.duration_ms) : '' }),
      badge(e.clip_state));
    if (e.clip_problem) info.append(el('span', { class: 'reason', text: e.clip_problem }));
    if (e.note) info.append(el('span', { class: 'when', text: e.note }));
    const body = e.clip && e.clip_state === 'verified'
      ? el('a', { href: `#/clip/${e.camera}/${e.clip}/${e.event}/${((e.clip_offset_ms || 0) / 1000).toFixed(1)}`, 'aria-label': `Play the ${e.kind} clip from ${when(e.started_at)}` }, thumb, info)
      : el('div', { class: 'body' }, thumb, info);
    list.append(el('li', { class: 'event', 'data-state': e.clip_state, 'data-kind': e.kind, 'data-event': e.event }, body));
  }
  parts.push(shown.length ? list : el('p', { class: 'note', text: 'No events match.' }));
  // Older events stay on the device until asked for; a day past the loaded ones needs more.
  const lastShown = timeline.events.length ? timeline.events[timeline.events.length - 1].started_at : null;
  const dayDone = filters.date && lastShown && localDate(lastShown) < filters.date;
  if (timeline.next_before && !dayDone) {
    const older = el('button', { type: 'button', id: 'older', text: 'Older events' });
    older.addEventListener('click', () => loadOlder().catch((err) => alertIn(main, err)));
    parts.push(older);
  }
  main.replaceChildren(...parts);
  main.setAttribute('aria-busy', 'false');
}

function alertIn(where, err) {
  where.append(el('p', { class: 'reason', role: 'alert', text: String(err.message || err) }));
}

// A camera's recordings over one day on a time axis: a click anywhere on it plays the recording
// of that moment from there; each recording is also a link (for the keyboard), from its start.
function recordingAxis(camera, day) {
  const from = endOfDay(day) - 24 * 3600 * 1000;
  const to = endOfDay(day);
  const axis = el('div', { class: 'axis', role: 'group', 'aria-label': `Recordings of ${cameraName(camera)} on ${day}` });
  const section = el('section', { class: 'recordings' }, el('h2', { text: 'Recordings' }), axis);
  getJson(`/api/recordings/${camera}?from=${from}&to=${to}`).then((clips) => {
    if (!clips.length) { axis.append(el('p', { class: 'note', text: 'No recordings this day.' })); return; }
    const endOf = (c) => Math.min(c.end || c.start + 60000, to);
    for (const c of clips) {
      const segment = el('a', {
        class: `segment ${c.state}`,
        href: `#/clip/${camera}/${c.clip}/`,
        'data-clip': c.clip,
        'aria-label': `Recording from ${when(c.start)} (${STATE_TEXT[c.state] || c.state})`,
      });
      segment.style.left = `${((c.start - from) / (to - from)) * 100}%`;
      segment.style.width = `${Math.max(((endOf(c) - c.start) / (to - from)) * 100, 0.1)}%`;
      axis.append(segment);
    }
    axis.addEventListener('click', (event) => {
      event.preventDefault();
      const box = axis.getBoundingClientRect();
      const at = from + ((event.clientX - box.left) / box.width) * (to - from);
      const c = [...clips].reverse().find((x) => x.start <= at) || clips[0];
      const offset = Math.max(0, Math.min(at, endOf(c)) - c.start) / 1000;
      location.hash = `#/clip/${camera}/${c.clip}/-/${offset.toFixed(1)}`;
    });
  }).catch((err) => alertIn(axis, err));
  return section;
}

function showClip(camera, clip, eventId, startAt) {
  begin();
  const e = timeline.events.find((x) => x.event === eventId) || {};
  const video = el('video', {
    id: 'player', controls: true, preload: 'metadata', playsinline: true,
    src: `/api/clips/${camera}/${clip}`,
    'aria-label': `Clip from ${cameraName(camera)}`,
  });
  main.replaceChildren(el('section', { class: 'player' },
    el('p', {}, el('a', { href: '#/', text: '← All events' })),
    el('h2', { text: `${capitalized(e.kind || 'clip')} — ${cameraName(camera)}` }),
    el('p', { id: 'clip-state' }, e.started_at ? el('time', { text: when(e.started_at) }) : '', ' ', badge('checking')),
    video));
  main.setAttribute('aria-busy', 'false');
  const start = Number(startAt);
  if (start > 0) video.addEventListener('loadedmetadata', () => { video.currentTime = start; }, { once: true });
  checkClip(camera, clip, e, video);
}

// The whole clip is checked against the camera's signature while it plays, and every piece
// played is bound to it: the badge says so only once that check is done.
async function checkClip(camera, clip, e, video) {
  const answer = await fetch(`/api/clips/${camera}/${clip}/check`);
  const body = await answer.json().catch(() => ({}));
  const state = answer.ok ? body.state : 'unchecked';
  const line = document.getElementById('clip-state');
  if (!line || video.getAttribute('src') === null) return;
  line.querySelector('.badge').replaceWith(badge(state));
  if (state === 'tampered' || state === 'unchecked') {
    const reason = body.reason || body.error || 'the clip could not be checked';
    line.append(el('span', { class: 'reason', role: 'alert', text: reason }));
    if (state === 'tampered') {
      video.pause();
      video.removeAttribute('src');
      video.load();
      e.clip_state = 'tampered';
      e.clip_problem = reason;
      timeline.problems.push({ camera, object: clip, problem: reason });
    }
  }
}

async function getJson(path) {
  const answer = await fetch(path);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || `${path}: ${answer.status}`);
  return body;
}

async function showCameras(message) {
  const current = begin();
  const cameras = await getJson('/api/cameras');
  const list = el('ul', { class: 'rows', 'aria-label': 'Cameras' });
  for (const c of cameras) {
    const state = (c.removed ? 'Removed, footage kept' : `Active, key epoch ${c.epoch}`)
      + (c.shared_by ? ` · shared with you by ${c.shared_by}` : '');
    const last = (c.last_captured ? `newest #${c.last_sequence}, captured ${when(c.last_captured)}` : 'nothing uploaded yet')
      + (c.heard ? ` · last heard ${when(c.heard)}` : ' · never heard from');
    const row = el('li', { class: 'row', 'data-camera': c.id, 'data-removed': String(c.removed) },
      el('div', { class: 'grow' },
        el('strong', { text: c.name }),
        el('span', { class: 'muted', text: `${state} · ${last}` }),
        c.stale_epoch ? el('span', { class: 'reason', text: 'Still sealing to an old key: its newest record may be withheld.' }) : '',
        c.withheld_after ? el('span', { class: 'reason', text: `The server does not show #${c.withheld_after}, which this device verified or the camera signed that it delivered: it is withholding the newest recordings.` }) : '',
        c.silent_since ? el('span', { class: 'reason', text: `Silent since ${when(c.silent_since)}, longer than the camera promised: it may be offline, or the server may be withholding what it sends.` }) : '',
        c.problem ? el('span', { class: 'reason', text: c.problem }) : ''));
    if (!c.removed) {
      row.append(el('a', { href: `#/live/${c.id}`, class: 'button', text: 'Watch live', 'aria-label': `Watch ${c.name} live` }));
      if (!c.shared_by) {
        const remove = el('button', { type: 'button', class: 'danger', text: 'Remove…', 'aria-label': `Remove ${c.name}` });
        remove.addEventListener('click', () => confirmRemove(c));
        row.append(remove);
      }
    }
    list.append(row);
  }
  const nameInput = el('input', { id: 'pair-name', required: true, maxlength: '64', placeholder: 'Porch' });
  const pairForm = el('form', { class: 'filters', 'aria-label': 'Pair a camera' },
    el('label', {}, 'New camera\'s name', nameInput),
    el('button', { type: 'submit', text: 'Pair a camera' }));
  pairForm.addEventListener('submit', (event) => { event.preventDefault(); pair(nameInput.value); });
  const parts = [el('h2', { text: 'Cameras' })];
  if (message) parts.push(el('p', { class: 'status', role: 'status', text: message }));
  parts.push(pairForm);
  parts.push(cameras.length ? list : el('p', { class: 'note', text: 'No cameras yet: pair one with `keyhole pair`.' }));
  if (!current()) return;
  main.replaceChildren(...parts);
}

function confirmRemove(camera) {
  const keep = el('input', { type: 'radio', name: 'footage', value: 'keep', id: 'footage-keep', checked: true });
  const del = el('input', { type: 'radio', name: 'footage', value: 'delete', id: 'footage-delete' });
  const confirm = el('button', { type: 'submit', class: 'danger', text: `Remove ${camera.name}` });
  const cancel = el('button', { type: 'button', text: 'Cancel' });
  const form = el('form', { method: 'dialog' },
    el('h2', { text: `Remove ${camera.name}?` }),
    el('p', { text: 'It stops recording for this account and its credential is revoked. This cannot be undone. To give the camera to someone else, remove it, reset it, and let them pair it.' }),
    el('fieldset', {},
      el('legend', { text: 'Its recordings' }),
      el('label', { for: 'footage-keep' }, keep, ' Keep them (they keep opening on your devices)'),
      el('label', { for: 'footage-delete' }, del, ' Delete them, with its records and keys, for good')),
    el('div', { class: 'actions' }, cancel, confirm));
  const dialog = el('dialog', { id: 'remove-dialog', 'aria-label': `Remove ${camera.name}` }, form);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const footage = del.checked ? 'delete' : 'keep';
    confirm.disabled = true;
    const answer = await fetch(`/api/cameras/${camera.id}/remove`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-keyhole-ui': '1' },
      body: JSON.stringify({ footage }),
    });
    dialog.close();
    timeline = null;
    const done = answer.ok
      ? `${camera.name} was removed; its recordings were ${footage === 'keep' ? 'kept' : 'deleted'}.`
      : `${camera.name} was not removed: ${(await answer.json().catch(() => ({}))).error || answer.status}`;
    showCameras(done);
  });
  document.body.append(dialog);
  dialog.showModal();
}

// A confirmation dialog; `act` runs on confirm and returns the message to show.
function confirmDialog(title, text, confirmText, extra, act) {
  const confirm = el('button', { type: 'submit', class: 'danger', text: confirmText });
  const cancel = el('button', { type: 'button', text: 'Cancel' });
  const form = el('form', { method: 'dialog' }, el('h2', { text: title }), el('p', { text }),
    ...extra, el('div', { class: 'actions' }, cancel, confirm));
  const dialog = el('dialog', { 'aria-label': title }, form);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    confirm.disabled = true;
    const message = await act();
    dialog.close();
    await message();
  });
  document.body.append(dialog);
  dialog.showModal();
}

async function post(path, body) {
  const answer = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-keyhole-ui': '1' },
    body: JSON.stringify(body),
  });
  const reply = await answer.json().catch(() => ({}));
  return { ok: answer.ok, reply };
}

// Shows a pairing code for a new camera (text and QR code) and waits for it to register.
async function pair(name) {
  const { ok, reply } = await post('/api/pairing', { name });
  if (!ok) { showCameras(`Pairing did not start: ${reply.error || 'failed'}`); return; }
  const status = el('p', { class: 'status', role: 'status', text: `Waiting for ${name} to register…` });
  main.replaceChildren(el('section', { class: 'pairing' },
    el('h2', { text: `Pair ${name}` }),
    el('p', { text: 'Show this QR code to the camera, or give it the code (keyhole-camera pair -). It pins this account and the server; the camera proves it read it.' }),
    el('img', { src: `/api/pairing/qr.svg?${Date.now()}`, alt: 'Pairing code as a QR code', width: '240', height: '240' }),
    el('p', {}, el('code', { id: 'pairing-code', text: reply.code })),
    status));
  for (;;) {
    if (!location.hash.startsWith('#/cameras')) return;
    const answer = await fetch('/api/pairing/finish', { method: 'POST', headers: { 'x-keyhole-ui': '1' } });
    if (answer.status === 202) continue;
    const body = await answer.json().catch(() => ({}));
    timeline = null;
    showCameras(answer.ok ? `${body.name} was paired.` : `Pairing failed: ${body.error || answer.status}`);
    return;
  }
}

async function showDevices(message) {
  const current = begin();
  const devices = await getJson('/api/devices');
  const list = el('ul', { class: 'rows', 'aria-label': 'Devices' });
  for (const d of devices) {
    const row = el('li', { class: 'row', 'data-device': d.id },
      el('div', { class: 'grow' },
        el('strong', { text: d.this_device ? `${d.name} (this device)` : d.name }),
        el('span', { class: 'muted', text: `added ${when(d.added_at)}` + (d.this_device ? ''
          : d.log_verified_at ? ` · account history last verified ${when(d.log_verified_at)}`
            : ' · has not reported the account history it verified') })));
    if (!d.this_device) {
      const revoke = el('button', { type: 'button', class: 'danger', text: 'Revoke…', 'aria-label': `Revoke ${d.name}` });
      revoke.addEventListener('click', () => confirmDialog(`Revoke ${d.name}?`,
        'Its credentials stop working, and every camera gets a new key, so nothing recorded from now on opens on it. Use this for a lost, stolen or sold device.',
        `Revoke ${d.name}`, [], async () => {
          const { ok, reply } = await post(`/api/devices/${d.id}/revoke`, {});
          return () => showDevices(ok
            ? `${d.name} was revoked; ${reply.cameras_rekeyed} camera(s) got a new key.`
            : `${d.name} was not revoked: ${reply.error || 'failed'}`);
        }));
      row.append(revoke);
    }
    list.append(row);
  }
  const parts = [el('h2', { text: 'Devices' })];
  if (message) parts.push(el('p', { class: 'status', role: 'status', text: message }));
  parts.push(list);

  // Devices waiting to join: compare the code on both screens, then add or refuse.
  const waiting = await getJson('/api/enrollments');
  const check = el('button', { type: 'button', text: 'Check for waiting devices' });
  check.addEventListener('click', () => showDevices());
  const joining = el('ul', { class: 'rows', 'aria-label': 'Devices waiting to join' });
  for (const w of waiting) {
    const compare = el('button', { type: 'button', text: 'Compare codes…', 'aria-label': `Compare codes with ${w.name}` });
    compare.addEventListener('click', () => approve(w));
    joining.append(el('li', { class: 'row', 'data-enrollment': w.id },
      el('div', { class: 'grow' }, el('strong', { text: w.name }), el('span', { class: 'muted', text: `device ${w.device}` })),
      compare));
  }
  parts.push(el('h3', { text: 'Add a device' }),
    el('p', { class: 'muted', text: 'Run `keyhole join` on the new device; it then appears here.' }),
    waiting.length ? joining : el('p', { class: 'note', text: 'No device is waiting.' }), check);
  if (!current()) return;
  main.replaceChildren(...parts);
}

async function approve(waiting) {
  const { ok, reply } = await post(`/api/enrollments/${waiting.id}/answer`, {});
  if (!ok) { showDevices(`Could not answer ${waiting.name}: ${reply.error || 'failed'}`); return; }
  const decide = async (same) => {
    dialog.close();
    const result = await post(`/api/enrollments/${waiting.id}/decide`, { same_code: same });
    showDevices(!result.ok ? `${waiting.name} was not added: ${result.reply.error || 'failed'}`
      : result.reply.enrolled ? `${waiting.name} was added; it now opens every camera's whole history.`
        : 'Nothing was enrolled: the codes differ. Someone (possibly the server) is between the two devices.');
  };
  const same = el('button', { type: 'button', class: 'danger', text: `Same code: add ${reply.name}` });
  const differ = el('button', { type: 'button', text: 'The codes differ' });
  same.addEventListener('click', () => decide(true));
  differ.addEventListener('click', () => decide(false));
  const dialog = el('dialog', { 'aria-label': `Add ${reply.name}` },
    el('h2', { text: `Add ${reply.name}?` }),
    el('p', { text: `Does ${reply.name} show exactly this code?` }),
    el('p', { class: 'code', id: 'approval-code', text: reply.code }),
    el('div', { class: 'actions' }, differ, same));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

// Sharing: this account's code; accepting another account's shares and sharing a camera, each
// after comparing that account's code with its owner; withdrawing.
async function showSharing(message) {
  const current = begin();
  const s = await getJson('/api/sharing');
  const parts = [el('h2', { text: 'Sharing' })];
  if (message) parts.push(el('p', { class: 'status', role: 'status', text: message }));
  parts.push(el('p', {}, 'This account\'s code: ', el('code', { id: 'own-code', text: s.code })),
    el('p', { class: 'muted', text: 'Read it to people you share with, and compare theirs with them, over a channel the server is not part of (in person, a call).' }));

  const shared = el('ul', { class: 'rows', 'aria-label': 'Cameras you share' });
  for (const c of s.shared_with_others) {
    for (const m of c.members) {
      const until = m.expires_at ? `until ${when(m.expires_at)}` : 'until withdrawn';
      const withdraw = el('button', { type: 'button', class: 'danger', text: 'Withdraw…', 'aria-label': `Withdraw ${c.name} from ${m.username}` });
      withdraw.addEventListener('click', () => confirmDialog(`Withdraw ${c.name} from ${m.username}?`,
        `The server stops serving ${c.name} to ${m.username}, and the camera gets a new key, so nothing it records from now on opens for ${m.username}.`,
        `Withdraw from ${m.username}`, [], async () => {
          const { ok, reply } = await post('/api/sharing/withdraw', { camera: c.camera, username: m.username });
          return () => showSharing(ok ? `${c.name} was withdrawn from ${m.username}; new key epoch ${reply.epoch}.`
            : `Not withdrawn: ${reply.error || 'failed'}`);
        }));
      shared.append(el('li', { class: 'row', 'data-share': `${c.camera}/${m.username}` },
        el('div', { class: 'grow' }, el('strong', { text: c.name }),
          el('span', { class: 'muted', text: `shared with ${m.username}, ${until}` })),
        withdraw));
    }
  }
  parts.push(el('h3', { text: 'Cameras you share' }),
    shared.children.length ? shared : el('p', { class: 'note', text: 'You share no camera.' }));

  const camera = el('select', { id: 'share-camera', required: true },
    ...s.cameras.map((c) => el('option', { value: c.camera, text: c.name })));
  const user = el('input', { id: 'share-user', required: true, maxlength: '64', autocomplete: 'off' });
  const code = el('input', { id: 'share-code', required: true, autocomplete: 'off', placeholder: '00000 00000 …' });
  const days = el('input', { id: 'share-days', type: 'number', min: '1', placeholder: 'until withdrawn' });
  const form = el('form', { class: 'filters', 'aria-label': 'Share a camera' },
    el('label', {}, 'Camera', camera), el('label', {}, 'With (user name)', user),
    el('label', {}, 'Their account code', code), el('label', {}, 'For days', days),
    el('button', { type: 'submit', text: 'Share' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { camera: camera.value, username: user.value, code: code.value };
    if (days.value) body.days = Number(days.value);
    const { ok, reply } = await post('/api/sharing/share', body);
    showSharing(ok ? `Shared with ${user.value}: their own devices got the camera's key.`
      : `Not shared: ${reply.error || 'failed'}`);
  });
  parts.push(el('h3', { text: 'Share a camera' }),
    el('p', { class: 'muted', text: 'They must first accept shares from you (with your code), on their side. They can watch and play, not remove, pair or share.' }),
    s.cameras.length ? form : el('p', { class: 'note', text: 'No camera to share.' }));

  const incoming = el('ul', { class: 'rows', 'aria-label': 'Cameras shared with you' });
  for (const c of s.shared_with_this_account) {
    incoming.append(el('li', { class: 'row' }, el('div', { class: 'grow' },
      el('strong', { text: c.name }), el('span', { class: 'muted', text: `shared by ${c.owner}` }))));
  }
  const from = el('input', { id: 'accept-user', required: true, maxlength: '64', autocomplete: 'off' });
  const fromCode = el('input', { id: 'accept-code', required: true, autocomplete: 'off', placeholder: '00000 00000 …' });
  const accept = el('form', { class: 'filters', 'aria-label': 'Accept shares' },
    el('label', {}, 'From (user name)', from), el('label', {}, 'Their account code', fromCode),
    el('button', { type: 'submit', text: 'Accept their shares' }));
  accept.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { ok, reply } = await post('/api/sharing/accept', { username: from.value, code: fromCode.value });
    showSharing(ok ? `Your devices now open what ${from.value} shares with you.` : `Not accepted: ${reply.error || 'failed'}`);
  });
  const accepted = el('ul', { class: 'rows', 'aria-label': 'Accounts you accept shares from' });
  for (const name of s.accepted) {
    const refuse = el('button', { type: 'button', class: 'danger', text: 'Stop accepting…', 'aria-label': `Stop accepting shares from ${name}` });
    refuse.addEventListener('click', () => confirmDialog(`Stop accepting shares from ${name}?`,
      `${name} can no longer see your devices or share with you, and your devices forget the cameras ${name} shared.`,
      `Stop accepting from ${name}`, [], async () => {
        const { ok, reply } = await post('/api/sharing/refuse', { username: name });
        return () => showSharing(ok ? `Shares from ${name} are no longer accepted.` : `Not changed: ${reply.error || 'failed'}`);
      }));
    accepted.append(el('li', { class: 'row', 'data-accepted': name },
      el('div', { class: 'grow' }, el('strong', { text: name }), el('span', { class: 'muted', text: 'you accept its shares' })),
      refuse));
  }
  parts.push(el('h3', { text: 'Shared with you' }),
    s.shared_with_this_account.length ? incoming : el('p', { class: 'note', text: 'Nothing is shared with you.' }),
    s.accepted.length ? accepted : el('p', { class: 'muted', text: 'You accept shares from nobody yet.' }),
    accept);
  if (!current()) return;
  main.replaceChildren(...parts);
}

async function showAudit() {
  const current = begin();
  const entries = await getJson('/api/audit');
  const foreign = entries.filter((e) => !e.yours).length;
  const list = el('ul', { class: 'rows', 'aria-label': 'Audit log, newest first' });
  for (const e of entries) {
    const row = el('li', { class: e.yours ? 'row' : 'row foreign', 'data-action': e.action },
      el('div', { class: 'grow' },
        el('span', { text: e.words }),
        el('span', { class: 'muted', text: `${when(e.at)} · ${e.by}` })));
    if (!e.yours) row.append(el('span', { class: 'badge tampered', text: 'Not yours' }));
    list.append(row);
  }
  const parts = [el('h2', { text: 'Audit log' })];
  if (foreign) {
    parts.push(el('p', { class: 'problems', role: 'alert',
      text: `${foreign} change(s) were not made by this account's devices or cameras.` }));
  }
  parts.push(list);
  if (!current()) return;
  main.replaceChildren(...parts);
}

// The codecs of a live stream's initialization segment, for MSE: the video's from its avcC
// box (profile, compatibility, level), and the sound's when it has an Opus or mp4a track.
function codecsOf(bytes) {
  const at = (i, tag) => [...tag].every((c, k) => bytes[i + k] === c.charCodeAt(0));
  let video = null;
  let sound = null;
  for (let i = 0; i + 8 < bytes.length; i++) {
    if (!video && at(i, 'avcC')) {
      const hex = (b) => b.toString(16).padStart(2, '0');
      video = `avc1.${hex(bytes[i + 5])}${hex(bytes[i + 6])}${hex(bytes[i + 7])}`;
    } else if (!video && at(i, 'hvcC') && i + 16 < bytes.length) {
      video = hevcCodecs((k) => bytes[i + 4 + k]);
    } else if (!sound && at(i, 'dOps')) {
      sound = 'opus';
    } else if (!sound && at(i, 'esds')) {
      sound = 'mp4a.40.2';
    }
  }
  if (!video) return null;
  return sound ? `${video}, ${sound}` : video;
}

// RFC 6381 name of an H.265 stream from its hvcC record (`b(k)`: the record's byte k), as
// ISO/IEC 14496-15 E.3 spells it: hvc1.<space><profile>.<compatibility, bit-reversed>.
// <tier><level>[.<constraint bytes up to the last non-zero>].
function hevcCodecs(b) {
  const space = ['', 'A', 'B', 'C'][b(1) >> 6];
  const compatibility = ((b(2) << 24) | (b(3) << 16) | (b(4) << 8) | b(5)) >>> 0;
  let reversed = 0;
  for (let k = 0; k < 32; k++) if (compatibility & (1 << k)) reversed |= 1 << (31 - k);
  const constraints = [6, 7, 8, 9, 10, 11].map(b);
  while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
  return [`hvc1.${space}${b(1) & 0x1f}`, (reversed >>> 0).toString(16).toUpperCase(),
    `${b(1) & 0x20 ? 'H' : 'L'}${b(12)}`, ...constraints.map((c) => c.toString(16).toUpperCase())]
    .join('.');
}

let liveAbort = null;

async function showLive(cameraId) {
  const current = begin();
  const cameras = await getJson('/api/cameras');
  if (!current()) return;
  const camera = cameras.find((c) => c.id === cameraId);
  const status = el('p', { class: 'status', role: 'status', text: 'Asking the camera to stream…' });
  // Muted, as browsers require for playing at once; its controls turn the sound on.
  const video = el('video', { id: 'live', muted: true, autoplay: true, playsinline: true,
    controls: true, 'aria-label': `Live view of ${camera ? camera.name : 'the camera'}` });
  // The attribute alone does not mute an element made by script.
  video.muted = true;
  const talk = el('button', { type: 'button', class: 'button talk', text: 'Hold to talk',
    'aria-label': 'Hold to talk through the camera', 'aria-pressed': 'false' });
  const said = el('p', { id: 'talk-said', 'aria-live': 'polite' });
  main.replaceChildren(el('section', { class: 'player' },
    el('p', {}, el('a', { href: '#/cameras', text: '← Cameras' })),
    el('h2', { text: `${camera ? camera.name : 'Camera'} — live` }),
    status, video, el('p', {}, talk), said));
  pushToTalk(cameraId, talk, said);
  liveAbort = new AbortController();
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener('sourceopen', resolve, { once: true }));
  const answer = await fetch(`/api/live/${cameraId}`, { signal: liveAbort.signal });
  const reader = answer.body.getReader();
  let pending = new Uint8Array(0);
  let buffer = null;
  const append = (bytes) => new Promise((resolve, reject) => {
    buffer.addEventListener('updateend', resolve, { once: true });
    buffer.addEventListener('error', reject, { once: true });
    buffer.appendBuffer(bytes);
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!buffer) {
        const joined = new Uint8Array(pending.length + value.length);
        joined.set(pending);
        joined.set(value, pending.length);
        pending = joined;
        const codecs = codecsOf(pending);
        if (!codecs) continue;
        video.dataset.codecs = codecs;
        const type = `video/mp4; codecs="${codecs}"`;
        if (!MediaSource.isTypeSupported(type)) {
          status.textContent = codecs.startsWith('hvc1')
            ? 'This browser cannot play H.265, which this camera sends: `keyhole live` writes its live view for a player that can (ffplay, VLC).'
            : `This browser cannot play this live view (${codecs}).`;
          liveAbort.abort();
          return;
        }
        // The camera times every fragment from the stream's first picture.
        buffer = source.addSourceBuffer(type);
        buffer.mode = 'segments';
        await append(pending);
        status.textContent = 'Live: verified and decrypted on this device.';
        followLag(cameraId, status, liveAbort.signal);
        continue;
      }
      await append(value);
      // Start where both tracks have data (the sound may begin a little after the first
      // picture), and stay near the live edge.
      const ranges = video.buffered;
      if (!ranges.length) continue;
      const end = ranges.end(ranges.length - 1);
      if (video.currentTime < ranges.start(0)) video.currentTime = ranges.start(0);
      else if (end - video.currentTime > 2) video.currentTime = end - 0.3;
    }
    status.textContent = 'The live view ended.';
    if (source.readyState === 'open') source.endOfStream();
  } catch (e) {
    if (e.name !== 'AbortError') status.textContent = `The live view stopped: ${e.message || e}`;
  }
}

// Push to talk: while the button is held, the microphone's sound goes to this device as raw
// 16-bit PCM every tenth of a second; the device seals it to the camera and sends it on, naming
// the camera's time this live view saw (the camera refuses sound more than 5 s late).
const TALK_RATE = 48000;

function pushToTalk(cameraId, button, said) {
  const post = (path, body, type) => fetch(path, { method: 'POST', body,
    headers: { 'x-keyhole-ui': '1', ...(type ? { 'content-type': type } : {}) } });
  const refusal = async (answer) => (await answer.json().catch(() => ({}))).error || answer.status;
  let talking = null;
  const begin = async (session) => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    session.release.push(() => stream.getTracks().forEach((t) => t.stop()));
    const context = new AudioContext({ sampleRate: TALK_RATE });
    session.release.push(() => context.close());
    await context.audioWorklet.addModule('/talk-worklet.js');
    const started = await post(`/api/talk/${cameraId}`, JSON.stringify({ rate: TALK_RATE }),
      'application/json');
    if (!started.ok) throw new Error(await refusal(started));
    session.open = true;
    const capture = new AudioWorkletNode(context, 'keyhole-capture');
    let blocks = [];
    capture.port.onmessage = (m) => blocks.push(m.data);
    // Pulled only while it leads somewhere: a silent path to the speakers.
    const silent = context.createGain();
    silent.gain.value = 0;
    context.createMediaStreamSource(stream).connect(capture).connect(silent)
      .connect(context.destination);
    const flush = async () => {
      const taken = blocks;
      blocks = [];
      const n = taken.reduce((sum, b) => sum + b.length, 0);
      if (!n) return;
      const pcm = new Int16Array(n);
      let i = 0;
      for (const block of taken) {
        for (const x of block) pcm[i++] = Math.max(-32768, Math.min(32767, Math.round(x * 32767)));
      }
      const sent = await post(`/api/talk/${cameraId}/sound`, pcm.buffer, 'application/octet-stream');
      if (!sent.ok) throw new Error(await refusal(sent));
    };
    let sending = Promise.resolve();
    const timer = setInterval(() => { sending = sending.then(flush); }, 100);
    session.release.push(() => clearInterval(timer));
    session.finish = async () => { await sending; await flush(); };
  };
  const start = () => {
    if (talking) return;
    const session = { release: [], open: false, finish: null };
    talking = session;
    button.setAttribute('aria-pressed', 'true');
    said.textContent = 'Talking…';
    // Said at once if it fails while the button is still held; stop() reports it too.
    session.started = begin(session);
    session.started.catch((e) => { if (talking === session) said.textContent = `Could not talk: ${e.message || e}`; });
  };
  const stop = async () => {
    const session = talking;
    if (!session) return;
    talking = null;
    button.setAttribute('aria-pressed', 'false');
    let problem = null;
    try {
      await session.started;
      await session.finish();
    } catch (e) {
      problem = e.message || String(e);
    }
    for (const release of session.release.reverse()) await release();
    if (!session.open) {
      said.textContent = `Could not talk: ${problem}`;
      return;
    }
    const ended = await post(`/api/talk/${cameraId}/end`);
    const outcome = await ended.json().catch(() => ({}));
    said.textContent = ended.ok && !problem
      ? `Said ${(outcome.said_ms / 1000).toFixed(1)} s through the camera.`
      : `Not heard: ${problem || outcome.error || ended.status}`;
  };
  button.addEventListener('pointerdown', start);
  for (const name of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(name, stop);
  button.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) { e.preventDefault(); start(); }
  });
  button.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') stop(); });
}

// How far behind the camera the view is, from the camera's signed checkpoints (the client
// measures it), shown under the video and flagged past 5 seconds.
async function followLag(cameraId, status, signal) {
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 1000));
    if (signal.aborted) return;
    let lag;
    try { lag = await getJson(`/api/live/${cameraId}/status`); } catch { continue; }
    if (lag.lag_ms == null || !status.textContent.startsWith('Live')) continue;
    status.textContent = lag.delayed
      ? `Live, but ${(lag.lag_ms / 1000).toFixed(1)} s behind the camera: the server or the network is holding it back.`
      : `Live: verified and decrypted on this device, ${lag.lag_ms} ms behind the camera.`;
    status.classList.toggle('reason', lag.delayed);
  }
}

async function route() {
  if (liveAbort) { liveAbort.abort(); liveAbort = null; }
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  for (const a of document.querySelectorAll('nav a')) {
    const section = a.getAttribute('href').replace(/^#\/?/, '');
    if (section === (parts[0] === 'clip' ? '' : parts[0])) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.setAttribute('aria-busy', 'true');
  try {
    if (parts[0] === 'cameras') await showCameras();
    else if (parts[0] === 'live' && parts[1]) { main.setAttribute('aria-busy', 'false'); await showLive(parts[1]); }
    else if (parts[0] === 'devices') await showDevices();
    else if (parts[0] === 'audit') await showAudit();
    else if (parts[0] === 'sharing') await showSharing();
    else if (!timeline) await load(false);
    else if (parts[0] === 'clip' && parts.length >= 3) showClip(parts[1], parts[2], parts[3], parts[4]);
    else showTimeline();
  } catch (e) {
    main.replaceChildren(el('p', { class: 'reason', role: 'alert', text: String(e.message || e) }));
  }
  main.setAttribute('aria-busy', 'false');
}

// New events as they arrive. The viewer follows the server's announcements, syncs this
// device's index when a camera has something new, and then says `changed` on /api/updates: the
// newest page is fetched again, new events are added (a doorbell press also raises a
// notification, with its decrypted thumbnail, once allowed), and known ones updated (a press's
// clip, recorded since, now verified).
const seen = new Set();
function remember(events) {
  for (const e of events) seen.add(e.event);
}

function notify(e) {
  if (e.kind !== 'doorbell' || !('Notification' in window) || Notification.permission !== 'granted') return;
  const options = { body: `${cameraName(e.camera)}, ${when(e.started_at)}`, tag: e.event };
  if (e.thumbnail) options.icon = `/api/thumbnails/${e.event}`;
  new Notification('Someone rang the doorbell', options);
}

async function catchUp() {
  if (!timeline) return;
  const body = await getJson('/api/timeline').catch(() => null);
  if (!body) return;
  const fresh = body.events.filter((e) => !seen.has(e.event));
  remember(fresh);
  const byId = new Map(body.events.map((e) => [e.event, e]));
  timeline.events = timeline.events.map((e) => byId.get(e.event) || e);
  if (!filters.date) {
    const shown = fresh.filter((e) => !filters.camera || e.camera === filters.camera);
    timeline.events = [...shown, ...timeline.events].sort((a, b) => b.started_at - a.started_at);
  }
  timeline.problems = body.problems;
  timeline.offline = body.offline;
  for (const e of fresh) notify(e);
  if (location.hash.replace(/^#\/?/, '') === '') showTimeline();
}

const notifyButton = document.getElementById('notify');
if ('Notification' in window && Notification.permission === 'default') {
  notifyButton.hidden = false;
  notifyButton.addEventListener('click', async () => {
    await Notification.requestPermission();
    notifyButton.hidden = Notification.permission === 'default';
  });
}

new EventSource('/api/updates').addEventListener('changed', () => { catchUp(); });

window.addEventListener('hashchange', route);
document.getElementById('refresh').addEventListener('click', () => load(true));
route();
