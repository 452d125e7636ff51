-- Retention: delete instances of the partition that finished at or before a time.
-- KEYS[1]: the partition's lease key. ARGV: tag, finished at or before (ms), at most this many.
-- Returns how many entries of the finished index it looked at (the caller goes on while that is
-- the maximum). An entry whose instance is no longer finished (restarted under the same id
-- since: `create` and `commit` keep the index exact, so this is a safety net) is dropped from
-- the index and the instance kept.
local tag = ARGV[1]
local fk = tag .. ':fin'
local ids = redis.call('ZRANGEBYSCORE', fk, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, inst in ipairs(ids) do
  local r = record(tag, inst)
  if r and FINISHED[r.rs] then
    purge_instance(tag, inst)
  else
    redis.call('ZREM', fk, inst)
  end
end
return #ids
