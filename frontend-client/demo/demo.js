// The demo page: log in, start a job, watch it over the WebSocket (or polling when the
// socket is killed), show the result. Plain ES module; loads the built client library.
import { RealtimeClient } from '/demo/client/index.js';

const LABELS = {
  ko: {
    title: 'academy-realtime 데모', login: '로그인', tenant: '학원', username: '아이디', password: '비밀번호',
    start: '작업 시작', kind: '작업', messaging: '메시지 보내기', subject: '제목', recipients: '받는 사람 수',
    startBtn: '시작', kill: '소켓 끊기', restore: '소켓 복구', job: '작업', status: '상태', percent: '진행률',
    step: '단계', remaining: '남은 시간', result: '결과', seconds: '초', loggedIn: '로그인: ',
    loginFailed: '로그인하지 못했습니다.', connected: '실시간 연결됨', reconnecting: '다시 연결 중',
    polling: '폴링 중', idle: '대기', connecting: '연결 중', other: 'English',
  },
  en: {
    title: 'academy-realtime demo', login: 'Log in', tenant: 'Tenant', username: 'Username', password: 'Password',
    start: 'Start a job', kind: 'Job', messaging: 'Send a message', subject: 'Subject', recipients: 'Recipients',
    startBtn: 'Start', kill: 'Kill the socket', restore: 'Restore the socket', job: 'Job', status: 'Status',
    percent: 'Progress', step: 'Step', remaining: 'Remaining', result: 'Result', seconds: 's',
    loggedIn: 'Logged in: ', loginFailed: 'Could not log in.', connected: 'live', reconnecting: 'reconnecting',
    polling: 'polling', idle: 'idle', connecting: 'connecting', other: '한국어',
  },
};

const params = new URLSearchParams(location.search);
let lang = params.get('lang') === 'en' ? 'en' : 'ko';
const t = (key) => LABELS[lang][key] ?? key;
const $ = (id) => document.getElementById(id);

function applyLabels() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = t('other');
  renderStatus(client?.status ?? 'idle');
}

// A WebSocket whose connections the page can cut, to show the polling fallback. While
// "killed", new sockets point at a closed port, so every reconnect attempt fails.
const liveSockets = new Set();
let socketKilled = params.get('socket') === 'off';
class KillableWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(socketKilled ? 'ws://127.0.0.1:9/killed' : url, protocols);
    liveSockets.add(this);
    this.addEventListener('close', () => liveSockets.delete(this));
  }
}

let auth = null; // {access, refresh, tenant, username}
let client = null;
let handle = null;

async function getToken({ refresh } = { refresh: false }) {
  if (refresh && auth?.refresh) {
    const response = await fetch('/api/v1/auth/token/refresh/', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh: auth.refresh }),
    });
    if (response.ok) auth.access = (await response.json()).access;
  }
  return auth.access;
}

function renderStatus(status) {
  $('conn').dataset.status = status;
  $('conn').textContent = t(status);
}

function render(state) {
  const progress = state.progress ?? {};
  const percent = state.status === 'DONE' ? 100 : (progress.percent ?? 0);
  $('bar').value = percent;
  $('status').textContent = state.status;
  $('percent').textContent = `${Math.round(percent)}%`;
  $('step').textContent = progress.step_name_display ?? progress.step ?? '-';
  $('remaining').textContent = progress.remaining_seconds != null ? `${progress.remaining_seconds}${t('seconds')}` : '-';
  $('seq').textContent = String(state.seq);
  if (state.error) $('result').textContent = state.error;
}

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
  client = new RealtimeClient({ baseUrl: '', getToken, WebSocketImpl: KillableWebSocket });
  client.onStatus(renderStatus);
  $('who').textContent = `${t('loggedIn')}${auth.username} @ ${auth.tenant}`;
  $('login-panel').hidden = true;
  $('job-panel').hidden = false;
});

$('start').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const count = Number(form.get('recipients'));
  const recipients = Array.from({ length: count }, (_, i) => `student${i + 1}@example.com`);
  const response = await fetch('/api/v1/jobs/', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await getToken()}`, 'Accept-Language': lang },
    body: JSON.stringify({ job_type: form.get('job_type'), payload: { subject: form.get('subject'), body: 'Hello from the academy.', recipients } }),
  });
  const job = await response.json();
  if (response.status !== 202) {
    $('start-error').textContent = job.detail ?? String(response.status);
    return;
  }
  $('start-error').textContent = '';
  handle?.stop();
  $('watch-panel').hidden = false;
  $('topic').textContent = job.topic;
  $('result').textContent = '-';
  render({ status: job.status, seq: 0, progress: null });
  handle = client.watch(job.topic, {
    onState: render,
    onDone: (state, record) => {
      render(state);
      $('result').textContent = JSON.stringify(record?.result ?? state.result ?? state.error, null, 2);
      document.body.dataset.done = state.status;
    },
    onError: (error) => console.warn('realtime', error.code, error.message),
  });
});

$('kill').addEventListener('click', () => {
  socketKilled = true;
  for (const socket of liveSockets) socket.close(4999, 'killed by the demo page');
  $('kill').disabled = true;
  $('restore').disabled = false;
});

$('restore').addEventListener('click', () => {
  socketKilled = false;
  $('kill').disabled = false;
  $('restore').disabled = true;
});

$('lang').addEventListener('click', () => {
  lang = lang === 'ko' ? 'en' : 'ko';
  applyLabels();
});

applyLabels();
