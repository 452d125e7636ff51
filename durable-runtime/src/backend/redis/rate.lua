-- A start under an activity's rate limit (`flow.rs`): at most ARGV[2] starts in any window of
-- ARGV[3] ms (a sliding log of start times, by Redis's clock), and a line of those waiting,
-- let in in the order they first asked.
--
-- KEYS[1] starts (zset: start -> ms), KEYS[2] line (zset: holder -> when it first asked, µs),
-- KEYS[3] last asked (zset: holder -> ms); all under one hash tag.
-- ARGV[1] the holder, ARGV[2] the limit, ARGV[3] the period (ms), ARGV[4] how long a waiter
-- that stopped asking keeps its place (ms).
-- Returns 0 if it may start now (the start is recorded), else the ms to wait before asking
-- again (at least 1).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local starts, line, seen = KEYS[1], KEYS[2], KEYS[3]
local who, max, period, stale = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - period)
for _, w in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)) do
  redis.call('ZREM', line, w)
  redis.call('ZREM', seen, w)
end
local count = redis.call('ZCARD', starts)
local free = max - count
local rank = redis.call('ZRANK', line, who)
local ok
if rank then
  ok = rank < free
else
  ok = redis.call('ZCARD', line) < free
end
if ok then
  redis.call('ZADD', starts, now, who .. '@' .. t[1] .. '.' .. t[2])
  redis.call('PEXPIRE', starts, period)
  redis.call('ZREM', line, who)
  redis.call('ZREM', seen, who)
  return 0
end
if not rank then
  redis.call('ZADD', line, tonumber(t[1]) * 1000000 + tonumber(t[2]), who)
end
redis.call('ZADD', seen, now, who)
redis.call('PEXPIRE', line, stale * 4)
redis.call('PEXPIRE', seen, stale * 4)
if count >= max then
  local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + period - now
  if wait < 1 then
    wait = 1
  end
  return wait
end
return 1
