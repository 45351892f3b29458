-- The rules of PROTOCOL.md §2, applied atomically in one round trip.
--
-- KEYS[1] status hash, KEYS[2] progress hash (both tenant-scoped, built by realtime/keys.py)
--
-- ARGV[1] = "apply": ARGV[2] kind ("job"|"video"), ARGV[3] topic ("job:<id>"),
--   ARGV[4] pub/sub channel of the topic's Channels group, ARGV[5] running TTL (s),
--   ARGV[6] terminal TTL (s, 0 = none), ARGV[7] result size limit (bytes), ARGV[8] change (JSON),
--   ARGV[9] pub/sub channel of the tenant feed of the topic's kind (the feed's Channels group)
--   returns {accepted 0|1, reason, frame JSON or false, seq, epoch}
--   On acceptance the frame is published as a RedisPubSubChannelLayer group message:
--   msgpack {type = "realtime.state", topic, seq, epoch, terminal, frame, progress_only,
--   updated_at} (updated_at as in the document: Redis TIME in ms; the consumers' lag metric),
--   and once more on the feed channel with feed = true added (two PUBLISHes per change).
--   A change that creates the hash gives it its epoch: Redis TIME in ms, set once and kept.
--
-- ARGV[1] = "rebuild": ARGV[2..9] as for apply (the change is the topic's whole state, built
--   from its database record, so it must carry a status), ARGV[10] the highest epoch the caller
--   has seen for the topic, ARGV[11] the seq it saw at that epoch (both 0 when none).
--   A no-op ("current") when the stored (epoch, seq) is at or above the caller's. Otherwise,
--   whether the hash vanished or regressed below what the caller saw (a restart from a stale
--   dump, a failover to a lagging replica), both keys are replaced by the change, at seq 1 of
--   a new epoch max(TIME ms, known epoch + 1, stored epoch + 1), terminal states included.
--   Replies as apply, reason "rebuilt" on success.
--
-- ARGV[1] = "read": ARGV[2] kind, ARGV[3] topic
--   returns false when the topic does not exist,
--   else {document JSON, frame JSON, seq, status, owner_id, epoch}
-- ARGV[1] = "read_document": the same without the frame (nil in its place): the progress
--   endpoints' read of a hash written before the status hash kept its document (field "doc",
--   rewritten by every accepted change; they read it with HMGET otherwise).
--
-- Epochs are kept as decimal text and spliced into the JSON verbatim: cjson's number format
-- (14 significant digits) must never round one. A hash written before epochs existed reads 0.

local RANK = {
  job = {PENDING = 0, PROCESSING = 1, DONE = 2, FAILED = 2, CANCELLED = 2},
  video = {UPLOADED = 0, PROCESSING = 1, READY = 2, FAILED = 2, CANCELLED = 2},
}
local TERMINAL = {DONE = true, FAILED = true, READY = true, CANCELLED = true}
local PROGRESS_FIELDS = {
  'percent', 'step', 'step_index', 'step_total', 'step_name_display', 'step_percent',
  'remaining_seconds',
}
local NUMERIC = {percent = true, step_index = true, step_total = true, step_percent = true,
                 remaining_seconds = true}

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- An integer (a double holding one, up to 2^53) as decimal text, never in exponent form.
local function int_text(v) return string.format('%.0f', v) end

local function blank(v) return v == nil or v == false or v == '' or v == cjson.null end
local function num(v) if blank(v) then return cjson.null end return tonumber(v) end
local function str(v) if blank(v) then return cjson.null end return v end

-- The state document (PROTOCOL.md §3); with_type adds "type": "state" for WebSocket frames.
local function build(kind, topic, st, pr, with_type)
  local doc = {}
  if with_type then doc['type'] = 'state' end
  doc.topic = topic
  doc.seq = tonumber(st.seq)
  doc.status = st.status
  if TERMINAL[st.status] or next(pr) == nil then
    doc.progress = cjson.null
  else
    local p = {}
    for _, name in ipairs(PROGRESS_FIELDS) do
      if NUMERIC[name] then p[name] = num(pr[name]) else p[name] = str(pr[name]) end
    end
    doc.progress = p
  end
  doc.error = str(st.error)
  doc.cancel_requested = st.cancel_requested == '1'
  doc.updated_at = tonumber(st.updated_at)
  local epoch = st.epoch
  if blank(epoch) then epoch = '0' end
  local tail = ',"epoch":' .. epoch
  if kind == 'job' then
    doc.job_type = str(st.job_type)
    doc.result_in_db = st.result_in_db == '1'
    -- The result is stored as JSON text; splice it in verbatim rather than re-encoding it.
    local result = st.result
    if blank(result) then result = 'null' end
    tail = tail .. ',"result":' .. result
  else
    doc.hls_path = str(st.hls_path)
    doc.duration = num(st.duration)
    -- Spliced as stored (decimal text of a bigint): cjson would round it to 14 digits.
    local session = st.session_id
    if blank(session) then session = 'null' end
    tail = tail .. ',"session_id":' .. session
  end
  local text = cjson.encode(doc)
  return string.sub(text, 1, -2) .. tail .. '}'
end

local function epoch_of(st) return tonumber(st.epoch) or 0 end

local op, kind, topic = ARGV[1], ARGV[2], ARGV[3]
local status_key, progress_key = KEYS[1], KEYS[2]
local ranks = RANK[kind]
if ranks == nil then return redis.error_reply('unknown topic kind ' .. tostring(kind)) end

local st = hgetall(status_key)
local exists = st.seq ~= nil

if op == 'read' or op == 'read_document' then
  if not exists then return false end
  local pr = hgetall(progress_key)
  local frame = false
  if op == 'read' then frame = build(kind, topic, st, pr, true) end
  return {build(kind, topic, st, pr, false), frame, tonumber(st.seq),
          st.status, st.owner_id or '', epoch_of(st)}
end

if op ~= 'apply' and op ~= 'rebuild' then
  return redis.error_reply('unknown op ' .. tostring(op))
end

local channel, running_ttl = ARGV[4], tonumber(ARGV[5])
local terminal_ttl, result_max = tonumber(ARGV[6]), tonumber(ARGV[7])
local ch = cjson.decode(ARGV[8])
local pr = hgetall(progress_key)

local function reject(reason)
  if not exists then return {0, reason, false, 0, 0} end
  return {0, reason, build(kind, topic, st, pr, true), tonumber(st.seq), epoch_of(st)}
end

local new_status = ch.status
if blank(new_status) then new_status = nil end
if new_status ~= nil and ranks[new_status] == nil then return reject('invalid_status') end

-- The lowest epoch a hash created by this call may get.
local min_epoch = 0
if op == 'rebuild' then
  if new_status == nil then return reject('not_a_state') end
  local known_epoch, known_seq = tonumber(ARGV[10]) or 0, tonumber(ARGV[11]) or 0
  if exists then
    local stored_epoch, stored_seq = epoch_of(st), tonumber(st.seq) or 0
    if stored_epoch > known_epoch or (stored_epoch == known_epoch and stored_seq >= known_seq) then
      return reject('current')
    end
  end
  min_epoch = math.max(known_epoch, epoch_of(st)) + 1
  redis.call('DEL', status_key, progress_key)
  st, pr, exists = {}, {}, false
end

local new_attempt = false
if not exists then
  if new_status == nil then return reject('not_found') end
else
  if TERMINAL[st.status] then return reject('terminal') end
  local cur_attempt = tonumber(st.attempt) or 0
  local attempt = tonumber(ch.attempt) or cur_attempt
  if attempt < cur_attempt then return reject('stale_attempt') end
  new_attempt = attempt > cur_attempt
  if new_status ~= nil and ranks[new_status] < ranks[st.status] then return reject('backwards') end
  local percent = tonumber(type(ch.progress) == 'table' and ch.progress.percent or nil)
  if percent ~= nil and not new_attempt and tonumber(pr.percent) ~= nil
      and percent < tonumber(pr.percent) then
    return reject('percent_backwards')
  end
end

local now = redis.call('TIME')
local now_num = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local now_ms = int_text(now_num)

local status_fields, changed = {}, not exists
local function set(k, v)
  v = tostring(v)
  if st[k] ~= v then
    changed = true
    st[k] = v
    status_fields[#status_fields + 1] = k
    status_fields[#status_fields + 1] = v
  end
end

if not exists then set('epoch', int_text(math.max(now_num, min_epoch))) end
if new_status ~= nil then set('status', new_status) end
if not blank(ch.attempt) then set('attempt', ch.attempt) end
if not blank(ch.owner_id) and blank(st.owner_id) then set('owner_id', ch.owner_id) end
if not blank(ch.job_type) and blank(st.job_type) then set('job_type', ch.job_type) end
if not blank(ch.error) then set('error', ch.error) end
if not blank(ch.hls_path) then set('hls_path', ch.hls_path) end
-- Sent as decimal text (a bigint would not survive cjson's doubles); set once, like owner_id.
if type(ch.session_id) == 'string' and string.match(ch.session_id, '^[0-9]+$')
    and blank(st.session_id) then
  set('session_id', ch.session_id)
end
if not blank(ch.duration) then set('duration', ch.duration) end
-- A cancel request (PROTOCOL.md §2) is recorded once and never withdrawn.
if ch.cancel_requested == true then set('cancel_requested', '1') end
if ch.result_in_db == true then
  set('result_in_db', '1')
elseif not blank(ch.result) then
  if string.len(ch.result) > result_max then set('result_in_db', '1') else set('result', ch.result) end
end

local terminal = TERMINAL[st.status] == true
local progress_fields = {}
if new_attempt then pr = {} end
if not terminal and type(ch.progress) == 'table' then
  for _, name in ipairs(PROGRESS_FIELDS) do
    local v = ch.progress[name]
    if not blank(v) then
      v = tostring(v)
      if pr[name] ~= v then
        changed = true
        pr[name] = v
        progress_fields[#progress_fields + 1] = name
        progress_fields[#progress_fields + 1] = v
      end
    end
  end
end

if not changed then return reject('unchanged') end

-- Only progress moved: a slow client may get a later frame instead of this one (coalescing).
local progress_only = #status_fields == 0
local seq = (tonumber(st.seq) or 0) + 1
set('seq', seq)
set('updated_at', now_ms)
redis.call('HSET', status_key, unpack(status_fields))

if terminal then
  redis.call('DEL', progress_key)
  pr = {}
  if terminal_ttl > 0 then
    redis.call('EXPIRE', status_key, terminal_ttl)
  else
    redis.call('PERSIST', status_key)
  end
else
  if new_attempt then redis.call('DEL', progress_key) end
  if #progress_fields > 0 then
    progress_fields[#progress_fields + 1] = 'updated_at'
    progress_fields[#progress_fields + 1] = now_ms
    redis.call('HSET', progress_key, unpack(progress_fields))
  end
  redis.call('EXPIRE', status_key, running_ttl)
  if redis.call('EXISTS', progress_key) == 1 then redis.call('EXPIRE', progress_key, running_ttl) end
end

local frame = build(kind, topic, st, pr, true)
-- The document as the progress endpoints serve it, kept in the hash so that their read is one
-- HMGET instead of this script (bench/http: 25 us of Redis CPU per read against 1).
redis.call('HSET', status_key, 'doc', build(kind, topic, st, pr, false))
local epoch = epoch_of(st)
local message = {
  type = 'realtime.state', topic = topic, seq = seq, epoch = epoch, terminal = terminal,
  frame = frame, progress_only = progress_only, updated_at = now_num,
}
redis.call('PUBLISH', channel, cmsgpack.pack(message))
-- The tenant feed (dashboards): the same message, marked so that a connection watching both
-- the topic and the feed tells the two deliveries apart.
message.feed = true
redis.call('PUBLISH', ARGV[9], cmsgpack.pack(message))
local reason = 'ok'
if op == 'rebuild' then reason = 'rebuilt' end
return {1, reason, frame, seq, epoch}
