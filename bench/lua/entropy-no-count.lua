-- Benchmark: crates/capture/tests/lua/entropy.lua without its counting
-- loop (the body is still fetched with data:get() and its length added up,
-- the entropy still computed at save): what the entropy sample costs apart
-- from counting bytes.

local byte, log = string.byte, math.log

-- A fresh count table: keys 0..255, all zero.
local new_counts = load("return {[0] = 0" .. (", 0"):rep(255) .. "}")

function httpBody(session, data)
  local t = session:table()
  local c = t.counts
  if not c then
    c = new_counts()
    t.counts, t.total = c, 0
  end
  local s = data:get()
  local n = #s
  t.total = t.total + n
end

-- k * log(k) for a byte count k (0 for 0), computed once per count.
local klogk = setmetatable({[0] = 0}, {__index = function(t, k)
  local v = k * log(k)
  if k < 65536 then t[k] = v end
  return v
end})

-- sum_klogk(c, L): L[c[0]] + L[c[1]] + ... + L[c[255]], written out (no
-- loop counter, no zero test, no log() call per count).
local terms = {}
for b = 0, 255 do terms[#terms + 1] = "L[c[" .. b .. "]]" end
local sum_klogk = load("local c, L = ... return " .. table.concat(terms, " + "))

function entropySave(session, final)
  local t = session:table()
  local total = t.total
  if not total or total == 0 then return end
  -- H = log2(N) - (1/N) * sum of k * log2(k) over the byte counts k.
  local sum = sum_klogk(t.counts, klogk)
  local bits = (log(total) - sum / total) / log(2)
  session:add_string("entropy.http", math.floor(bits + 0.5))
end

ArkimeSession.register_body_feed("http", "httpBody")
ArkimeSession.register_pre_save("entropySave")
