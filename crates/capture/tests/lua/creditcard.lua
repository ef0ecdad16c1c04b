-- Credit-card numbers in HTTP bodies: a fast PCRE finds digit runs, the
-- Luhn check and a second (exact) PCRE confirm them. The first confirmed
-- number tags the session possible-credit-card, the third has-credit-cards,
-- and then the feed stops for the session (the callback returns -1).

local fast = MolochData.pcre_create([[\b(?:\d[ -]*?){13,16}\b]])
local exact = MolochData.pcre_create(
  [[^(?:4\d{12}(?:\d{3})?|5[1-5]\d{14}|3[47]\d{13}|6(?:011|5\d{2})\d{12})$]])

local function luhn(digits)
  local sum, alt = 0, false
  for i = #digits, 1, -1 do
    local d = digits:byte(i) - 48
    if alt then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    alt = not alt
  end
  return sum % 10 == 0
end

function ccBody(session, data)
  -- Most pieces have no run of digits at all: test the handle itself (no
  -- copy, no capture groups), and copy the text into Lua only when there
  -- is something to look at.
  if not data:pcre_ismatch(fast) then return end
  local matched, match = data:pcre_match(fast)
  local t = session:table()
  local text = data:get()
  while matched do
    local digits = match:gsub("[ -]", "")
    if luhn(digits) and MolochData.new(digits):pcre_ismatch(exact) then
      t.cards = (t.cards or 0) + 1
      if t.cards == 1 then session:add_tag("possible-credit-card") end
      if t.cards >= 3 then
        session:add_tag("has-credit-cards")
        return -1
      end
    end
    local at = text:find(match, 1, true)
    text = text:sub(at + #match)
    matched, match = MolochData.new(text):pcre_match(fast)
  end
end

function ccSave(session, final)
  local t = session:table()
  if t.cards then session:add_int("lua.number", t.cards) end
end

MolochSession.register_body_feed("http", ccBody)
MolochSession.register_save(ccSave)
