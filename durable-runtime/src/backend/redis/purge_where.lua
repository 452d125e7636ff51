-- Purge the finished instances of a partition that match a filter, in creation order.
-- KEYS[1]: the partition's lease key.
-- ARGV: tag, after ms ('' = from the start), after id, created from ms (''), created to ms (''),
--   name ('' = any), the name as JSON (see `has_name`), purge at most this many, look at most at
--   this many, n, n runtime statuses (finished ones only), instance id prefix ('' = any).
-- Returns { how many it purged, last score looked at ('' if none), its id, 1 if the range has
--   more after it }.
local tag, name, quoted = ARGV[1], ARGV[6], ARGV[7]
local max, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
local n = tonumber(ARGV[10])
local want = {}
for j = 1, n do
  if FINISHED[ARGV[10 + j]] then
    want[ARGV[10 + j]] = true
  end
end
local idp = ARGV[11 + n] or ''
local purged = 0
local last_s, last_m, more = walk(tag, ARGV[2], ARGV[3], ARGV[4], ARGV[5], budget, function(inst, _)
  if idp ~= '' and string.sub(inst, 1, #idp) ~= idp then
    return false, false
  end
  local r = record(tag, inst)
  -- Entities never finish, so they never match.
  if r and want[r.rs] and string.sub(inst, 1, 1) ~= '@' and (name == '' or has_name(r.st, name, quoted)) then
    purge_instance(tag, inst)
    purged = purged + 1
    return true, purged >= max
  end
  return false, false
end)
return { purged, last_s or '', last_m or '', more and 1 or 0 }
