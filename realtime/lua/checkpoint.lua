-- Has Redis gone back in time? The outbox relay's checkpoint (docs/adr/0011-the-job-row-is-the-outbox.md).
--
-- KEYS[1] the checkpoint hash {run_id, at}: the run id of the Redis server that last wrote it
--   (INFO server), and when (Redis TIME, ms). No TTL, so volatile-lru never evicts it.
--
-- ARGV[1] = "check": when the hash was written by this very server (or does not exist: a first
--   start, or a dataset that lost everything, where nothing can show an old state), write this
--   server's run id and now, and return {"same", at} (at: now).
--   When another server wrote it, this server's dataset came from somewhere else (a dump, a
--   promoted replica, an AOF) and holds nothing written after `at` for sure: leave the hash as
--   it is and return {"rewound", at}. The caller repairs what may be missing, then marks.
-- ARGV[1] = "mark": write this server's run id and now whatever the hash held; returns
--   {"same", at}.
--
-- Every server gets a new run id when it starts, so a restart that kept every write (a dump
-- written at shutdown) reads as "rewound" too, at the last check before it: a small window.

local info = redis.call('INFO', 'server')
local run_id = string.match(info, 'run_id:(%w+)')
if run_id == nil then return redis.error_reply('no run_id in INFO server') end

local now = redis.call('TIME')
local now_ms = string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local stored = redis.call('HMGET', KEYS[1], 'run_id', 'at')

if ARGV[1] == 'check' then
  if stored[1] and stored[1] ~= run_id then return {'rewound', stored[2] or '0'} end
elseif ARGV[1] ~= 'mark' then
  return redis.error_reply('unknown op ' .. tostring(ARGV[1]))
end
redis.call('HSET', KEYS[1], 'run_id', run_id, 'at', now_ms)
return {'same', now_ms}
