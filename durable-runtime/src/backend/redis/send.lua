-- Put clients' messages in instances' inboxes. KEYS[1]: the partition's lease key.
-- ARGV: tag, then for each message its instance and the message. Returns, for each message in
-- order, 1, or 0 if there is no such instance (an entity is created by its first message).
local tag = ARGV[1]
local out = {}
local present = {}
for i = 2, #ARGV - 1, 2 do
  local inst = ARGV[i]
  if present[inst] then
    enqueue(tag, inst, ARGV[i + 1])
    out[#out + 1] = 1
  elseif deliver(tag, inst, ARGV[i + 1]) then
    present[inst] = true
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
