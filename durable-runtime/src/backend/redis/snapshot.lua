-- An instance's record and the task table its snapshot keeps apart (`:t:<id>`), read together
-- so that no step commits between the two (for tools that show the snapshot whole).
-- KEYS[1]: the partition's lease key (for routing). ARGV: tag, instance.
-- Returns {the record, or false if there is none; the table's fields and values}.
local tag, inst = ARGV[1], ARGV[2]
return { redis.call('GET', tag .. ':i:' .. inst), redis.call('HGETALL', tag .. ':t:' .. inst) }
