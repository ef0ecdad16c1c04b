-- ENV: an envelope over TCP port 8000 (u8 type, u16 length, body) whose
-- bodies are dissected by protocols registered in a Lua-defined
-- dissector table "env.type". PDUs are split with dissect_tcp_pdus.
local env = Proto("env", "Envelope Protocol")
local f_type = ProtoField.uint8("env.type", "Type", base.HEX)
local f_len = ProtoField.uint16("env.len", "Length")
env.fields = { f_type, f_len }
local types = DissectorTable.new("env.type", "Envelope type", ftypes.UINT8, base.HEX, env)

local function pdu_len(tvb, pinfo, offset)
  return 3 + tvb(offset + 1, 2):uint()
end

local function dissect_pdu(tvb, pinfo, tree)
  local t = tree:add(env, tvb(0, 3))
  t:add(f_type, tvb(0, 1))
  t:add(f_len, tvb(1, 2))
  local body = tvb(3):tvb()
  -- Types nobody registered end up in the "data" dissector.
  types:try(tvb(0, 1):uint(), body, pinfo, tree)
  return tvb:len()
end

function env.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "ENV"
  return dissect_tcp_pdus(tvb, tree, 3, pdu_len, dissect_pdu)
end
DissectorTable.get("tcp.port"):add(8000, env)

-- Body protocols chained through the table.
local login = Proto("envlogin", "Envelope Login")
local f_user = ProtoField.string("envlogin.user", "User")
login.fields = { f_user }
function login.dissector(tvb, pinfo, tree)
  local t = tree:add(login, tvb())
  t:add(f_user, tvb())
  pinfo.cols.info:append(" login=" .. tvb():string())
  return tvb:len()
end

local metric = Proto("envmetric", "Envelope Metric")
local f_mid = ProtoField.uint16("envmetric.id", "Metric Id")
local f_mval = ProtoField.uint32("envmetric.value", "Metric Value")
metric.fields = { f_mid, f_mval }
function metric.dissector(tvb, pinfo, tree)
  local t = tree:add(metric, tvb())
  t:add(f_mid, tvb(0, 2))
  t:add(f_mval, tvb(2, 4))
  return tvb:len()
end

types:add(1, login)
types:add(2, metric)
