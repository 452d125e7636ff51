-- Apply an operation from another partition's outbox, exactly once and in order.
-- KEYS[1]: this (target) partition's lease key.
-- ARGV: tag, partition, source partition, number, kind, argument count, arguments.
-- Returns 'OK', 'DUP' (already applied) or 'GAP' (an earlier one is not applied yet).
local tag, part, src = ARGV[1], ARGV[2], ARGV[3]
local q = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', tag .. ':in', src) or '0')
if q <= last then
  return 'DUP'
end
if q ~= last + 1 then
  return 'GAP'
end
redis.call('HSET', tag .. ':in', src, q)
local a = {}
for j = 1, tonumber(ARGV[6]) do
  a[j] = ARGV[6 + j]
end
apply_local(tag, part, ARGV[5], a)
return 'OK'
