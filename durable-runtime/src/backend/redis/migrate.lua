-- Convert an instance written by a release before this one (a hash and a list of JSON events)
-- to the one-string layout (see `record` in `lib.lua`); nothing if it has it already or does
-- not exist. KEYS[1]: the partition's lease key. ARGV: tag, instance. Returns 1.
record(ARGV[1], ARGV[2])
return 1
