-- Delete a finished instance. KEYS[1]: the partition's lease key. ARGV: tag, instance.
-- Returns 1 (purged), 0 (no such instance) or the runtime status of a live instance.
local tag, inst = ARGV[1], ARGV[2]
local r = record(tag, inst)
if not r then
  return 0
end
local rs = r.rs
-- Entities never finish: they can be purged any time (with their pending operations).
if not FINISHED[rs] and string.sub(inst, 1, 1) ~= '@' then
  return rs
end
purge_instance(tag, inst)
return 1
