-- Create an instance (client). KEYS[1]: the partition's lease key (for routing).
-- ARGV: tag, partition, instance, status JSON, created ms, start message.
-- Returns 1, or 0 if a live instance has that id.
if create(ARGV[1], ARGV[2], { ARGV[3], ARGV[4], ARGV[5], ARGV[6], '', '', '' }) then
  return 1
end
return 0
