-- Hand an activity work item back: queued again under a new id for any worker.
-- KEYS[1]: the partition's lease key. ARGV: tag, stream id. Returns 1, or 0 if it was not
-- pending (completed, or handed back already).
local tag = ARGV[1]
local entries = redis.call('XRANGE', tag .. ':act', ARGV[2], ARGV[2])
if redis.call('XACK', tag .. ':act', 'w', ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', tag .. ':act', ARGV[2])
if entries[1] then
  redis.call('XADD', tag .. ':act', next_id(tag), unpack(entries[1][2]))
end
return 1
