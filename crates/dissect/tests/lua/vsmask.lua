-- STAT: a UDP status report (port 6000) with value strings, bit masks,
-- booleans, several display bases and expert info.
local stat = Proto("mwstat", "Status Report Protocol")
local kinds = { [0] = "Idle", [1] = "Running", [2] = "Failed" }
local f_ver   = ProtoField.uint8("mwstat.version", "Version", base.DEC, nil, 0xf0)
local f_kind  = ProtoField.uint8("mwstat.kind", "Kind", base.DEC, kinds, 0x0f)
local f_flags = ProtoField.uint16("mwstat.flags", "Flags", base.HEX)
local f_urg   = ProtoField.bool("mwstat.flags.urgent", "Urgent", 16, nil, 0x8000)
local f_ack   = ProtoField.bool("mwstat.flags.ack", "Ack", 16, { "Acknowledged", "Not acknowledged" }, 0x4000)
local f_prio  = ProtoField.uint16("mwstat.flags.prio", "Priority", base.DEC, nil, 0x0700)
local f_code  = ProtoField.uint32("mwstat.code", "Code", base.HEX_DEC)
local f_temp  = ProtoField.int16("mwstat.temp", "Temperature", base.DEC)
local f_load  = ProtoField.uint8("mwstat.load", "Load", base.DEC_HEX)
local f_src   = ProtoField.ipv4("mwstat.origin", "Origin")
local f_name  = ProtoField.stringz("mwstat.name", "Name")
local f_tail  = ProtoField.bytes("mwstat.tail", "Trailer")
local e_fail  = ProtoExpert.new("mwstat.failed", "Component failed", expert.group.RESPONSE_CODE, expert.severity.WARN)
local e_short = ProtoExpert.new("mwstat.short", "Report truncated", expert.group.MALFORMED, expert.severity.ERROR)
stat.fields = { f_ver, f_kind, f_flags, f_urg, f_ack, f_prio, f_code, f_temp, f_load, f_src, f_name, f_tail }
stat.experts = { e_fail, e_short }

function stat.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "STAT"
  local t = tree:add(stat, tvb())
  if tvb:len() < 14 then
    t:add_proto_expert_info(e_short)
    return
  end
  t:add(f_ver, tvb(0, 1))
  local kind = t:add(f_kind, tvb(0, 1))
  local flags = t:add(f_flags, tvb(1, 2))
  flags:add(f_urg, tvb(1, 2))
  flags:add(f_ack, tvb(1, 2))
  flags:add(f_prio, tvb(1, 2))
  t:add(f_code, tvb(3, 4))
  t:add(f_temp, tvb(7, 2))
  t:add(f_load, tvb(9, 1))
  t:add(f_src, tvb(10, 4))
  local k = bit32.band(tvb(0, 1):uint(), 0x0f)
  if k == 2 then
    kind:add_proto_expert_info(e_fail, "Component failed with code " .. tvb(3, 4):uint())
  end
  local rest = 14
  if tvb:len() > rest then
    local n = tvb(rest):strsize()
    t:add(f_name, tvb(rest, n))
    rest = rest + n
  end
  if tvb:len() > rest then
    t:add(f_tail, tvb(rest))
  end
  pinfo.cols.info = string.format("Status %s code=%d", kinds[k] or "?", tvb(3, 4):uint())
end

DissectorTable.get("udp.port"):add(6000, stat)
