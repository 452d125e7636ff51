-- One orchestration step, atomically. KEYS[1]: the partition's lease key (for routing).
-- ARGV: tag, partition, worker, epoch, instance generation ('' if none), instance,
--   the highest `:mark` the holder's commits were answered with, its cursor (the last control
--   entry it read),
--   n, n control entry ids to acknowledge,
--   n, n activity entry ids whose results were handed over in memory (`handover.rs`),
--   reset history (0/1), n, n history events (each preceded by its length, a varint),
--   snapshot op (k/s/d/p), snapshot bytes (for p: the snapshot without its task table, then
--   r/u (replace the table, or update it), n, n pairs of task id and entry to set, n, n task
--   ids to remove),
--   status JSON ('' if unchanged), runtime status, last update of the status (ms),
--   n operations, each: kind, target partition, argument count, arguments.
-- Returns {'OK', the new `:mark`}, 'LOCK' (the lease is not held at this epoch), 'BACK' (Redis
-- went back in time: see `fenced`), 'GONE' (the instance was replaced or purged since it was
-- fetched) or {'DUP', activity entry ids} (those entries are no longer pending: another
-- completion of them counted first; nothing was written).
local tag, part, inst = ARGV[1], ARGV[2], ARGV[6]
local refused = fenced(tag, ARGV[3], ARGV[4], ARGV[7], ARGV[8])
if refused then
  return refused
end
local r = record(tag, inst)
local gen = r and r.g or ''
if gen ~= ARGV[5] then
  return 'GONE'
end
local i = 9
local n = tonumber(ARGV[i]); i = i + 1
local ctl_at, ctl_n = i, n
i = i + n
-- A result handed over in memory counts only if its activity entry is still pending (only the
-- first completion of an entry counts; `complete.lua` checks the same way), checked before
-- anything is written.
local ak = tag .. ':act'
local handed = tonumber(ARGV[i]); i = i + 1
local gone = {}
for j = i, i + handed - 1 do
  if #redis.call('XPENDING', ak, 'w', ARGV[j], ARGV[j], 1) == 0 then
    gone[#gone + 1] = ARGV[j]
  end
end
if #gone > 0 then
  return { 'DUP', unpack(gone) }
end
chunked(ARGV, ctl_at, ctl_n, function(...) redis.call('XDEL', tag .. ':ctl', ...) end)
chunked(ARGV, i, handed, function(...)
  redis.call('XACK', ak, 'w', ...)
  redis.call('XDEL', ak, ...)
end)
i = i + handed
local reset = ARGV[i]; i = i + 1
n = tonumber(ARGV[i]); i = i + 1
if r then
  if reset == '1' then
    reset_history(tag, inst, r)
  end
  chunked(ARGV, i, n, function(...) append_history(tag, inst, r, table.concat({ ... }), select('#', ...)) end)
end
i = i + n
local sop, sbytes = ARGV[i], ARGV[i + 1]; i = i + 2
if sop == 'p' then
  -- The snapshot without its task table, which is kept in `:t:<id>`, a hash of entries by
  -- task id: replaced whole ('r') or changed entry by entry ('u').
  local tk = tag .. ':t:' .. inst
  local mode = ARGV[i]; i = i + 1
  n = tonumber(ARGV[i]); i = i + 1
  if r and mode == 'r' then
    redis.call('DEL', tk)
  end
  if r then
    chunked(ARGV, i, 2 * n, function(...) redis.call('HSET', tk, ...) end)
  end
  i = i + 2 * n
  n = tonumber(ARGV[i]); i = i + 1
  if r then
    chunked(ARGV, i, n, function(...) redis.call('HDEL', tk, ...) end)
    r.snap = sbytes
  end
  i = i + n
elseif r and sop == 's' then
  drop_table(tag, inst, r)
  r.snap = sbytes
elseif r and sop == 'd' then
  drop_table(tag, inst, r)
  r.snap = ''
end
local st, rs, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
if r and st ~= '' then
  -- The finished index (for retention): finished instances by when they finished.
  if FINISHED[rs] then
    redis.call('ZADD', tag .. ':fin', at, inst)
  elseif FINISHED[r.rs] then
    redis.call('ZREM', tag .. ':fin', inst)
  end
  r.st, r.rs = st, rs
end
if r then
  put_record(tag, inst, r)
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local kind, target, c = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]); i = i + 3
  local a = {}
  for j = 1, c do
    a[j] = ARGV[i + j - 1]
  end
  i = i + c
  route(tag, part, target, kind, a)
end
return { 'OK', redis.call('INCR', tag .. ':mark') }
