-- LENP: a length-prefixed protocol over TCP port 7777.
-- Each PDU: u16 length (of what follows), u8 opcode, payload.
-- PDUs may span segments and several may share one segment, so the
-- dissector asks TCP for more bytes through pinfo.desegment_len/offset.
local lenp = Proto("lenp", "Length Prefixed Protocol")
local ops = { [1] = "HELLO", [2] = "DATA", [3] = "BYE" }
local f_len = ProtoField.uint16("lenp.len", "Length", base.DEC)
local f_op = ProtoField.uint8("lenp.op", "Opcode", base.DEC, ops)
local f_payload = ProtoField.string("lenp.payload", "Payload")
lenp.fields = { f_len, f_op, f_payload }

function lenp.dissector(tvb, pinfo, tree)
  local offset = 0
  local total = tvb:len()
  local count = 0
  while offset < total do
    if total - offset < 2 then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return total
    end
    local len = tvb(offset, 2):uint()
    if total - offset < 2 + len then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = 2 + len - (total - offset)
      return total
    end
    local t = tree:add(lenp, tvb(offset, 2 + len))
    t:add(f_len, tvb(offset, 2))
    t:add(f_op, tvb(offset + 2, 1))
    if len > 1 then
      t:add(f_payload, tvb(offset + 3, len - 1))
    end
    t:append_text(", " .. (ops[tvb(offset + 2, 1):uint()] or "?"))
    count = count + 1
    offset = offset + 2 + len
  end
  pinfo.cols.protocol = "LENP"
  pinfo.cols.info = "LENP PDUs: " .. count
  return offset
end

DissectorTable.get("tcp.port"):add(7777, lenp)
