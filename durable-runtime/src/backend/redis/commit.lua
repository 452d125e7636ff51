-- Orchestration steps of one partition, each atomically (the call is one transaction), with
-- the lease checked once for all of them. KEYS[1]: the partition's lease key (for routing).
-- ARGV: tag, partition, worker, epoch, the highest `:mark` the holder's commits were answered
--   with, its cursor (the last control entry it read), k, then k steps, each:
--   instance generation ('' if none), instance,
--   n, n control entry ids to acknowledge,
--   n, n activity entry ids whose results were handed over in memory (`handover.rs`),
--   reset history (0/1), n, n history events one after the other (each preceded by its
--   length, a varint),
--   snapshot op (k/s/d/p), snapshot bytes (for p: the snapshot without its task table, then
--   r/u (replace the table, or update it), n, n pairs of task id and entry to set, n, n task
--   ids to remove),
--   status JSON ('' if unchanged), runtime status, last update of the status (ms),
--   n operations, each: kind, target partition, argument count, arguments.
-- Returns 'LOCK' (the lease is not held at this epoch) or 'BACK' (Redis went back in time: see
-- `fenced`), and then nothing was written; else {'OK', the new `:mark`, one outcome per step}:
-- 'OK', 'GONE' (the instance was replaced or purged since it was fetched) or {'DUP', activity
-- entry ids} (those entries are no longer pending: another completion of them counted first).
-- A step that is GONE or DUP wrote nothing.
local tag, part = ARGV[1], ARGV[2]
local refused = fenced(tag, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if refused then
  return refused
end
local ak = tag .. ':act'

-- The step whose arguments start at ARGV[i]: its outcome, and where the next step starts.
local function step(i)
  local gen, inst = ARGV[i], ARGV[i + 1]
  i = i + 2
  local ctl_at, ctl_n = i + 1, tonumber(ARGV[i])
  i = i + 1 + ctl_n
  local act_at, act_n = i + 1, tonumber(ARGV[i])
  i = i + 1 + act_n
  local reset, ev_n, events = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local sop, sbytes = ARGV[i], ARGV[i + 1]
  i = i + 2
  local tb_mode, set_at, set_n, rm_at, rm_n
  if sop == 'p' then
    tb_mode = ARGV[i]
    set_at, set_n = i + 2, tonumber(ARGV[i + 1])
    i = i + 2 + 2 * set_n
    rm_at, rm_n = i + 1, tonumber(ARGV[i])
    i = i + 1 + rm_n
  end
  local st, rs, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local ops_at, ops_n = i + 1, tonumber(ARGV[i])
  i = i + 1
  for _ = 1, ops_n do
    i = i + 3 + tonumber(ARGV[i + 2])
  end

  local r = record(tag, inst)
  if (r and r.g or '') ~= gen then
    return 'GONE', i
  end
  -- A result handed over in memory counts only if its activity entry is still pending (only
  -- the first completion of an entry counts; `complete.lua` checks the same way), checked
  -- before anything is written. One entry (the usual case) is checked by acknowledging it:
  -- `XACK` of an entry that is not pending writes nothing and answers 0.
  if act_n == 1 then
    if redis.call('XACK', ak, 'w', ARGV[act_at]) == 0 then
      return { 'DUP', ARGV[act_at] }, i
    end
  elseif act_n > 1 then
    local gone = {}
    for j = act_at, act_at + act_n - 1 do
      if #redis.call('XPENDING', ak, 'w', ARGV[j], ARGV[j], 1) == 0 then
        gone[#gone + 1] = ARGV[j]
      end
    end
    if #gone > 0 then
      table.insert(gone, 1, 'DUP')
      return gone, i
    end
    chunked(ARGV, act_at, act_n, function(...) redis.call('XACK', ak, 'w', ...) end)
  end
  -- The consumed entries go first: an entry deleted before the step queues the next one lets
  -- Redis free the stream node it emptied, instead of growing it with deleted entries that
  -- every later read and delete of the node walks past.
  chunked(ARGV, ctl_at, ctl_n, function(...) redis.call('XDEL', tag .. ':ctl', ...) end)
  chunked(ARGV, act_at, act_n, function(...) redis.call('XDEL', ak, ...) end)
  if r then
    if reset == '1' then
      reset_history(tag, inst, r)
    end
    append_history(tag, inst, r, events, ev_n)
    if sop == 'p' then
      -- The snapshot without its task table, which is kept in `:t:<id>`, a hash of entries by
      -- task id: replaced whole ('r') or changed entry by entry ('u').
      local tk = tag .. ':t:' .. inst
      if tb_mode == 'r' then
        redis.call('DEL', tk)
      end
      chunked(ARGV, set_at, 2 * set_n, function(...) redis.call('HSET', tk, ...) end)
      chunked(ARGV, rm_at, rm_n, function(...) redis.call('HDEL', tk, ...) end)
      r.snap = sbytes
    elseif sop == 's' then
      drop_table(tag, inst, r)
      r.snap = sbytes
    elseif sop == 'd' then
      drop_table(tag, inst, r)
      r.snap = ''
    end
    if st ~= '' then
      -- The finished index (for retention): finished instances by when they finished.
      if FINISHED[rs] then
        redis.call('ZADD', tag .. ':fin', at, inst)
      elseif FINISHED[r.rs] then
        redis.call('ZREM', tag .. ':fin', inst)
      end
      r.st, r.rs = st, rs
    end
    put_record(tag, inst, r)
  end
  local o = ops_at
  for _ = 1, ops_n do
    local kind, target, c = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2])
    route(tag, part, target, kind, { unpack(ARGV, o + 3, o + 2 + c) })
    o = o + 3 + c
  end
  return 'OK', i
end

local reply = { 'OK', 0 }
local i = 8
for s = 1, tonumber(ARGV[7]) do
  reply[2 + s], i = step(i)
end
reply[2] = redis.call('INCR', tag .. ':mark')
return reply
