-- One page of a partition's instances in creation order. KEYS[1]: the partition's lease key.
-- ARGV: tag, after ms ('' = from the start), after id, created from ms (''), created to ms (''),
--   name ('' = any), the name as JSON (see `has_name`), at most this many, look at most at this many,
--   n, n runtime statuses (none = any), instance id prefix ('' = any).
-- Returns { last score looked at ('' if none), its id, 1 if the range has more after it,
--   { score, id, status JSON, … } of the matching instances }.
local tag, name, quoted = ARGV[1], ARGV[6], ARGV[7]
local limit, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
local n = tonumber(ARGV[10])
local want = {}
for j = 1, n do
  want[ARGV[10 + j]] = true
end
local idp = ARGV[11 + n] or ''
local out, found = {}, 0
local last_s, last_m, more = walk(tag, ARGV[2], ARGV[3], ARGV[4], ARGV[5], budget, function(inst, score)
  if idp ~= '' and string.sub(inst, 1, #idp) ~= idp then
    return false, false
  end
  local r = record(tag, inst)
  if r and (n == 0 or want[r.rs]) and (name == '' or has_name(r.st, name, quoted)) then
    out[#out + 1] = score
    out[#out + 1] = inst
    out[#out + 1] = r.st
    found = found + 1
  end
  return false, found >= limit
end)
return { last_s or '', last_m or '', more and 1 or 0, out }
