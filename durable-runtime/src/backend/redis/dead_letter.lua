-- Move an entry that cannot be read (a message variant from a newer release, say) to the
-- partition's dead-letter stream, with where it came from and why, and take it out of its
-- stream so that it is never read again. Needs no lib.lua.
-- KEYS[1]: the source stream, KEYS[2]: the dead-letter stream (both of the partition's tag).
-- ARGV: source kind ('ctl': control stream, 'act': activity stream with group 'w'), entry id,
--   partition, reason, at most this many dead letters kept (approximately), then the raw
--   fields of the entry (name, value, …).
-- Returns 1, or 0 if the entry is gone already (moved, consumed or completed elsewhere).
local src, dead, kind, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if kind == 'act' then
  if redis.call('XACK', src, 'w', id) == 0 then
    return 0
  end
elseif #redis.call('XRANGE', src, id, id) == 0 then
  return 0
end
redis.call('XDEL', src, id)
local fields = { 'stream', src, 'id', id, 'partition', ARGV[3], 'reason', ARGV[4], 'time', ms }
for i = 6, #ARGV - 1, 2 do
  fields[#fields + 1] = 'f:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('XADD', dead, 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
return 1
