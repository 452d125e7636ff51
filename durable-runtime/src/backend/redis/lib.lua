-- Shared by every script of the Redis backend. All keys of one partition start with its hash
-- tag `{prefix:pN}` (ARGV[1]), so a script only ever touches keys of one cluster slot.

local FINISHED = { Completed = true, Failed = true, Terminated = true }

-- Counters `advance` has brought up to the clock in this call of the script.
local clocked = {}

-- The next value of counter `key` (as text): one more than the last, and at least Redis's clock
-- in microseconds. Workers keep values of these counters in memory (entry ids, generations,
-- epochs); when Redis goes back in time (a restart that lost its last writes, a failover to a
-- replica that was behind) the counter goes back too, and a plain INCR would hand out values
-- again that a worker already saw for something else. The clock has moved on, so these are
-- never handed out again (unless Redis's clock went back as well). The clock is looked at once
-- per counter and script call (about 2 µs); the next values are one more each (about 0.6 µs).
local function advance(key)
  if clocked[key] then
    redis.call('INCR', key)
    return redis.call('GET', key)
  end
  clocked[key] = true
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local n = tonumber(redis.call('GET', key) or '0') + 1
  if n < now then
    n = now
  end
  n = string.format('%.0f', n)
  redis.call('SET', key, n)
  return n
end

-- The next stream entry id of the partition: `<n>-0`, n from one counter per partition.
local function next_id(tag)
  return advance(tag .. ':seq') .. '-0'
end

-- An entity (`@name@key`) is created by its first message: its status record, Running, with
-- no state yet. False if `inst` is not an entity id.
local function create_entity(tag, inst)
  local name = string.match(inst, '^@([^@]+)@')
  if not name then
    return false
  end
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local st = cjson.encode({
    name = name, instance_id = inst, execution_id = '', runtime_status = 'Running', input = 'null',
    output = cjson.null, custom_status = cjson.null, error = cjson.null, reason = cjson.null,
    created_ms = ms, updated_ms = ms, parent = cjson.null,
  })
  local gen = advance(tag .. ':gen')
  local m0 = redis.call('GET', tag .. ':seq') or '0'
  redis.call('HSET', tag .. ':i:' .. inst, 'st', st, 'rs', 'Running', 'g', gen, 'm0', m0)
  redis.call('ZADD', tag .. ':idx', ms, inst)
  return true
end

-- Redis's clock in ms, read once per script call (for the `t` field of control entries).
local script_ms = nil
local function now_ms()
  if not script_ms then
    local t = redis.call('TIME')
    script_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return script_ms
end

-- Put a message in an instance's inbox (the partition's control stream); false if there is no
-- such instance (an entity is created by its first message). `t`: when (Redis's clock, ms),
-- for the oldest-message-age gauge; readers ignore it.
local function deliver(tag, inst, msg)
  if redis.call('EXISTS', tag .. ':i:' .. inst) == 0 and not create_entity(tag, inst) then
    return false
  end
  redis.call('XADD', tag .. ':ctl', next_id(tag), 'i', inst, 'm', msg, 't', now_ms())
  return true
end

local function drop_timers(tag, inst)
  local ti = tag .. ':ti:' .. inst
  local members = redis.call('SMEMBERS', ti)
  for _, m in ipairs(members) do
    redis.call('ZREM', tag .. ':tm', m)
    redis.call('HDEL', tag .. ':tp', m)
  end
  redis.call('DEL', ti)
end

-- Delete an instance with everything it owns: its record, history and timers, and its entries
-- in the creation index and the finished index.
local function purge_instance(tag, inst)
  drop_timers(tag, inst)
  redis.call('UNLINK', tag .. ':i:' .. inst, tag .. ':h:' .. inst)
  redis.call('ZREM', tag .. ':idx', inst)
  redis.call('ZREM', tag .. ':fin', inst)
end

-- Whether `a` sorts before `b` byte by byte, as Redis orders the members of a sorted set with
-- equal scores (Lua's `<` follows the locale).
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- The rank of the first member of sorted set `key` that comes after (score `ms`, member `id`)
-- in the set's order (score, then member bytes); `id` need not be a member. O(log n) when it
-- is one, O(log² n) when it is not.
local function rank_after(key, ms, id)
  local s = redis.call('ZSCORE', key, id)
  if s and tonumber(s) == tonumber(ms) then
    return redis.call('ZRANK', key, id) + 1
  end
  -- Ranks lo .. hi-1 have score `ms`: find the first whose member sorts after `id`.
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. ms)
  local hi = redis.call('ZCOUNT', key, '-inf', ms)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if bytes_lt(id, redis.call('ZRANGE', key, mid, mid)[1]) then
      hi = mid
    else
      lo = mid + 1
    end
  end
  return lo
end

-- Walk the partition's instances in creation order (the creation index), starting after
-- (`after_ms`, `after_id`) (from the start if `after_ms` is ''), created in [`from`, `to`) ms
-- ('' = unbounded), looking at `budget` of them at most. `f(inst, score)` returns two booleans:
-- it deleted the instance from the index, and the walk stops here. Returns the score and id of
-- the last instance looked at (false, false if none) and whether the range has more after it.
-- A walk costs O(log n + looked at).
local function walk(tag, after_ms, after_id, from, to, budget, f)
  local key = tag .. ':idx'
  local r = 0
  if after_ms ~= '' then
    r = rank_after(key, after_ms, after_id)
  end
  if from ~= '' then
    r = math.max(r, redis.call('ZCOUNT', key, '-inf', '(' .. from))
  end
  local stop
  if to ~= '' then
    stop = redis.call('ZCOUNT', key, '-inf', '(' .. to)
  else
    stop = redis.call('ZCARD', key)
  end
  local seen, last_s, last_m = 0, false, false
  while r < stop and seen < budget do
    local chunk = redis.call('ZRANGE', key, r, r + math.min(64, stop - r, budget - seen) - 1, 'WITHSCORES')
    if #chunk == 0 then
      break
    end
    local halt = false
    for j = 1, #chunk, 2 do
      last_m, last_s = chunk[j], chunk[j + 1]
      seen = seen + 1
      local deleted
      deleted, halt = f(last_m, last_s)
      if deleted then
        stop = stop - 1
      else
        r = r + 1
      end
      if halt then
        break
      end
    end
    if halt then
      break
    end
  end
  return last_s, last_m, r < stop
end

-- Whether status JSON `st` has orchestrator name `name`; `prefix` is `{"name":` followed by
-- the name as JSON, which is how the runtime's status records start (an entity's first record,
-- written by Lua, may not: it is decoded).
local function has_name(st, name, prefix)
  if string.sub(st, 1, 8) == '{"name":' then
    return string.sub(st, 1, #prefix) == prefix
  end
  return cjson.decode(st).name == name
end

-- An operation for another partition goes to this partition's outbox, numbered per target, and
-- the owner moves it over (exactly once: the target keeps the last number it applied).
local function outbox(tag, target, kind, args)
  local q = redis.call('HINCRBY', tag .. ':oseq', target, 1)
  local fields = { 't', target, 'q', q, 'k', kind, 'n', #args }
  for i, a in ipairs(args) do
    fields[#fields + 1] = 'a' .. i
    fields[#fields + 1] = a
  end
  redis.call('XADD', tag .. ':ob', next_id(tag), unpack(fields))
end

local apply_local

-- Apply an operation here if it targets this partition, else queue it in the outbox.
local function route(tag, part, target, kind, args)
  if tonumber(target) == tonumber(part) then
    apply_local(tag, part, kind, args)
  else
    outbox(tag, target, kind, args)
  end
end

-- Create an instance: args = instance, status JSON, created ms, start message, parent partition,
-- parent instance ('' if none), message for the parent if the id is taken by a live instance.
local function create(tag, part, a)
  local ik = tag .. ':i:' .. a[1]
  local rs = redis.call('HGET', ik, 'rs')
  if rs and not FINISHED[rs] then
    if a[6] ~= '' then
      route(tag, part, a[5], 'snd', { a[6], a[7] })
    end
    return false
  end
  if rs then
    drop_timers(tag, a[1])
    redis.call('DEL', tag .. ':h:' .. a[1])
    redis.call('HDEL', ik, 'snap')
    redis.call('ZREM', tag .. ':fin', a[1])
  end
  local gen = advance(tag .. ':gen')
  local m0 = redis.call('GET', tag .. ':seq') or '0'
  redis.call('HSET', ik, 'st', a[2], 'rs', 'Pending', 'g', gen, 'm0', m0)
  redis.call('ZADD', tag .. ':idx', a[3], a[1])
  deliver(tag, a[1], a[4])
  return true
end

apply_local = function(tag, part, kind, a)
  if kind == 'act' then
    -- instance, request JSON
    redis.call('XADD', tag .. ':act', next_id(tag), 'i', a[1], 'r', a[2])
  elseif kind == 'tmr' then
    -- instance, key, fire at (ms), message
    local m = a[1] .. '\n' .. a[2]
    redis.call('ZADD', tag .. ':tm', a[3], m)
    redis.call('HSET', tag .. ':tp', m, a[4])
    redis.call('SADD', tag .. ':ti:' .. a[1], m)
  elseif kind == 'cnl' then
    -- instance, key
    local m = a[1] .. '\n' .. a[2]
    redis.call('ZREM', tag .. ':tm', m)
    redis.call('HDEL', tag .. ':tp', m)
    redis.call('SREM', tag .. ':ti:' .. a[1], m)
  elseif kind == 'snd' then
    -- instance, message
    deliver(tag, a[1], a[2])
  elseif kind == 'new' then
    create(tag, part, a)
  else
    error('durable: unknown operation ' .. tostring(kind))
  end
end

-- The lease of the partition is held by `worker` at `epoch`.
local function holds(tag, worker, epoch)
  return redis.call('GET', tag .. ':lease') == worker and redis.call('GET', tag .. ':epoch') == epoch
end

-- Whether the lease holder may write: 'LOCK' if the lease is not held at this epoch, 'BACK' if
-- Redis went back in time and lost what the holder saw — `:mark` (bumped by each of its commits)
-- is below the highest value its commits were answered with, or `:seq` is below the last entry
-- it read — else nil.
local function fenced(tag, worker, epoch, mark, cursor)
  if not holds(tag, worker, epoch) then
    return 'LOCK'
  end
  if tonumber(redis.call('GET', tag .. ':mark') or '0') < tonumber(mark)
    or tonumber(redis.call('GET', tag .. ':seq') or '0') < tonumber(cursor) then
    return 'BACK'
  end
  return nil
end

-- Call `f` on ARGV[i .. i+n-1] in chunks (Lua's unpack has a stack limit).
local function chunked(i, n, f)
  local j = 0
  while j < n do
    local m = math.min(1000, n - j)
    f(unpack(ARGV, i + j, i + j + m - 1))
    j = j + m
  end
end
