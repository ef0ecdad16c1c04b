-- MWH: a UDP protocol found by heuristics (any port): magic "MWH1",
-- u8 message count, then count x (u8 id, u16 value).
local mwh = Proto("mwh", "Moonwire Heuristic Protocol")
local f_magic = ProtoField.string("mwh.magic", "Magic")
local f_count = ProtoField.uint8("mwh.count", "Count")
local f_id = ProtoField.uint8("mwh.id", "Id", base.HEX)
local f_value = ProtoField.uint16("mwh.value", "Value")
mwh.fields = { f_magic, f_count, f_id, f_value }

local function heuristic(tvb, pinfo, tree)
  if tvb:len() < 5 then return false end
  if tvb(0, 4):string() ~= "MWH1" then return false end
  local count = tvb(4, 1):uint()
  if tvb:len() ~= 5 + 3 * count then return false end
  pinfo.cols.protocol = "MWH"
  local t = tree:add(mwh, tvb(), "Moonwire Heuristic Protocol, " .. count .. " entries")
  t:add(f_magic, tvb(0, 4))
  t:add(f_count, tvb(4, 1))
  for i = 0, count - 1 do
    local e = t:add(tvb(5 + 3 * i, 3), "Entry " .. (i + 1))
    e:add(f_id, tvb(5 + 3 * i, 1))
    e:add(f_value, tvb(6 + 3 * i, 2))
  end
  return true
end

mwh:register_heuristic("udp", heuristic)
