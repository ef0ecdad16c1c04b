-- moonwire: constants and compatibility modules of Wireshark's Lua API
-- (the parts that need no access to the engine).

base = { NONE = 0, DEC = 1, HEX = 2, OCT = 3, DEC_HEX = 4, HEX_DEC = 5,
         LOCAL = 1000, UTC = 1001, DOY_UTC = 1002, UNIT_STRING = 0x1000,
         RANGE_STRING = 0x100 }

ftypes = { NONE = 0, PROTOCOL = 1, BOOLEAN = 2, CHAR = 3, UINT8 = 4, UINT16 = 5,
           UINT24 = 6, UINT32 = 7, UINT64 = 11, INT8 = 13, INT16 = 14, INT24 = 15,
           INT32 = 16, INT64 = 20, FLOAT = 22, DOUBLE = 23, ABSOLUTE_TIME = 24,
           RELATIVE_TIME = 25, STRING = 26, STRINGZ = 27, ETHER = 28, BYTES = 29,
           UINT_BYTES = 30, IPv4 = 33, IPv6 = 34, FRAMENUM = 37, GUID = 38 }

expert = {
  group = { CHECKSUM = 0x01000000, SEQUENCE = 0x02000000, RESPONSE_CODE = 0x03000000,
            REQUEST_CODE = 0x04000000, UNDECODED = 0x05000000, REASSEMBLE = 0x06000000,
            MALFORMED = 0x07000000, DEBUG = 0x08000000, PROTOCOL = 0x09000000,
            SECURITY = 0x0a000000, COMMENTS_GROUP = 0x0b000000, DECRYPTION = 0x0c000000,
            ASSUMPTION = 0x0d000000, DEPRECATED = 0x0e000000 },
  severity = { COMMENT = 0x00100000, CHAT = 0x00200000, NOTE = 0x00400000,
               WARN = 0x00600000, ERROR = 0x00800000 },
}

PI_CHECKSUM = expert.group.CHECKSUM
PI_SEQUENCE = expert.group.SEQUENCE
PI_RESPONSE_CODE = expert.group.RESPONSE_CODE
PI_REQUEST_CODE = expert.group.REQUEST_CODE
PI_UNDECODED = expert.group.UNDECODED
PI_REASSEMBLE = expert.group.REASSEMBLE
PI_MALFORMED = expert.group.MALFORMED
PI_DEBUG = expert.group.DEBUG
PI_PROTOCOL = expert.group.PROTOCOL
PI_SECURITY = expert.group.SECURITY
PI_COMMENTS_GROUP = expert.group.COMMENTS_GROUP
PI_COMMENT = expert.severity.COMMENT
PI_CHAT = expert.severity.CHAT
PI_NOTE = expert.severity.NOTE
PI_WARN = expert.severity.WARN
PI_ERROR = expert.severity.ERROR

ENC_BIG_ENDIAN = 0x00000000
ENC_LITTLE_ENDIAN = 0x80000000
ENC_NA = 0x00000000
ENC_ASCII = 0x00000000
ENC_UTF_8 = 0x00000002
ENC_UTF_16 = 0x00000004
ENC_UCS_2 = 0x00000006
ENC_ISO_8859_1 = 0x0000000A
ENC_STR_HEX = 0x02000000
ENC_TIME_SECS_NSECS = 0x00000000
ENC_TIME_TIMESPEC = 0x00000000

DESEGMENT_ONE_MORE_SEGMENT = 0x0fffffff

GUI_ENABLED = false

function gui_enabled() return false end
function get_version() return "4.0.17" end
function set_plugin_info(_) end
function typeof(obj)
  local mt = getmetatable(obj)
  return mt and mt.__name or type(obj)
end
function format_date(t)
  return os and os.date and os.date("!%b %d, %Y %H:%M:%S", math.floor(t)) or tostring(t)
end
function format_time(t) return string.format("%.9f", t) end
function register_postdissector(proto, _all_fields)
  error("moonwire: register_postdissector is not supported", 2)
end

-- "bit" (BitOp) and "bit32", sharing their helpers.
do
  local floor, select = math.floor, select
  local function u(x) return floor(x) & 0xffffffff end
  -- Folds op over u() of the arguments up to the first nil, as ipairs
  -- would, without building a table for them.
  local function fold(op, r, ...)
    for i = 1, select("#", ...) do
      local v = (select(i, ...))
      if v == nil then break end
      r = op(r, u(v))
    end
    return r
  end
  local function band(p, q) return p & q end
  local function bor(p, q) return p | q end
  local function bxor(p, q) return p ~ q end

  -- BitOp ("bit"): results are signed 32-bit numbers.
  do
    local function tobit(x)
      x = math.floor(x) & 0xffffffff
      if x >= 0x80000000 then x = x - 0x100000000 end
      return x
    end
    local b = {}
    b.tobit = tobit
    function b.bnot(x) return tobit(~u(x)) end
    function b.band(x, y, ...)
      if y == nil then return tobit(u(x)) end
      if ... == nil then return tobit(u(x) & u(y)) end
      return tobit(fold(band, u(x) & u(y), ...))
    end
    function b.bor(x, y, ...)
      if y == nil then return tobit(u(x)) end
      if ... == nil then return tobit(u(x) | u(y)) end
      return tobit(fold(bor, u(x) | u(y), ...))
    end
    function b.bxor(x, y, ...)
      if y == nil then return tobit(u(x)) end
      if ... == nil then return tobit(u(x) ~ u(y)) end
      return tobit(fold(bxor, u(x) ~ u(y), ...))
    end
    function b.lshift(x, n) return tobit(u(x) << (n & 31)) end
    function b.rshift(x, n) return tobit(u(x) >> (n & 31)) end
    function b.arshift(x, n) return tobit(tobit(x) >> (n & 31) | ((tobit(x) < 0 and (n & 31) > 0) and (0xffffffff << (32 - (n & 31))) or 0)) end
    function b.rol(x, n) n = n & 31 x = u(x) return tobit((x << n) | (x >> (32 - n))) end
    function b.ror(x, n) n = n & 31 x = u(x) return tobit((x >> n) | (x << (32 - n))) end
    function b.bswap(x) x = u(x)
      return tobit(((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >> 8) & 0xff00) | (x >> 24)) end
    function b.tohex(x, n)
      n = n or 8
      local upper = n < 0
      if upper then n = -n end
      local s = string.format(upper and "%08X" or "%08x", u(x))
      return s:sub(-n)
    end
    bit = b
    package = package or {}
    if package.loaded then package.loaded.bit = b end
  end

  -- Lua 5.2 "bit32": results are unsigned 32-bit numbers.
  do
    local b = {}
    function b.bnot(x) return u(~u(x)) end
    function b.band(x, y, ...)
      if x ~= nil and y ~= nil and ... == nil then return u(x) & u(y) end
      return fold(band, 0xffffffff, x, y, ...)
    end
    function b.bor(x, y, ...)
      if x ~= nil and y ~= nil and ... == nil then return u(x) | u(y) end
      return fold(bor, 0, x, y, ...)
    end
    function b.bxor(x, y, ...)
      if x ~= nil and y ~= nil and ... == nil then return u(x) ~ u(y) end
      return fold(bxor, 0, x, y, ...)
    end
    function b.btest(...) return b.band(...) ~= 0 end
    function b.lshift(x, n) if n >= 32 or n <= -32 then return 0 end
      if n < 0 then return u(x) >> -n end return u(u(x) << n) end
    function b.rshift(x, n) if n >= 32 or n <= -32 then return 0 end
      if n < 0 then return u(u(x) << -n) end return u(x) >> n end
    function b.arshift(x, n) x = u(x)
      if n <= 0 then return b.lshift(x, -n) end
      if x & 0x80000000 == 0 then return b.rshift(x, n) end
      if n >= 32 then return 0xffffffff end
      return u((x >> n) | (0xffffffff << (32 - n))) end
    function b.lrotate(x, n) n = n % 32 x = u(x) return u((x << n) | (x >> (32 - n))) end
    function b.rrotate(x, n) n = n % 32 x = u(x) return u((x >> n) | (x << (32 - n))) end
    function b.extract(x, f, w) w = w or 1 return (u(x) >> f) & ((1 << w) - 1) end
    function b.replace(x, v, f, w) w = w or 1 local m = ((1 << w) - 1) << f
      return u((u(x) & ~m) | ((u(v) << f) & m)) end
    bit32 = b
    if package and package.loaded then package.loaded.bit32 = b end
  end
end

-- Parts of Wireshark's API moonwire does not provide fail with a clear
-- message naming what was used.
do
  local function missing(name)
    return setmetatable({}, {
      __index = function(_, k) error("moonwire: " .. name .. "." .. tostring(k) .. " is not supported", 2) end,
      __call = function() error("moonwire: " .. name .. "() is not supported", 2) end,
    })
  end
  for _, n in ipairs({ "Listener", "Dumper", "PseudoHeader", "Field", "FieldInfo",
                       "FileHandler", "FrameInfo", "CaptureInfo", "Struct", "TextWindow",
                       "ProgDlg", "Dir", "GcryptCipher", "Int64", "UInt64", "NSTime",
                       "Pinfo", "Tvb", "TvbRange", "TreeItem", "wtap", "wtap_encaps" }) do
    if _G[n] == nil then _G[n] = missing(n) end
  end
  for _, n in ipairs({ "register_menu", "register_filehandler", "register_stat_cmd_arg",
                       "retap_packets", "reload_packets", "apply_filter", "set_filter",
                       "copy_to_clipboard", "open_capture_file", "browser_open_url",
                       "new_dialog", "register_packet_menu", "report_failure" }) do
    if _G[n] == nil then
      _G[n] = function() error("moonwire: " .. n .. "() is not supported", 2) end
    end
  end
end

-- Dissectors make many short-lived objects (Tvb ranges, tree items):
-- generational collection suits that better than incremental.
collectgarbage("generational")
