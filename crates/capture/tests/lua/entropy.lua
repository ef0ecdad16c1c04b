-- Shannon entropy (bits per byte) of a session's HTTP bodies, rounded, in
-- the custom integer field entropy.http. Byte counts are kept per session
-- (bodies arrive in pieces) and the entropy is computed when the session
-- is saved. Bytes are read eight at a time: string.byte with a range
-- returns several values per call, which is much cheaper than one call
-- per byte.

local byte = string.byte
local log = math.log

function httpBody(session, data)
  local t = session:table()
  local c = t.counts
  if c == nil then
    c = {}
    for b = 0, 255 do c[b] = 0 end
    t.counts = c
    t.total = 0
  end
  local s = data:get()
  local n = #s
  local i = 1
  while i + 7 <= n do
    local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, i, i + 7)
    c[b1] = c[b1] + 1; c[b2] = c[b2] + 1; c[b3] = c[b3] + 1; c[b4] = c[b4] + 1
    c[b5] = c[b5] + 1; c[b6] = c[b6] + 1; c[b7] = c[b7] + 1; c[b8] = c[b8] + 1
    i = i + 8
  end
  while i <= n do
    local b1 = byte(s, i)
    c[b1] = c[b1] + 1
    i = i + 1
  end
  t.total = t.total + n
end

function entropySave(session, final)
  local t = session:table()
  local total = t.total
  if not total or total == 0 then return end
  local sum = 0
  for b = 0, 255 do
    local k = t.counts[b]
    if k > 0 then
      local p = k / total
      sum = sum - p * log(p, 2)
    end
  end
  session:add_string("entropy.http", math.floor(sum + 0.5))
end

ArkimeSession.register_body_feed("http", "httpBody")
ArkimeSession.register_pre_save("entropySave")
