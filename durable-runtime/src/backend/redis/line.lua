-- The line of those waiting for a slot (`slot.lua`) or a start (`rate.lua`), let in in the
-- order they first asked. `line`: holder -> when it first asked (µs); `seen`: holder -> when it
-- last asked (ms). A waiter that stopped asking for `stale` ms loses its place.

-- Drop the waiters that stopped asking.
local function line_prune(line, seen, now, stale)
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)) do
    redis.call('ZREM', line, w)
    redis.call('ZREM', seen, w)
  end
end

-- Whether `who` may go now, with `free` places: it is among the first `free` in line, or it is
-- not in line and the line is shorter than `free`.
local function line_turn(line, who, free)
  local rank = redis.call('ZRANK', line, who)
  if rank then
    return rank < free
  end
  return redis.call('ZCARD', line) < free
end

-- `who` leaves the line (it went, or gave up).
local function line_leave(line, seen, who)
  redis.call('ZREM', line, who)
  redis.call('ZREM', seen, who)
end

-- `who` waits: in line where it first asked (TIME reply `t`), seen now.
local function line_wait(line, seen, who, t, now, stale)
  redis.call('ZADD', line, 'NX', tonumber(t[1]) * 1000000 + tonumber(t[2]), who)
  redis.call('ZADD', seen, now, who)
  redis.call('PEXPIRE', line, stale * 4)
  redis.call('PEXPIRE', seen, stale * 4)
end
