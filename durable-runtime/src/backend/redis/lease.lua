-- A partition's lease. KEYS[1]: the lease key. ARGV: tag, mode, worker, ttl ms, epoch, and for
-- renew the holder's mark and cursor (see `fenced`).
-- acquire: take the lease if it is free or already ours, with a new epoch (fencing every
--   commit made under an older one, also after Redis went back in time: see `advance`);
--   returns the epoch, or 0 if another worker holds it.
-- renew: extend it if we hold it at this epoch; 1, 0 (not held), or -1 (held, but Redis went
--   back in time: the holder reads the partition again under a new epoch).
-- release: drop it if we hold it at this epoch; 1 or 0.
local tag, mode, worker, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lk = tag .. ':lease'
local cur = redis.call('GET', lk)
if mode == 'acquire' then
  if cur and cur ~= worker then
    return 0
  end
  redis.call('SET', lk, worker, 'PX', ttl)
  return tonumber(advance(tag .. ':epoch'))
elseif mode == 'renew' then
  local refused = fenced(tag, worker, ARGV[5], ARGV[6], ARGV[7])
  if refused == 'LOCK' then
    return 0
  end
  redis.call('PEXPIRE', lk, ttl)
  if refused == 'BACK' then
    return -1
  end
  return 1
elseif mode == 'release' then
  if holds(tag, worker, ARGV[5]) then
    redis.call('DEL', lk)
    return 1
  end
  return 0
end
error('durable: unknown lease mode ' .. tostring(mode))
