-- Delete activity consumers of a partition that hold no pending entry: those idle for longer
-- than ARGV[2] ms (-1: none), and the one named ARGV[3] ('' if none; a worker that stops).
-- Checked and deleted in one script: `XGROUP DELCONSUMER` drops a consumer's pending entries
-- with it, so no entry may be delivered to the consumer between the check and the deletion.
-- A deleted consumer that reads again is created again.
-- KEYS[1]: the partition's lease key (for routing). ARGV: tag, idle ms, consumer.
-- Returns how many consumers were deleted.
local key = ARGV[1] .. ':act'
local idle_ms = tonumber(ARGV[2])
local list = redis.pcall('XINFO', 'CONSUMERS', key, 'w')
if type(list) ~= 'table' or list.err then
  return 0
end
local deleted = 0
for _, c in ipairs(list) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  if f.pending == 0 and (f.name == ARGV[3] or (idle_ms >= 0 and f.idle > idle_ms)) then
    redis.call('XGROUP', 'DELCONSUMER', key, 'w', f.name)
    deleted = deleted + 1
  end
end
return deleted
