-- Move due timers into the control stream (the partition's owner). KEYS[1]: the lease key.
-- ARGV: tag, worker, epoch, clock, ms, limit, the holder's mark and cursor (see `fenced`).
-- Clock `r`: due by Redis's time plus `ms` (what the handle was explicitly advanced by), never
-- by the worker's own clock, which may be wrong; `v`: a virtual clock standing at `ms`.
-- Returns {moved, next due ms or -1}, 'LOCK' if the lease is not held at this epoch, or 'BACK'
-- if Redis went back in time.
local tag = ARGV[1]
local refused = fenced(tag, ARGV[2], ARGV[3], ARGV[7], ARGV[8])
if refused then
  return refused
end
local now = tonumber(ARGV[5])
if ARGV[4] == 'r' then
  local t = redis.call('TIME')
  now = now + tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local due = redis.call('ZRANGEBYSCORE', tag .. ':tm', '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
for _, m in ipairs(due) do
  local inst = string.match(m, '^(.-)\n')
  local msg = redis.call('HGET', tag .. ':tp', m)
  if msg then
    deliver(tag, inst, msg)
  end
  redis.call('ZREM', tag .. ':tm', m)
  redis.call('HDEL', tag .. ':tp', m)
  redis.call('SREM', tag .. ':ti:' .. inst, m)
end
local nxt = redis.call('ZRANGE', tag .. ':tm', 0, 0, 'WITHSCORES')
local at = -1
if nxt[2] then
  at = tonumber(nxt[2])
end
return { #due, at }
