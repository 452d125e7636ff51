-- Put a message in an instance's inbox (client). KEYS[1]: the partition's lease key.
-- ARGV: tag, instance, message. Returns 1, or 0 if there is no such instance.
if deliver(ARGV[1], ARGV[2], ARGV[3]) then
  return 1
end
return 0
