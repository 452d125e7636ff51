-- A slot of an activity's concurrency limit (`flow.rs`): at most ARGV[3] holders at once,
-- each expiring ARGV[4] ms after it was taken or last renewed (a worker that dies frees its
-- slots), and a line of those waiting, let in in the order they first asked.
--
-- KEYS[1] holders (zset: holder -> expiry, ms), KEYS[2] line (zset: holder -> when it first
-- asked, µs), KEYS[3] last asked (zset: holder -> ms); all under one hash tag.
-- ARGV[1] `acquire` | `renew` | `release`, ARGV[2] the holder, ARGV[3] the limit,
-- ARGV[4] the lease (ms), ARGV[5] how long a waiter that stopped asking keeps its place (ms).
-- acquire: 1 if it holds a slot now, else 0 (it is in line); renew: 1 if it still held it,
-- 0 if it had expired (it is taken again); release: 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holders, line, seen = KEYS[1], KEYS[2], KEYS[3]
local op, who = ARGV[1], ARGV[2]
local lease = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
if op == 'release' then
  redis.call('ZREM', holders, who)
  line_leave(line, seen, who)
  return 1
end
if op == 'renew' then
  local added = redis.call('ZADD', holders, now + lease, who)
  redis.call('PEXPIRE', holders, lease * 2)
  return 1 - added
end
if redis.call('ZSCORE', holders, who) then
  redis.call('ZADD', holders, now + lease, who)
  redis.call('PEXPIRE', holders, lease * 2)
  return 1
end
local stale = tonumber(ARGV[5])
line_prune(line, seen, now, stale)
if line_turn(line, who, tonumber(ARGV[3]) - redis.call('ZCARD', holders)) then
  redis.call('ZADD', holders, now + lease, who)
  redis.call('PEXPIRE', holders, lease * 2)
  line_leave(line, seen, who)
  return 1
end
line_wait(line, seen, who, t, now, stale)
return 0
