-- RRC: the same request/response matching written with Wireshark's
-- built-in Conversation class (conv[proto]) and convtypes.
local rrc = Proto("rrc", "Request Response Conv")
local f_id = ProtoField.uint16("rrc.id", "Transaction Id", base.HEX)
local f_req_in = ProtoField.framenum("rrc.request_in", "Request In")
local f_nreq = ProtoField.uint32("rrc.requests", "Requests in conversation")
rrc.fields = { f_id, f_req_in, f_nreq }

function rrc.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "RRC"
  local conv = Conversation.find_from_pinfo(pinfo)
  local same = Conversation.find(pinfo.number, convtypes.UDP, pinfo.dst, pinfo.src, pinfo.dst_port, pinfo.src_port)
  assert(conv == same, "conversation lookups disagree")
  local data = conv[rrc]
  if data == nil then
    data = { requests = {}, count = 0 }
    conv[rrc] = data
  end
  local t = tree:add(rrc, tvb())
  local id = tvb(1, 2):uint()
  t:add(f_id, tvb(1, 2))
  if tvb(0, 1):uint() == 1 then
    if not pinfo.visited then
      data.requests[id] = pinfo.number
      data.count = data.count + 1
    end
  else
    local req = data.requests[id]
    if req then t:add(f_req_in, req):set_generated() end
  end
  t:add(f_nreq, data.count):set_generated()
end

DissectorTable.get("udp.port"):add(5301, rrc)
