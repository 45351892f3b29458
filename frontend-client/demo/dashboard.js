// The dashboard demo: the tenant's running and recent jobs and videos, each with a live
// progress bar, all on one socket. Staff and admin follow the tenant feeds (`jobs`, `videos`):
// the client subscribes to each feed, reads the list page once the feed is confirmed, and
// merges both (liveJobs / liveVideos). Every other role (a teacher) cannot watch the feeds; its
// view reads its own items from the list and watches each running one on its own topic.
import { RealtimeClient, isTerminal } from '/demo/client/index.js';

const LABELS = {
  ko: {
    title: 'academy-realtime 대시보드', single: '작업 하나 보기', login: '로그인', tenant: '학원',
    username: '아이디', password: '비밀번호', recipients: '받는 사람 수', send: '메시지 보내기',
    jobs: '작업', videos: '영상', kind: '종류', status: '상태', progress: '진행률', step: '단계',
    session: '수업', newVideo: '새 영상', none: '아직 없습니다.', loggedIn: '로그인: ', loginFailed: '로그인하지 못했습니다.',
    feedMode: '학원 전체 (실시간 피드)', watchMode: '내 항목만 (항목별 구독)',
    connected: '실시간 연결됨', reconnecting: '다시 연결 중', polling: '폴링 중', idle: '대기',
    connecting: '연결 중', other: 'English',
    'messaging.send': '메시지 발송', excel_import: '학생 가져오기', video_encode: '영상 인코딩',
    step_read: '파일 읽기', step_classify: '학생 확인', step_write: '학생 등록', step_sending: '이메일 보내기',
    step_probing: '영상 확인', step_encoding: '인코딩', step_uploading: '업로드', step_finalizing: '마무리',
  },
  en: {
    title: 'academy-realtime dashboard', single: 'One job', login: 'Log in', tenant: 'Tenant',
    username: 'Username', password: 'Password', recipients: 'Recipients', send: 'Send a message',
    jobs: 'Jobs', videos: 'Videos', kind: 'Kind', status: 'Status', progress: 'Progress', step: 'Step',
    session: 'Session', newVideo: 'New upload', none: 'Nothing yet.', loggedIn: 'Logged in: ', loginFailed: 'Could not log in.',
    feedMode: 'whole academy (live feed)', watchMode: 'my items only (one watch each)',
    connected: 'live', reconnecting: 'reconnecting', polling: 'polling', idle: 'idle',
    connecting: 'connecting', other: '한국어',
    'messaging.send': 'Message', excel_import: 'Excel import', video_encode: 'Video encoding',
    step_read: 'Reading the file', step_classify: 'Checking students', step_write: 'Saving students',
    step_sending: 'Sending emails', step_probing: 'Probing', step_encoding: 'Encoding',
    step_uploading: 'Uploading', step_finalizing: 'Finalizing',
  },
};

const params = new URLSearchParams(location.search);
let lang = params.get('lang') === 'en' ? 'en' : 'ko';
const t = (key) => LABELS[lang][key] ?? key;
const $ = (id) => document.getElementById(id);
const TENANT_WIDE = new Set(['admin', 'staff']);
const PAGE_SIZE = 50;

// Counts the sockets the page opens: the dashboard needs one, whatever it watches.
let socketsOpened = 0;
class CountedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    socketsOpened += 1;
    document.body.dataset.sockets = String(socketsOpened);
  }
}

let auth = null; // {access, refresh, tenant, username, role}
let client = null;
let mode = null;
const lists = {};
const lastItems = { jobs: [], videos: [] };

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

function applyLabels() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = t('other');
  renderStatus(client?.status ?? 'idle');
  if (auth) {
    $('who').textContent = `${t('loggedIn')}${auth.username} @ ${auth.tenant} (${auth.role})`;
    $('mode').textContent = t(mode === 'feed' ? 'feedMode' : 'watchMode');
  }
  render('jobs', lastItems.jobs);
  render('videos', lastItems.videos);
}

function renderStatus(status) {
  $('conn').dataset.status = status;
  $('conn').textContent = t(status);
}

function stepName(progress) {
  if (!progress) return '';
  const name = LABELS[lang][`step_${progress.step}`] ?? progress.step_name_display ?? progress.step;
  if (!name) return '';
  return progress.step_index && progress.step_total ? `${name} (${progress.step_index}/${progress.step_total})` : name;
}

function percentOf(item) {
  if (item.status === 'DONE' || item.status === 'READY') return 100;
  return item.progress?.percent ?? 0;
}

// Running first, then the rest; newest first within each (the list's own order).
function ordered(items) {
  const running = items.filter((item) => item.status !== undefined && !isTerminal(item.status));
  const rest = items.filter((item) => item.status === undefined || isTerminal(item.status));
  return [...running, ...rest];
}

const rows = { jobs: new Map(), videos: new Map() };

function render(kind, items) {
  lastItems[kind] = items;
  const body = $(kind).tBodies[0];
  const seen = new Set();
  const trs = ordered(items).map((item) => {
    seen.add(item.topic);
    let tr = rows[kind].get(item.topic);
    if (tr === undefined) {
      tr = document.createElement('tr');
      tr.innerHTML = '<td class="kind"></td><td class="id"></td><td class="status"></td>'
        + '<td class="bar"><progress max="100" value="0"></progress> <span></span></td><td class="step"></td>';
      rows[kind].set(item.topic, tr);
    }
    const percent = percentOf(item);
    const jobType = item.row?.job_type ?? item.state?.job_type;
    tr.dataset.topic = item.topic;
    tr.dataset.status = item.status ?? '';
    tr.dataset.percent = String(percent);
    tr.dataset.terminal = String(item.status !== undefined && isTerminal(item.status));
    tr.dataset.seq = String(item.state?.seq ?? 0);
    if (jobType) tr.dataset.kind = jobType;
    // A video the feed announced before any list read it: its state names the session too.
    const session = item.row?.session_id ?? item.state?.session_id;
    tr.querySelector('.kind').textContent = kind === 'jobs'
      ? t(jobType ?? '-')
      : (session == null ? t('newVideo') : `${t('session')} ${session}`);
    tr.querySelector('.id').textContent = item.topic.split(':')[1].slice(0, 8);
    tr.querySelector('.status').textContent = item.status ?? '…';
    // Running without a reported percent (a video encode's job: its progress is the video's):
    // an indeterminate bar rather than a 0 % that never moves.
    const bar = tr.querySelector('progress');
    const unknown = item.status === 'PROCESSING' && item.progress?.percent == null;
    if (unknown) bar.removeAttribute('value');
    else bar.value = percent;
    tr.querySelector('.bar span').textContent = unknown ? '…' : `${Math.round(percent)}%`;
    tr.querySelector('.step').textContent = item.state?.error ?? stepName(item.progress);
    return tr;
  });
  for (const [topic, tr] of rows[kind]) {
    if (!seen.has(topic)) {
      tr.remove();
      rows[kind].delete(topic);
    }
  }
  body.replaceChildren(...trs);
  document.querySelector(`.empty[data-for="${kind}"]`).hidden = trs.length > 0;
}

function start() {
  client = new RealtimeClient({ baseUrl: '', getToken, WebSocketImpl: CountedWebSocket });
  client.onStatus(renderStatus);
  mode = TENANT_WIDE.has(auth.role) ? 'feed' : 'watch';
  const options = (kind) => ({
    mode,
    params: { pageSize: PAGE_SIZE },
    onChange: (items) => render(kind, items),
    onError: (error) => console.warn('realtime', kind, error.code ?? '', error.message),
  });
  lists.jobs = client.liveJobs(options('jobs'));
  lists.videos = client.liveVideos(options('videos'));
  document.body.dataset.mode = mode;
  Promise.all([lists.jobs.loaded, lists.videos.loaded]).then(() => {
    document.body.dataset.loaded = 'true';
  });
  applyLabels();
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { tenant: form.get('tenant'), username: form.get('username'), password: form.get('password') };
  const response = await fetch('/api/v1/auth/token/', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept-Language': lang }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    $('login-error').textContent = (await response.json().catch(() => ({}))).detail ?? t('loginFailed');
    return;
  }
  auth = { ...(await response.json()), tenant: body.tenant, username: body.username };
  const me = await fetch('/api/v1/auth/me/', { headers: { Authorization: `Bearer ${auth.access}` } });
  auth.role = (await me.json()).role;
  $('login-panel').hidden = true;
  $('board').hidden = false;
  start();
});

$('quick-job').addEventListener('submit', async (event) => {
  event.preventDefault();
  const count = Number(new FormData(event.target).get('recipients'));
  const recipients = Array.from({ length: count }, (_, i) => `student${i + 1}@example.com`);
  const response = await fetch('/api/v1/jobs/', {
    method: 'POST',
    headers: { Authorization: `Bearer ${await getToken()}`, 'Content-Type': 'application/json', 'Accept-Language': lang },
    body: JSON.stringify({ job_type: 'messaging.send', payload: { subject: 'Dashboard', body: 'Hello from the academy.', recipients } }),
  });
  const job = await response.json().catch(() => ({}));
  if (response.status !== 202) {
    $('job-error').textContent = job.detail ?? String(response.status);
    return;
  }
  $('job-error').textContent = '';
  // The feed brings a new job by itself; a per-item view has to be told about it.
  lists.jobs.track(job.topic);
});

$('lang').addEventListener('click', () => {
  lang = lang === 'ko' ? 'en' : 'ko';
  applyLabels();
});

applyLabels();
