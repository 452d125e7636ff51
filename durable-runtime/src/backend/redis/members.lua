-- The live-worker set, by Redis's clock (a worker's own clock may be wrong). KEYS[1]: the set
-- (`{P}:workers`). ARGV: worker, lease ms.
-- Marks the worker live for one lease, drops the workers whose mark has run out, and returns
-- {Redis's time in ms, the live workers}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return { now, redis.call('ZRANGE', KEYS[1], 0, -1) }
