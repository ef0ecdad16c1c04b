-- Shannon entropy (bits per byte) of a session's HTTP bodies, rounded, in
-- the custom integer field entropy.http. Byte counts are kept per session
-- (bodies arrive in pieces) and the entropy is computed when the session
-- is saved.
--
-- Counting every body byte in Lua is this script's whole cost (about 3 VM
-- instructions per byte), so the loop does as little else as it can:
-- string.byte returns 32 bytes per call (one C call instead of 32), and
-- the count table is made by a constructor with all 256 keys present, so
-- no increment ever inserts a key.

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
  local i = 1
  while i + 31 <= n do
    local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12,
          b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23,
          b24, b25, b26, b27, b28, b29, b30, b31, b32 = byte(s, i, i + 31)
    c[b1] = c[b1] + 1; c[b2] = c[b2] + 1; c[b3] = c[b3] + 1; c[b4] = c[b4] + 1
    c[b5] = c[b5] + 1; c[b6] = c[b6] + 1; c[b7] = c[b7] + 1; c[b8] = c[b8] + 1
    c[b9] = c[b9] + 1; c[b10] = c[b10] + 1; c[b11] = c[b11] + 1; c[b12] = c[b12] + 1
    c[b13] = c[b13] + 1; c[b14] = c[b14] + 1; c[b15] = c[b15] + 1; c[b16] = c[b16] + 1
    c[b17] = c[b17] + 1; c[b18] = c[b18] + 1; c[b19] = c[b19] + 1; c[b20] = c[b20] + 1
    c[b21] = c[b21] + 1; c[b22] = c[b22] + 1; c[b23] = c[b23] + 1; c[b24] = c[b24] + 1
    c[b25] = c[b25] + 1; c[b26] = c[b26] + 1; c[b27] = c[b27] + 1; c[b28] = c[b28] + 1
    c[b29] = c[b29] + 1; c[b30] = c[b30] + 1; c[b31] = c[b31] + 1; c[b32] = c[b32] + 1
    i = i + 32
  end
  for j = i, n do
    local b = byte(s, j)
    c[b] = c[b] + 1
  end
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
