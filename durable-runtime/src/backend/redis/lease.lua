-- A partition's lease. KEYS[1]: the lease key. ARGV: tag, mode, worker, ttl ms, epoch.
-- acquire: take the lease if it is free or already ours, with a new epoch (fencing every
--   commit made under an older one); returns the epoch, or 0 if another worker holds it.
-- renew: extend it if we hold it at this epoch; 1 or 0.
-- release: drop it if we hold it at this epoch; 1 or 0.
local tag, mode, worker, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lk = tag .. ':lease'
local cur = redis.call('GET', lk)
if mode == 'acquire' then
  if cur and cur ~= worker then
    return 0
  end
  redis.call('SET', lk, worker, 'PX', ttl)
  return redis.call('INCR', tag .. ':epoch')
elseif mode == 'renew' then
  if holds(tag, worker, ARGV[5]) then
    redis.call('PEXPIRE', lk, ttl)
    return 1
  end
  return 0
elseif mode == 'release' then
  if holds(tag, worker, ARGV[5]) then
    redis.call('DEL', lk)
    return 1
  end
  return 0
end
error('durable: unknown lease mode ' .. tostring(mode))
