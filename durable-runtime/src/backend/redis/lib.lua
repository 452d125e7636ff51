-- Shared by every script of the Redis backend. All keys of one partition start with its hash
-- tag `{prefix:pN}` (ARGV[1]), so a script only ever touches keys of one cluster slot.

local FINISHED = { Completed = true, Failed = true, Terminated = true }

-- Redis's clock, read once per script call: { seconds, microseconds } as `TIME` gives it.
local script_time = nil
local function time()
  if not script_time then
    script_time = redis.call('TIME')
  end
  return script_time
end

-- How a counter is written: `%d` is exact up to 2^53 where Lua's integers have 64 bits (the
-- 64-bit builds of Redis) and a third of the cost of `%.0f`, which the others use. Set at the
-- first use (a function library cannot use `string` while it loads).
local int_format = nil
local function int_text(n)
  if not int_format then
    int_format = string.format('%d', 2 ^ 53) == '9007199254740992' and '%d' or '%.0f'
  end
  return string.format(int_format, n)
end

-- The values counters had, or were given, in this call of the script (`advance`, `fenced`).
local counters = {}

-- The next value of counter `key` (as text): one more than the last, and at least Redis's clock
-- in microseconds. Workers keep values of these counters in memory (entry ids, generations,
-- epochs); when Redis goes back in time (a restart that lost its last writes, a failover to a
-- replica that was behind) the counter goes back too, and a plain INCR would hand out values
-- again that a worker already saw for something else. The clock has moved on, so these are
-- never handed out again (unless Redis's clock went back as well). The clock is read once per
-- script call, and a counter once; a counter moved is written once, when the script call ends
-- (`flush_counters`, which every script runs after its body: a step scheduling 100,000
-- activities writes the entry counter once, not 100,000 times).
local moved = {}
local function advance(key)
  local n = counters[key]
  if n then
    n = n + 1
  else
    local t = time()
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    n = tonumber(redis.call('GET', key) or '0') + 1
    if n < now then
      n = now
    end
  end
  counters[key] = n
  local s = int_text(n)
  moved[key] = s
  return s
end

-- A value of counter `key` at least as high as any it handed out, the moves of this call (not
-- yet written) included, as text: a new instance's first inbox entry, so that an entry queued
-- earlier in the same call for an instance of the same id is never taken for the new one's.
local function last_value(key)
  local n = counters[key]
  if n then
    return int_text(n)
  end
  return redis.call('GET', key) or '0'
end

-- Write the counters `advance` moved in this script call.
local function flush_counters()
  for key, s in pairs(moved) do
    redis.call('SET', key, s)
  end
end

-- The next stream entry id of the partition: `<n>-0`, n from one counter per partition.
local function next_id(tag)
  return advance(tag .. ':seq') .. '-0'
end

-- An instance's record is one string (so that Redis keeps it compact, one key per instance):
--   `<generation> <first inbox entry> <runtime status> <history length> <s> <h>\n`
--   then the status (JSON, s bytes), the history (h bytes), the snapshot (the rest).
-- The history is its events, each preceded by its length (a varint). While it is short it is
-- kept in the record (rewriting it is cheap); once it would pass `INLINE` bytes it moves to
-- `:h:<id>`, one string that commits append to, and `h` is `o`. Releases before this one kept
-- a hash and a list of JSON events: `record` converts them the first time a script reads them
-- (`migrate.lua` does it for reads from Rust).
local INLINE = 2048

-- `n` as an unsigned LEB128 varint.
local function varint(n)
  local s = ''
  while n >= 128 do
    s = s .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return s .. string.char(n)
end

-- (`%d` writes the numbers of the header: turning a number into text with `..` costs twice as much.)
local function encode_record(r)
  local head
  if r.hout then
    head = string.format('%s %s %s %d %d o\n', r.g, r.m0, r.rs, r.hn, #r.st)
  else
    head = string.format('%s %s %s %d %d %d\n', r.g, r.m0, r.rs, r.hn, #r.st, #r.hist)
  end
  return head .. r.st .. r.hist .. r.snap
end

local function parse_record(s)
  local g, m0, rs, hn, n, h, p = string.match(s, '^(%d+) (%d+) (%a+) (%d+) (%d+) (%w+)\n()')
  if not g then
    error('durable: unreadable instance record (not written by this release of durable)')
  end
  n = tonumber(n)
  local hl = h == 'o' and 0 or tonumber(h)
  return {
    g = g, m0 = m0, rs = rs, hn = tonumber(hn), hout = h == 'o',
    st = string.sub(s, p, p + n - 1), hist = string.sub(s, p + n, p + n + hl - 1), snap = string.sub(s, p + n + hl),
  }
end

-- Append `events` (`n` of them, each after its length) to `r`'s history.
local function append_history(tag, inst, r, events, n)
  if n == 0 then
    return
  end
  r.hn = r.hn + n
  if r.hout then
    redis.call('APPEND', tag .. ':h:' .. inst, events)
  elseif #r.hist + #events <= INLINE then
    r.hist = r.hist .. events
  else
    redis.call('SET', tag .. ':h:' .. inst, r.hist .. events)
    r.hist, r.hout = '', true
  end
end

-- Empty `r`'s history (it continues as new).
local function reset_history(tag, inst, r)
  if r.hout then
    redis.call('DEL', tag .. ':h:' .. inst)
  end
  r.hn, r.hist, r.hout = 0, '', false
end

-- Convert an instance kept as a hash (`st`, `snap`, `g`, `m0`, `rs`) with a list of JSON
-- events, as releases before this one wrote it, to the one-string layout; its record.
local function migrate(tag, inst, ik)
  local v = redis.call('HMGET', ik, 'st', 'snap', 'g', 'm0', 'rs')
  local r = { g = v[3] or '0', m0 = v[4] or '0', rs = v[5] or 'Pending', hn = 0, hist = '', hout = false,
    st = v[1] or '', snap = v[2] or '' }
  local hk = tag .. ':h:' .. inst
  if redis.call('TYPE', hk).ok == 'list' then
    local items = redis.call('LRANGE', hk, 0, -1)
    local parts = {}
    for j, e in ipairs(items) do
      parts[j] = varint(#e) .. e
    end
    redis.call('DEL', hk)
    append_history(tag, inst, r, table.concat(parts), #items)
  end
  redis.call('DEL', ik)
  redis.call('SET', ik, encode_record(r))
  return r
end

-- Instance `inst`'s record (a table: g, m0, rs, hn, hist, hout, st, snap), or nil if there is none.
local function record(tag, inst)
  local ik = tag .. ':i:' .. inst
  local s = redis.pcall('GET', ik)
  if type(s) == 'table' and s.err then
    return migrate(tag, inst, ik)
  end
  if not s then
    return nil
  end
  return parse_record(s)
end

local function put_record(tag, inst, r)
  redis.call('SET', tag .. ':i:' .. inst, encode_record(r))
end

-- A new record: no history, no snapshot.
local function new_record(gen, m0, rs, st)
  return { g = gen, m0 = m0, rs = rs, hn = 0, hist = '', hout = false, st = st, snap = '' }
end

-- An entity (`@name@key`) is created by its first message: its status record, Running, with
-- no state yet. False if `inst` is not an entity id. (The status JSON's short field names are
-- `StatusOut`'s, in `record.rs`.)
local function create_entity(tag, inst)
  local name = string.match(inst, '^@([^@]+)@')
  if not name then
    return false
  end
  local t = time()
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local st = cjson.encode({ n = name, x = '', s = 'Running', i = 'null', c = ms, u = ms })
  local gen = advance(tag .. ':gen')
  local m0 = last_value(tag .. ':seq')
  put_record(tag, inst, new_record(gen, m0, 'Running', st))
  redis.call('ZADD', tag .. ':idx', ms, inst)
  return true
end

-- Append a message for instance `inst` to the partition's control stream. The entry's id says
-- when it was written (`next_id`: at least Redis's clock in microseconds), for the
-- oldest-message-age gauge.
local function enqueue(tag, inst, msg)
  redis.call('XADD', tag .. ':ctl', next_id(tag), 'i', inst, 'm', msg)
end

-- Put a message in an instance's inbox (the partition's control stream); false if there is no
-- such instance (an entity is created by its first message).
local function deliver(tag, inst, msg)
  if redis.call('EXISTS', tag .. ':i:' .. inst) == 0 and not create_entity(tag, inst) then
    return false
  end
  enqueue(tag, inst, msg)
  return true
end

-- Drop the task table `r`'s snapshot keeps apart (in `:t:<id>`), if it keeps one: its snapshot
-- then starts with `T` (`Snapshot::to_split`).
local function drop_table(tag, inst, r)
  if string.byte(r.snap, 1) == 84 then
    redis.call('DEL', tag .. ':t:' .. inst)
  end
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
  redis.call('UNLINK', tag .. ':i:' .. inst, tag .. ':h:' .. inst, tag .. ':t:' .. inst)
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

-- Whether status JSON `st` has orchestrator name `name`; `quoted` is the name as JSON. The
-- runtime's status records start with `{"n":` and the quoted name (those of releases before
-- this one with `{"name":`); an entity's first record, written by Lua, may not: it is decoded.
local function has_name(st, name, quoted)
  if string.sub(st, 1, 5) == '{"n":' then
    return string.sub(st, 6, 5 + #quoted + 1) == quoted .. ','
  end
  if string.sub(st, 1, 8) == '{"name":' then
    return string.sub(st, 9, 8 + #quoted + 1) == quoted .. ','
  end
  local d = cjson.decode(st)
  return (d.n or d.name) == name
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
  -- (Partitions come as decimal text: equal text is the same partition, without parsing.)
  if target == part or tonumber(target) == tonumber(part) then
    apply_local(tag, part, kind, args)
  else
    outbox(tag, target, kind, args)
  end
end

-- Create an instance: args = instance, status JSON, created ms, start message, parent partition,
-- parent instance ('' if none), message for the parent if the id is taken by a live instance.
local function create(tag, part, a)
  local r = record(tag, a[1])
  if r and not FINISHED[r.rs] then
    if a[6] ~= '' then
      route(tag, part, a[5], 'snd', { a[6], a[7] })
    end
    return false
  end
  if r then
    drop_timers(tag, a[1])
    drop_table(tag, a[1], r)
    redis.call('DEL', tag .. ':h:' .. a[1])
    redis.call('ZREM', tag .. ':fin', a[1])
  end
  local gen = advance(tag .. ':gen')
  local m0 = last_value(tag .. ':seq')
  put_record(tag, a[1], new_record(gen, m0, 'Pending', a[2]))
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
-- it read — else nil. One read of the four keys; `:seq` is remembered for `advance`.
local function fenced(tag, worker, epoch, mark, cursor)
  local v = redis.call('MGET', tag .. ':lease', tag .. ':epoch', tag .. ':mark', tag .. ':seq')
  if v[1] ~= worker or v[2] ~= epoch then
    return 'LOCK'
  end
  local seq = tonumber(v[4] or '0')
  if tonumber(v[3] or '0') < tonumber(mark) or seq < tonumber(cursor) then
    return 'BACK'
  end
  local t = time()
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if seq + 1 < now then
    counters[tag .. ':seq'] = now - 1
  else
    counters[tag .. ':seq'] = seq
  end
  return nil
end

-- Call `f` on a[i .. i+n-1] (the script's ARGV) in chunks (Lua's unpack has a stack limit).
local function chunked(a, i, n, f)
  local j = 0
  while j < n do
    local m = math.min(1000, n - j)
    f(unpack(a, i + j, i + j + m - 1))
    j = j + m
  end
end
