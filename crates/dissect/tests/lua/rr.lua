-- RRP: request/response over UDP port 5300, matched through the
-- wslua_conversation module. Request: u8 1, u16 id, string query.
-- Response: u8 2, u16 id, u8 status. In the first pass requests are
-- remembered per conversation; responses record their request's frame
-- and requests learn their response's frame, which only a second pass
-- (-2) can show on the request.
local conversation = require "wslua_conversation"
local rrp = Proto("rrp", "Request Response Protocol")
local f_kind = ProtoField.uint8("rrp.kind", "Kind", base.DEC, { [1] = "Request", [2] = "Response" })
local f_id = ProtoField.uint16("rrp.id", "Transaction Id", base.HEX)
local f_query = ProtoField.string("rrp.query", "Query")
local f_status = ProtoField.uint8("rrp.status", "Status", base.DEC, { [0] = "OK", [1] = "Not found" })
local f_resp_in = ProtoField.framenum("rrp.response_in", "Response In")
local f_req_in = ProtoField.framenum("rrp.request_in", "Request In")
local f_time = ProtoField.relative_time("rrp.time", "Response Time")
rrp.fields = { f_kind, f_id, f_query, f_status, f_resp_in, f_req_in, f_time }

function rrp.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "RRP"
  local kind = tvb(0, 1):uint()
  local id = tvb(1, 2):uint()
  local t = tree:add(rrp, tvb())
  t:add(f_kind, tvb(0, 1))
  t:add(f_id, tvb(1, 2))
  local conv = conversation.get_conv_data(rrp, pinfo)
  if not pinfo.visited then
    if next(conv) == nil then
      conv = { pending = {} }
    end
    if kind == 1 then
      conv.pending[id] = { frame = pinfo.number, ts = pinfo.abs_ts }
    else
      local req = conv.pending[id]
      if req then
        conversation.set_packet_data(rrp, pinfo, { request = req.frame, delta = pinfo.abs_ts - req.ts })
        -- Tell the request where its response is (seen in pass two).
        conv.answers = conv.answers or {}
        conv.answers[req.frame] = pinfo.number
        conv.pending[id] = nil
      end
    end
    conversation.set_conv_data(rrp, pinfo, conv)
  end
  if kind == 1 then
    t:add(f_query, tvb(3))
    local answers = conv.answers or {}
    local resp = answers[pinfo.number]
    if resp then
      t:add(f_resp_in, resp):set_generated()
    end
    pinfo.cols.info = string.format("Request 0x%04x %s", id, tvb(3):string())
  else
    t:add(f_status, tvb(3, 1))
    local pd = conversation.get_packet_data(rrp, pinfo)
    if pd.request then
      t:add(f_req_in, pd.request):set_generated()
      t:add(f_time, pd.delta):set_generated()
    end
    pinfo.cols.info = string.format("Response 0x%04x", id)
  end
end

DissectorTable.get("udp.port"):add(5300, rrp)
