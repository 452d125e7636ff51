-- Complete activity work items of one partition: only the first completion of each counts.
-- KEYS[1]: the partition's lease key. ARGV: tag, then for each item: stream id, instance,
-- result message. Returns how many were still pending (and had their results delivered).
local tag = ARGV[1]
local acked = {}
for i = 2, #ARGV, 3 do
  if redis.call('XACK', tag .. ':act', 'w', ARGV[i]) == 1 then
    acked[#acked + 1] = ARGV[i]
    deliver(tag, ARGV[i + 1], ARGV[i + 2])
  end
end
if #acked > 0 then
  redis.call('XDEL', tag .. ':act', unpack(acked))
end
return #acked
