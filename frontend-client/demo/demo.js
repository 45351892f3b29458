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
    excelImport: '학생 가져오기 (엑셀)', file: '파일 (.xlsx)', initialPassword: '초기 비밀번호', dryRun: '미리 확인',
    dryRunHint: '검사만 하고 저장하지 않음', sample: '예시 엑셀 파일 내려받기', job_type: '작업 종류',
    dry_run: '미리 확인', 'Idempotency-Key': '중복 방지 키', fileRequired: '엑셀 파일을 선택해 주세요.',
    created: '새로 등록', restored: '복구', updated: '변경', unchanged: '변경 없음', failed: '실패',
    failedRows: '실패한 행', row: '행', name: '이름', reason: '사유', moreRows: '외 {n}행은 파일에서 확인하세요.',
    downloadFailures: '실패한 행 내려받기 (.xlsx)', downloadFailed: '내려받지 못했습니다: ',
    dryRunNote: '미리 확인: 아무것도 저장하지 않았습니다.', raw: '원본 결과 (JSON)',
    step_read: '파일 읽기', step_classify: '학생 확인', step_write: '학생 등록', step_sending: '이메일 보내기',
    dashboard: '대시보드',
  },
  en: {
    title: 'academy-realtime demo', login: 'Log in', tenant: 'Tenant', username: 'Username', password: 'Password',
    start: 'Start a job', kind: 'Job', messaging: 'Send a message', subject: 'Subject', recipients: 'Recipients',
    startBtn: 'Start', kill: 'Kill the socket', restore: 'Restore the socket', job: 'Job', status: 'Status',
    percent: 'Progress', step: 'Step', remaining: 'Remaining', result: 'Result', seconds: 's',
    loggedIn: 'Logged in: ', loginFailed: 'Could not log in.', connected: 'live', reconnecting: 'reconnecting',
    polling: 'polling', idle: 'idle', connecting: 'connecting', other: '한국어',
    excelImport: 'Import students (Excel)', file: 'File (.xlsx)', initialPassword: 'Initial password',
    dryRun: 'Dry run', dryRunHint: 'check only, save nothing', sample: 'Download a sample spreadsheet',
    job_type: 'Job type', dry_run: 'Dry run', 'Idempotency-Key': 'Idempotency key',
    fileRequired: 'Choose an Excel file.', created: 'Created', restored: 'Restored', updated: 'Updated',
    unchanged: 'Unchanged', failed: 'Failed', failedRows: 'Failed rows', row: 'Row', name: 'Name',
    reason: 'Reason', moreRows: '… and {n} more rows: see the file.',
    downloadFailures: 'Download the failed rows (.xlsx)', downloadFailed: 'Could not download: ',
    dryRunNote: 'Dry run: nothing was saved.', raw: 'Raw result (JSON)',
    step_read: 'Reading the file', step_classify: 'Checking students', step_write: 'Saving students',
    step_sending: 'Sending emails', dashboard: 'Dashboard',
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
  if (auth) $('who').textContent = `${t('loggedIn')}${auth.username} @ ${auth.tenant}`;
  if (lastState) render(lastState);
  if (lastImport) renderImport(...lastImport);
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
let lastState = null; // re-rendered when the language changes
let lastImport = null; // [result, failuresUrl]
const FAILED_ROWS_SHOWN = 10;
// The API's form field names -> label keys.
const FIELD_LABELS = { file: 'file', initial_password: 'initialPassword', dry_run: 'dryRun', job_type: 'job_type' };

async function getToken({ refresh } = { refresh: false }) {
  if (refresh && auth?.refresh) {
    const response = await fetch('/api/v1/auth/token/refresh/', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh: auth.refresh }),
    });
    if (response.ok) {
      const body = await response.json();
      auth.access = body.access;
      auth.refresh = body.refresh ?? auth.refresh; // refresh rotates (ADR 0014): keep the newest
    }
  }
  return auth.access;
}

function renderStatus(status) {
  $('conn').dataset.status = status;
  $('conn').textContent = t(status);
}

function stepName(progress) {
  const name = LABELS[lang][`step_${progress.step}`] ?? progress.step_name_display ?? progress.step;
  if (!name) return '-';
  return progress.step_index && progress.step_total ? `${name} (${progress.step_index}/${progress.step_total})` : name;
}

function render(state) {
  lastState = state;
  const progress = state.progress ?? {};
  const percent = state.status === 'DONE' ? 100 : (progress.percent ?? 0);
  $('bar').value = percent;
  $('status').textContent = state.status;
  $('percent').textContent = `${Math.round(percent)}%`;
  $('step').textContent = stepName(progress);
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

const startForm = $('start');

function showKind() {
  const excel = startForm.elements.job_type.value === 'excel_import';
  for (const [id, shown] of [['messaging-fields', !excel], ['excel-fields', excel]]) {
    $(id).hidden = !shown;
    $(id).disabled = !shown; // a disabled fieldset's inputs are left out of the form data
  }
  clearErrors();
}
startForm.elements.job_type.addEventListener('change', showKind);

function clearErrors() {
  $('start-error').textContent = '';
  $('field-errors').replaceChildren();
  for (const el of startForm.querySelectorAll('.field-error')) el.textContent = '';
}

// The API's error shape: {code, detail, fields: {name: [message, ...]}}. Field messages go
// under their input (or in a list, with the field's label); the detail above, unless it only
// repeats a field message.
function showErrors(body, status) {
  clearErrors();
  const fields = body?.fields ?? {};
  const messages = [];
  for (const [name, list] of Object.entries(fields)) {
    const text = (Array.isArray(list) ? list : [list]).join(' ');
    messages.push(text);
    const slot = startForm.querySelector(`.field-error[data-field="${CSS.escape(name)}"]`);
    if (slot && !slot.closest('fieldset')?.disabled) {
      slot.textContent = `${t(FIELD_LABELS[name] ?? name)}: ${text}`;
    } else {
      const item = document.createElement('li');
      item.textContent = `${t(FIELD_LABELS[name] ?? name)}: ${text}`;
      item.dataset.field = name;
      $('field-errors').append(item);
    }
  }
  const detail = body?.detail ?? String(status);
  if (!messages.includes(detail)) $('start-error').textContent = detail;
}

async function createJob(form) {
  const headers = { Authorization: `Bearer ${await getToken()}`, 'Accept-Language': lang };
  if (form.get('job_type') === 'excel_import') {
    // multipart: job_type, file, initial_password, dry_run (checkbox: sent only when checked)
    return fetch('/api/v1/jobs/', { method: 'POST', headers, body: form });
  }
  const count = Number(form.get('recipients'));
  const recipients = Array.from({ length: count }, (_, i) => `student${i + 1}@example.com`);
  return fetch('/api/v1/jobs/', {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ job_type: form.get('job_type'), payload: { subject: form.get('subject'), body: 'Hello from the academy.', recipients } }),
  });
}

startForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(startForm);
  const excel = form.get('job_type') === 'excel_import';
  if (excel && !(form.get('file') instanceof File && form.get('file').name)) {
    showErrors({ fields: { file: [t('fileRequired')] } });
    return;
  }
  const response = await createJob(form);
  const job = await response.json().catch(() => ({}));
  if (response.status !== 202) {
    showErrors(job, response.status);
    return;
  }
  clearErrors();
  handle?.stop();
  delete document.body.dataset.done;
  lastImport = null;
  $('watch-panel').hidden = false;
  $('topic').textContent = job.topic;
  $('result').textContent = '-';
  $('import-result').hidden = true;
  $('raw').open = !excel;
  render({ status: job.status, seq: 0, progress: null });
  const jobId = job.job_id;
  handle = client.watch(job.topic, {
    onState: render,
    onDone: (state, record) => {
      render(state);
      const result = record?.result ?? state.result;
      $('result').textContent = JSON.stringify(result ?? state.error, null, 2);
      if (state.status === 'DONE' && (record?.job_type ?? state.job_type) === 'excel_import' && result?.counts) {
        renderImport(result, record?.failures_url ?? `/api/v1/jobs/${jobId}/failures.xlsx`);
      }
      document.body.dataset.done = state.status;
    },
    onError: (error) => console.warn('realtime', error.code, error.message),
  });
});

function renderImport(result, failuresUrl) {
  lastImport = [result, failuresUrl];
  $('import-result').hidden = false;
  $('dry-run-note').hidden = !result.dry_run;
  for (const cell of document.querySelectorAll('#counts [data-count]')) {
    cell.textContent = String(result.counts[cell.dataset.count] ?? 0);
    cell.classList.toggle('bad', cell.dataset.count === 'failed' && result.counts.failed > 0);
  }
  const failed = result.failed_rows ?? [];
  $('failures').hidden = (result.counts.failed ?? 0) === 0;
  const rows = failed.slice(0, FAILED_ROWS_SHOWN).map((f) => {
    const tr = document.createElement('tr');
    for (const value of [f.row, f.name ?? '', lang === 'ko' ? f.reason : f.reason_en ?? f.reason]) {
      const td = document.createElement('td');
      td.textContent = String(value);
      tr.append(td);
    }
    return tr;
  });
  $('failed-rows').tBodies[0].replaceChildren(...rows);
  const more = failed.length - rows.length;
  $('failed-more').textContent = more > 0 ? t('moreRows').replace('{n}', String(more)) : '';
  $('failures-download').dataset.url = failuresUrl;
}

// The failures workbook needs the bearer token, so a plain link cannot fetch it: fetch it,
// then hand the browser a blob URL to save.
$('failures-download').addEventListener('click', async () => {
  const url = $('failures-download').dataset.url;
  $('download-error').textContent = '';
  const response = await fetch(url, { headers: { Authorization: `Bearer ${await getToken()}`, 'Accept-Language': lang } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $('download-error').textContent = t('downloadFailed') + (body.detail ?? response.status);
    return;
  }
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'failures.xlsx';
  const blobUrl = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = blobUrl;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
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
  if (params.get('job') === 'excel_import') startForm.elements.job_type.value = 'excel_import';
showKind();
applyLabels();
});

if (params.get('job') === 'excel_import') startForm.elements.job_type.value = 'excel_import';
showKind();
applyLabels();
