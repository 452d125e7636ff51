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
line_prune(line, seen, now, stale)
local count = redis.call('ZCARD', starts)
if line_turn(line, who, max - count) then
  redis.call('ZADD', starts, now, who .. '@' .. t[1] .. '.' .. t[2])
  redis.call('PEXPIRE', starts, period)
  line_leave(line, seen, who)
  return 0
end
line_wait(line, seen, who, t, now, stale)
if count >= max then
  local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + period - now
  if wait < 1 then
    wait = 1
  end
  return wait
end
return 1
