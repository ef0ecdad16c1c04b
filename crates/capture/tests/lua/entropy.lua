-- Shannon entropy (bits per byte) of a session's HTTP bodies, rounded, in
-- the custom integer field entropy.http. Byte counts are kept per session
-- and the entropy is computed when the session is saved.

local function entropy(counts, total)
  local sum = 0
  for _, n in pairs(counts) do
    local p = n / total
    sum = sum - p * (math.log(p) / math.log(2))
  end
  return sum
end

function httpBody(session, data)
  local t = session:table()
  local counts = t.counts
  if counts == nil then
    counts = {}
    t.counts = counts
    t.total = 0
  end
  local s = data:get()
  for i = 1, #s do
    local b = s:byte(i)
    counts[b] = (counts[b] or 0) + 1
  end
  t.total = t.total + #s
end

function entropySave(session, final)
  local t = session:table()
  if t.total and t.total > 0 then
    session:add_string("entropy.http", math.floor(entropy(t.counts, t.total) + 0.5))
  end
end

ArkimeSession.register_body_feed("http", "httpBody")
ArkimeSession.register_pre_save("entropySave")
