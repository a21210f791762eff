--[[
  Reads one transaction's stream from its snapshot on: the snapshot (if any) and the events after it, in one
  atomic step, so the two always fit together.

  KEYS[1] stream LIST of the gid (JSON events, index = revision)
  KEYS[2] snapshot HASH of the gid (f = format, v = version it folds up to, s = state JSON)

  Returns { format or '', version or -1, state or '', length of the stream, events after the snapshot... }.
  A snapshot at or past the stream's end (it cannot be, short of a bug) is ignored: all events are returned.
]]
local len = redis.call('LLEN', KEYS[1])
local snap = redis.call('HMGET', KEYS[2], 'f', 'v', 's')
local version = tonumber(snap[2] or '-1') or -1
if version >= len or not snap[3] then
  version = -1
  snap = { false, false, false }
end
local out = { snap[1] or '', version, snap[3] or '', len }
local chunk = 1000
for from = version + 1, len - 1, chunk do
  local part = redis.call('LRANGE', KEYS[1], from, math.min(from + chunk - 1, len - 1))
  for i = 1, #part do
    out[#out + 1] = part[i]
  end
end
return out
