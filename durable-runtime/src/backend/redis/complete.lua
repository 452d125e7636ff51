-- Complete an activity work item: only the first completion counts.
-- KEYS[1]: the partition's lease key. ARGV: tag, stream id, instance, result message.
-- Returns 1, or 0 if it was already completed (or handed back).
local tag = ARGV[1]
if redis.call('XACK', tag .. ':act', 'w', ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', tag .. ':act', ARGV[2])
deliver(tag, ARGV[3], ARGV[4])
return 1
