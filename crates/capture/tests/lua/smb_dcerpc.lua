-- SMB (1 and 2) command names and DCE/RPC packet types and request opnums,
-- from TCP classifiers that register a stream parser. Messages may span
-- chunks, so each direction keeps a small buffer in the session table.

local SMB1 = {
  [0x04] = "CLOSE", [0x24] = "LOCKING_ANDX", [0x25] = "TRANSACTION",
  [0x2b] = "ECHO", [0x2e] = "READ_ANDX", [0x2f] = "WRITE_ANDX",
  [0x32] = "TRANSACTION2", [0x71] = "TREE_DISCONNECT", [0x72] = "NEGOTIATE",
  [0x73] = "SESSION_SETUP_ANDX", [0x74] = "LOGOFF_ANDX",
  [0x75] = "TREE_CONNECT_ANDX", [0xa0] = "NT_TRANSACT", [0xa2] = "NT_CREATE_ANDX",
}
local SMB2 = {
  [0] = "NegotiateProtocol", "SessionSetup", "SessionLogoff", "TreeConnect",
  "TreeDisconnect", "Create", "Close", "Flush", "Read", "Write", "Lock", "Ioctl",
  "Cancel", "KeepAlive", "Find", "Notify", "GetInfo", "SetInfo", "Break",
}
local PTYPE = {
  [0] = "request", "ping", "response", "fault", "working", "nocall", "reject",
  "ack", "cl_cancel", "fack", "cancel_ack", "bind", "bind_ack", "bind_nak",
  "alter_context", "alter_context_resp", "auth3", "shutdown", "co_cancel", "orphaned",
}
local MAX_BUFFER = 65536

local function buffered(session, str, direction)
  local t = session:table()
  t.buf = t.buf or {}
  local buf = (t.buf[direction] or "") .. str
  if #buf > MAX_BUFFER then buf = "" end
  return t, buf
end

function smbParser(session, str, direction)
  local t, buf = buffered(session, str, direction)
  while #buf >= 4 do
    local len = (buf:byte(2) & 1) * 65536 + buf:byte(3) * 256 + buf:byte(4)
    if #buf < 4 + len then break end
    local msg = buf:sub(5, 4 + len)
    if msg:sub(1, 4) == "\255SMB" and #msg >= 5 then
      local name = SMB1[msg:byte(5)] or string.format("0x%02x", msg:byte(5))
      session:add_string("smb.lua.command", name)
    elseif msg:sub(1, 4) == "\254SMB" and #msg >= 14 then
      local cmd = msg:byte(13) + msg:byte(14) * 256
      session:add_string("smb.lua.command", SMB2[cmd] or tostring(cmd))
    end
    buf = buf:sub(5 + len)
  end
  t.buf[direction] = buf
end

function smbClassify(session, str, direction)
  if session:table().smb then return end
  session:table().smb = true
  session:add_protocol("lua-smb")
  session:register_parser(smbParser)
end

local function u16(s, at, little)
  if little then return s:byte(at) + s:byte(at + 1) * 256 end
  return s:byte(at) * 256 + s:byte(at + 1)
end

function dcerpcParser(session, str, direction)
  local t, buf = buffered(session, str, direction)
  while #buf >= 16 do
    if buf:byte(1) ~= 5 then buf = "" break end
    local little = (buf:byte(5) & 0x10) ~= 0
    local fragLen = u16(buf, 9, little)
    if fragLen < 16 then buf = "" break end
    if #buf < fragLen then break end
    local ptype = buf:byte(3)
    session:add_string("dcerpc.lua.ptype", PTYPE[ptype] or tostring(ptype))
    if ptype == 0 and fragLen >= 24 then
      session:add_int("dcerpc.lua.opnum", u16(buf, 23, little))
    end
    buf = buf:sub(fragLen + 1)
  end
  t.buf[direction] = buf
end

function dcerpcClassify(session, str, direction)
  -- Version 5.0, and a bind as the first packet of the client.
  if direction ~= 0 or #str < 16 or str:byte(3) ~= 11 then return end
  session:add_protocol("lua-dcerpc")
  session:register_parser(dcerpcParser)
end

MolochSession.register_tcp_classifier("lua-smb1", 4, "\255SMB", "smbClassify")
MolochSession.register_tcp_classifier("lua-smb2", 4, "\254SMB", "smbClassify")
MolochSession.register_tcp_classifier("lua-dcerpc", 0, "\005\000", "dcerpcClassify")
