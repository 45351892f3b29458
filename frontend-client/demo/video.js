// The video demo page: log in, upload a file (or the sample lecture) straight to storage with
// the presigned PUT, complete the upload, watch the encode's steps, percent and time left over
// the WebSocket client, cancel it, and play the READY video with hls.js (window.Hls, a demo-only
// dependency loaded by video.html). Plain ES module; loads the built client library.
import { RealtimeClient } from '/demo/client/index.js';

const LABELS = {
  ko: {
    title: 'academy-realtime 영상 데모', jobsPage: '작업 데모', login: '로그인', tenant: '학원', username: '아이디',
    password: '비밀번호', upload: '강의 영상 올리기', session: '강의 회차', file: '영상 파일', uploadBtn: '올리기',
    sample: '예시 강의', sampleHint: '데모 시작 때 ffmpeg로 만든 10초 테스트 화면과 소리', video: '영상',
    status: '상태', percent: '진행률', step: '단계', remaining: '남은 시간', cancel: '취소', player: '재생 (HLS)',
    position: '재생 위치', loggedIn: '로그인: ', loginFailed: '로그인하지 못했습니다.', connected: '실시간 연결됨',
    reconnecting: '다시 연결 중', polling: '폴링 중', idle: '대기', connecting: '연결 중', other: 'English',
    step_sending: '파일 보내기', step_probing: '영상 확인', step_encoding: '변환', step_uploading: '저장',
    step_finalizing: '마무리', fileRequired: '영상 파일을 선택해 주세요.', sampleFailed: '예시 강의를 받지 못했습니다: ',
    putFailed: '파일을 보내지 못했습니다: ', cancelRequested: '취소를 요청했습니다. 작업이 멈추기를 기다리는 중…',
    cancelled: '취소되었습니다.', cancelFailed: '취소하지 못했습니다: ', retryAfter: '{n}초 후에 다시 시도하세요.',
    noPlayer: '이 브라우저는 HLS를 재생할 수 없습니다.', second: '초', minute: '분',
    session_id: '강의 회차', filename: '파일 이름', size: '크기', content_type: '파일 형식',
  },
  en: {
    title: 'academy-realtime video', jobsPage: 'Jobs demo', login: 'Log in', tenant: 'Tenant', username: 'Username',
    password: 'Password', upload: 'Upload a lecture video', session: 'Lecture session', file: 'Video file',
    uploadBtn: 'Upload', sample: 'Sample lecture', sampleHint: 'a 10 s test pattern with a tone, made by ffmpeg when the demo starts',
    video: 'Video', status: 'Status', percent: 'Progress', step: 'Step', remaining: 'Time left', cancel: 'Cancel',
    player: 'Playback (HLS)', position: 'Position', loggedIn: 'Logged in: ', loginFailed: 'Could not log in.',
    connected: 'live', reconnecting: 'reconnecting', polling: 'polling', idle: 'idle', connecting: 'connecting',
    other: '한국어', step_sending: 'Sending the file', step_probing: 'Probing', step_encoding: 'Encoding',
    step_uploading: 'Uploading', step_finalizing: 'Finalizing', fileRequired: 'Choose a video file.',
    sampleFailed: 'Could not get the sample lecture: ', putFailed: 'Could not send the file: ',
    cancelRequested: 'Cancel requested; waiting for the encode to stop…', cancelled: 'Cancelled.',
    cancelFailed: 'Could not cancel: ', retryAfter: 'Try again in {n} s.', noPlayer: 'This browser cannot play HLS.',
    second: 's', minute: 'min', session_id: 'Lecture session', filename: 'File name', size: 'Size',
    content_type: 'File type',
  },
};
// The server's encode steps (PROTOCOL.md §2), after the browser's own PUT ("sending").
const STEPS = ['sending', 'probing', 'encoding', 'uploading', 'finalizing'];
// Content types the API accepts, by extension (a browser leaves File.type empty for some).
const TYPES = { mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', webm: 'video/webm', mkv: 'video/x-matroska' };
// READY, FAILED and CANCELLED end a video.
const TERMINAL = new Set(['READY', 'FAILED', 'CANCELLED']);

const params = new URLSearchParams(location.search);
let lang = params.get('lang') === 'en' ? 'en' : 'ko';
const t = (key) => LABELS[lang][key] ?? key;
const $ = (id) => document.getElementById(id);

let auth = null; // {access, refresh, tenant, username}
let client = null;
let current = null; // {videoId, topic, put (XMLHttpRequest while sending), handle, hls, cancelling}
let lastState = null;
let noteKey = '';

async function getToken({ refresh } = { refresh: false }) {
  if (refresh && auth?.refresh) {
    const response = await fetch('/api/v1/auth/token/refresh/', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh: auth.refresh }),
    });
    if (response.ok) {
      const body = await response.json();
      auth.access = body.access;
      auth.refresh = body.refresh ?? auth.refresh;
    }
  }
  return auth.access;
}

async function api(path, init = {}) {
  const headers = { Authorization: `Bearer ${await getToken()}`, 'Accept-Language': lang, ...(init.headers ?? {}) };
  const response = await fetch(path, { ...init, headers });
  const body = await response.json().catch(() => ({}));
  return { response, body };
}

function applyLabels() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = t('other');
  renderStatus(client?.status ?? 'idle');
  if (auth) $('who').textContent = `${t('loggedIn')}${auth.username} @ ${auth.tenant}`;
  if (lastState) render(lastState);
  if (noteKey) $('cancel-note').textContent = t(noteKey);
}

function renderStatus(status) {
  $('conn').dataset.status = status;
  $('conn').textContent = t(status);
}

function duration(seconds) {
  if (seconds == null) return '-';
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} ${t('second')}` : `${Math.floor(s / 60)} ${t('minute')} ${s % 60} ${t('second')}`;
}

function markSteps(active, { stopped = false } = {}) {
  const at = active === 'done' ? STEPS.length : STEPS.indexOf(active);
  for (const li of $('steps').children) {
    const index = STEPS.indexOf(li.dataset.step);
    li.dataset.state = index < at ? 'done' : index === at ? (stopped ? 'stopped' : 'current') : 'pending';
  }
}

// One state document (PROTOCOL.md §3), or the page's own {status, progress} while sending.
function render(state) {
  lastState = state;
  const progress = state.progress ?? {};
  const ready = state.status === 'READY';
  const percent = ready ? 100 : (progress.percent ?? 0);
  $('bar').value = percent;
  $('status').textContent = state.status;
  $('status').dataset.status = state.status;
  $('percent').textContent = `${percent.toFixed(1)}%`;
  const step = ready ? null : (progress.step ?? (state.status === 'UPLOADED' ? 'probing' : null));
  $('step').textContent = step ? `${t(`step_${step}`)}${progress.step_index ? ` (${progress.step_index}/${progress.step_total})` : ''}` : '-';
  $('remaining').textContent = ready ? duration(0) : duration(progress.remaining_seconds);
  $('seq').textContent = state.seq != null ? String(state.seq) : '-';
  if (ready) markSteps('done');
  else if (TERMINAL.has(state.status)) markSteps(step ?? lastStep(), { stopped: true });
  else if (step) markSteps(step);
  if (step) $('steps').dataset.last = step;
  if (state.error) $('error').textContent = state.error;
  if (state.cancel_requested && !TERMINAL.has(state.status)) note('cancelRequested');
}

function lastStep() {
  return $('steps').dataset.last ?? 'sending';
}

function note(key) {
  noteKey = key;
  $('cancel-note').textContent = key ? t(key) : '';
}

function finish(state) {
  render(state);
  $('cancel').disabled = true;
  if (state.status === 'CANCELLED') note('cancelled');
  current?.handle?.stop();
  document.body.dataset.done = state.status;
}

function showErrors(body, status) {
  $('field-errors').replaceChildren();
  const fields = body?.fields ?? {};
  for (const [name, list] of Object.entries(fields)) {
    const item = document.createElement('li');
    item.textContent = `${t(name)}: ${(Array.isArray(list) ? list : [list]).join(' ')}`;
    item.dataset.field = name;
    $('field-errors').append(item);
  }
  $('upload-error').textContent = body?.detail ?? String(status ?? '');
}

function resetWatch(topic) {
  current?.handle?.stop();
  current?.hls?.destroy();
  delete document.body.dataset.done;
  delete document.body.dataset.playing;
  delete $('steps').dataset.last;
  lastState = null;
  note('');
  $('error').textContent = '';
  $('upload-error').textContent = '';
  $('field-errors').replaceChildren();
  $('watch-panel').hidden = false;
  $('player-panel').hidden = true;
  $('topic').textContent = topic ?? '';
}

// PUT the file to the presigned URL; XMLHttpRequest, not fetch, for the upload's progress.
function put(registration, file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    current.put = xhr;
    xhr.open(registration.upload_method ?? 'PUT', registration.upload_url);
    for (const [name, value] of Object.entries(registration.upload_headers ?? {})) xhr.setRequestHeader(name, value);
    const started = performance.now();
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      const fraction = event.loaded / event.total;
      const elapsed = (performance.now() - started) / 1000;
      render({
        status: 'PENDING_UPLOAD',
        progress: { percent: 100 * fraction, step: 'sending', remaining_seconds: fraction > 0 ? (elapsed / fraction) * (1 - fraction) : null },
      });
    };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`HTTP ${xhr.status}`)));
    xhr.onerror = () => reject(new Error('network error'));
    xhr.onabort = () => reject(new Error('aborted'));
    xhr.send(file);
  }).finally(() => {
    current.put = null;
  });
}

async function upload(file) {
  const extension = file.name.split('.').pop().toLowerCase();
  const contentType = file.type || TYPES[extension] || 'application/octet-stream';
  const form = new FormData($('upload'));
  const { response, body } = await api('/media/videos/', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ session_id: Number(form.get('session_id')), filename: file.name, size: file.size, content_type: contentType }),
  });
  if (response.status !== 201) {
    showErrors(body, response.status);
    return;
  }
  resetWatch(body.topic);
  current = { videoId: body.video_id, topic: body.topic, put: null, handle: null, hls: null };
  $('cancel').disabled = false;
  render({ status: body.status, progress: { percent: 0, step: 'sending' } });
  try {
    await put(body, file);
  } catch (error) {
    if (current.cancelling || document.body.dataset.done) return; // Cancel aborted the PUT
    $('error').textContent = t('putFailed') + error.message;
    return;
  }
  if (current.cancelling || document.body.dataset.done) return;
  const completed = await api(body.complete_url, { method: 'POST' });
  if (completed.response.status !== 202) {
    const retry = completed.response.headers.get('Retry-After');
    $('error').textContent = (completed.body.detail ?? String(completed.response.status)) +
      (retry ? ` ${t('retryAfter').replace('{n}', retry)}` : '');
    return;
  }
  render({ ...completed.body, progress: { percent: 0, step: 'probing' } });
  watch(body.topic, body.video_id);
}

function watch(topic, videoId) {
  current.handle = client.watch(topic, {
    fetchRecord: true,
    onState: (state) => {
      if (state.status === 'CANCELLED') finish(state);
      else render(state);
    },
    onDone: (state, record) => {
      finish(state);
      if (state.status === 'READY') play(record?.playlist_url ?? `/media/videos/${videoId}/playlist.m3u8`);
    },
    onError: (error) => console.warn('realtime', error.code, error.message),
  });
}

// hls.js fetches the playlists from the API (same origin: the bearer token goes along) and
// the segments from their presigned storage URLs (another origin: no token, the URL signs).
function play(playlistUrl) {
  const video = $('player');
  $('player-panel').hidden = false;
  const Hls = window.Hls;
  if (!Hls?.isSupported()) {
    $('level').textContent = t('noPlayer');
    return;
  }
  const hls = new Hls({
    xhrSetup: async (xhr, url) => {
      xhr.open('GET', url, true);
      if (new URL(url, location.href).origin === location.origin) {
        xhr.setRequestHeader('Authorization', `Bearer ${await getToken()}`);
      }
    },
  });
  current.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
    $('level').textContent = data.levels.map((level) => `${level.height}p`).join(' / ');
    video.play().catch((error) => console.warn('play', error));
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
    const level = hls.levels[data.level];
    if (level) $('level').textContent = `${level.height}p (${hls.levels.map((l) => `${l.height}p`).join(' / ')})`;
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) $('error').textContent = `hls.js: ${data.type} ${data.details}`;
  });
  hls.loadSource(playlistUrl);
  hls.attachMedia(video);
}

$('player').addEventListener('timeupdate', () => {
  const position = $('player').currentTime;
  $('position').textContent = position.toFixed(1);
  if (position > 0) document.body.dataset.playing = 'true';
});

$('cancel').addEventListener('click', async () => {
  if (!current) return;
  $('cancel').disabled = true;
  current.cancelling = true;
  current.put?.abort();
  // PROTOCOL.md §5: POST /media/videos/{id}/cancel/ answers 202 with the state (CANCELLED at
  // once before the encode runs, cancel_requested while it stops), or 409 once terminal.
  const { response, body } = await api(`/media/videos/${encodeURIComponent(current.videoId)}/cancel/`, { method: 'POST' });
  if (response.status === 202) {
    if (body.status === 'CANCELLED') finish(body);
    else {
      if (body.status) render({ ...(lastState ?? {}), ...body });
      note('cancelRequested');
    }
    return;
  }
  current.cancelling = false;
  $('cancel').disabled = Boolean(document.body.dataset.done);
  noteKey = '';
  $('cancel-note').textContent = t('cancelFailed') + (body.detail ?? response.status);
});

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { tenant: form.get('tenant'), username: form.get('username'), password: form.get('password') };
  const response = await fetch('/api/v1/auth/token/', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept-Language': lang }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    $('login-error').textContent = (await response.json()).detail ?? t('loginFailed');
    return;
  }
  auth = { ...(await response.json()), tenant: body.tenant, username: body.username };
  client = new RealtimeClient({ baseUrl: '', getToken });
  client.onStatus(renderStatus);
  $('who').textContent = `${t('loggedIn')}${auth.username} @ ${auth.tenant}`;
  $('login-panel').hidden = true;
  $('upload-panel').hidden = false;
});

$('upload').addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = $('upload').elements.file.files[0];
  if (!file) {
    showErrors({ detail: t('fileRequired') });
    return;
  }
  await upload(file);
});

$('sample').addEventListener('click', async () => {
  $('sample').disabled = true;
  try {
    const response = await fetch('/demo/video/sample-lecture.mp4');
    if (!response.ok) {
      showErrors({ detail: t('sampleFailed') + (await response.text()) });
      return;
    }
    await upload(new File([await response.blob()], 'sample-lecture.mp4', { type: 'video/mp4' }));
  } finally {
    $('sample').disabled = false;
  }
});

$('lang').addEventListener('click', () => {
  lang = lang === 'ko' ? 'en' : 'ko';
  applyLabels();
});

applyLabels();
