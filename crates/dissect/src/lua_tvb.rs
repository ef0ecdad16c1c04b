//! `Tvb`, `TvbRange`, `ByteArray` and `Address`: views on the packet's
//! bytes. A Tvb names a buffer of the current packet (frame, reassembled
//! data, created data) by index plus a window; objects kept past their
//! packet are expired instead of reading stale bytes.

use std::cell::RefCell;

use lua::mlua::{
    self, AnyUserData, Lua, MetaMethod, UserData, UserDataMethods, Value as LuaValue, Variadic,
};

use crate::ctx::{Addr, Ctx};
use crate::fields::hex_string;
use crate::plain::{CtxRef, Methods, plain_class};

/// Builds a Lua runtime error carrying the caller's `file:line: ` prefix,
/// as `luaL_error` does.
pub fn lerr(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    // Called through a C fast path (fast.rs), the caller is one level up.
    let level = match lua.inspect_stack(1, |d| crate::fast::is_fast(lua, &d.function())) {
        Some(true) => 2,
        _ => 1,
    };
    let pos = lua.inspect_stack(level, |d| {
        let src = d.source().short_src.map(|s| s.to_string());
        (src, d.current_line())
    });
    match pos {
        Some((Some(src), Some(line))) => mlua::Error::RuntimeError(format!("{src}:{line}: {msg}")),
        _ => mlua::Error::RuntimeError(msg.to_string()),
    }
}

/// The innermost message of an error raised while running Lua code.
pub fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A window on one of the packet's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TvbRef {
    /// Buffer index in `Ctx::bufs`.
    pub buf: u32,
    /// Start in the buffer.
    pub off: u32,
    /// Captured length.
    pub len: u32,
    /// Reported (on-the-wire) length.
    pub reported: u32,
    /// Packet generation the window belongs to.
    pub epoch: u32,
}

/// `Tvb`.
#[derive(Clone, Copy)]
pub struct Tvb {
    pub(crate) ctx: CtxRef,
    pub(crate) r: TvbRef,
}

plain_class!(Tvb, "Tvb");

/// `TvbRange`: `off`/`len` are relative to the Tvb.
#[derive(Clone, Copy)]
pub struct TvbRange {
    pub(crate) ctx: CtxRef,
    pub(crate) tvb: TvbRef,
    pub(crate) off: u32,
    pub(crate) len: u32,
}

plain_class!(TvbRange, "TvbRange");

fn check_gen(lua: &Lua, ctx: &RefCell<Ctx>, epoch: u32, what: &str) -> mlua::Result<()> {
    if ctx.borrow().epoch != epoch {
        return Err(lerr(lua, format!("expired {what}")));
    }
    Ok(())
}

/// Makes a range of a Tvb, with Wireshark's bounds rules (`len` -1 = rest).
pub fn make_range(
    lua: &Lua,
    ctx: CtxRef,
    tvb: TvbRef,
    offset: Option<i64>,
    len: Option<i64>,
) -> mlua::Result<TvbRange> {
    check_gen(lua, &ctx, tvb.epoch, "Tvb")?;
    let offset = offset.unwrap_or(0);
    let total = tvb.len as i64;
    if offset < 0 || offset > total {
        return Err(lerr(lua, "Range is out of bounds"));
    }
    let len = match len {
        None | Some(-1) => total - offset,
        Some(l) if l < -1 => return Err(lerr(lua, "Range is out of bounds")),
        Some(l) => l,
    };
    if offset + len > total {
        return Err(lerr(lua, "Range is out of bounds"));
    }
    Ok(TvbRange {
        ctx,
        tvb,
        off: offset as u32,
        len: len as u32,
    })
}

impl TvbRange {
    /// Runs `f` on the range's bytes.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let c = self.ctx.borrow();
        let start = (self.tvb.off + self.off) as usize;
        let buf = &c.bufs[self.tvb.buf as usize];
        let end = (start + self.len as usize).min(buf.len());
        f(&buf[start.min(end)..end])
    }

    fn checked(&self, lua: &Lua) -> mlua::Result<()> {
        check_gen(lua, &self.ctx, self.tvb.epoch, "TvbRange")
    }

    /// Copies the bytes out.
    pub fn bytes_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    fn uint_be(&self, lua: &Lua, max: u32, what: &str) -> mlua::Result<u64> {
        self.checked(lua)?;
        if self.len == 0 || self.len > max {
            return Err(lerr(
                lua,
                format!(
                    "TvbRange:{what}() does not handle {} byte integers",
                    self.len
                ),
            ));
        }
        Ok(self.with_bytes(|b| b.iter().fold(0u64, |a, x| (a << 8) | *x as u64)))
    }

    fn uint_le(&self, lua: &Lua, max: u32, what: &str) -> mlua::Result<u64> {
        self.checked(lua)?;
        if self.len == 0 || self.len > max {
            return Err(lerr(
                lua,
                format!(
                    "TvbRange:{what}() does not handle {} byte integers",
                    self.len
                ),
            ));
        }
        Ok(self.with_bytes(|b| b.iter().rev().fold(0u64, |a, x| (a << 8) | *x as u64)))
    }

    fn fixed<const N: usize>(&self, lua: &Lua, what: &str, le: bool) -> mlua::Result<[u8; N]> {
        self.checked(lua)?;
        if self.len as usize != N {
            return Err(lerr(
                lua,
                format!("TvbRange:{what}() needs {N} bytes, range has {}", self.len),
            ));
        }
        let mut a = [0u8; N];
        self.with_bytes(|b| a.copy_from_slice(b));
        if le {
            a.reverse();
        }
        Ok(a)
    }
}

fn sign_extend(v: u64, bytes: u32) -> i64 {
    let bits = bytes * 8;
    if bits >= 64 {
        v as i64
    } else {
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    }
}

fn lua_bytes(lua: &Lua, b: &[u8]) -> mlua::Result<LuaValue> {
    Ok(LuaValue::String(lua.create_string(b)?))
}

/// Decodes bytes as Wireshark's ASCII/UTF-8 string reading would (invalid
/// sequences become U+FFFD).
pub fn bytes_to_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn float_of(lua: &Lua, r: &TvbRange, le: bool) -> mlua::Result<f64> {
    r.checked(lua)?;
    match r.len {
        4 => {
            let a: [u8; 4] = r.fixed(lua, "float", false)?;
            Ok(if le {
                f32::from_le_bytes(a)
            } else {
                f32::from_be_bytes(a)
            } as f64)
        }
        8 => {
            let a: [u8; 8] = r.fixed(lua, "float", false)?;
            Ok(if le {
                f64::from_le_bytes(a)
            } else {
                f64::from_be_bytes(a)
            })
        }
        n => Err(lerr(
            lua,
            format!("TvbRange:float(): cannot decode {n} bytes"),
        )),
    }
}

impl TvbRange {
    /// The methods of `TvbRange`.
    pub(crate) fn add_methods(m: &mut Methods<'_, Self>) {
        m.add_method("uint", |lua, this, ()| {
            this.uint_be(lua, 4, "uint").map(|v| v as i64)
        });
        m.add_method("le_uint", |lua, this, ()| {
            this.uint_le(lua, 4, "le_uint").map(|v| v as i64)
        });
        m.add_method("int", |lua, this, ()| {
            this.uint_be(lua, 4, "int")
                .map(|v| sign_extend(v, this.len))
        });
        m.add_method("le_int", |lua, this, ()| {
            this.uint_le(lua, 4, "le_int")
                .map(|v| sign_extend(v, this.len))
        });
        m.add_method("uint64", |lua, this, ()| {
            this.uint_be(lua, 8, "uint64").map(|v| v as i64)
        });
        m.add_method("le_uint64", |lua, this, ()| {
            this.uint_le(lua, 8, "le_uint64").map(|v| v as i64)
        });
        m.add_method("int64", |lua, this, ()| {
            this.uint_be(lua, 8, "int64")
                .map(|v| sign_extend(v, this.len))
        });
        m.add_method("le_int64", |lua, this, ()| {
            this.uint_le(lua, 8, "le_int64")
                .map(|v| sign_extend(v, this.len))
        });
        m.add_method("float", |lua, this, ()| float_of(lua, this, false));
        m.add_method("le_float", |lua, this, ()| float_of(lua, this, true));
        m.add_method("ipv4", |lua, this, ()| {
            Ok(Address(Addr::V4(this.fixed(lua, "ipv4", false)?)))
        });
        m.add_method("le_ipv4", |lua, this, ()| {
            Ok(Address(Addr::V4(this.fixed(lua, "le_ipv4", true)?)))
        });
        m.add_method("ipv6", |lua, this, ()| {
            Ok(Address(Addr::V6(this.fixed(lua, "ipv6", false)?)))
        });
        m.add_method("ether", |lua, this, ()| {
            Ok(Address(Addr::Ether(this.fixed(lua, "ether", false)?)))
        });
        m.add_method("string", |lua, this, _enc: Option<u32>| {
            this.checked(lua)?;
            this.with_bytes(|b| lua_bytes(lua, b))
        });
        m.add_method("ustring", |lua, this, ()| {
            this.checked(lua)?;
            this.with_bytes(|b| lua_bytes(lua, b))
        });
        m.add_method("stringz", |lua, this, _enc: Option<u32>| {
            this.checked(lua)?;
            this.with_bytes(|b| {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                lua_bytes(lua, &b[..end])
            })
        });
        m.add_method("ustringz", |lua, this, ()| {
            this.checked(lua)?;
            this.with_bytes(|b| {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                lua_bytes(lua, &b[..end])
            })
        });
        m.add_method("strsize", |lua, this, _enc: Option<u32>| {
            this.checked(lua)?;
            // Length of the NUL-terminated string at the range start,
            // looking to the end of the Tvb, NUL included.
            let c = this.ctx.borrow();
            let buf = &c.bufs[this.tvb.buf as usize];
            let start = (this.tvb.off + this.off) as usize;
            let end = ((this.tvb.off + this.tvb.len) as usize).min(buf.len());
            match buf[start.min(end)..end].iter().position(|&x| x == 0) {
                Some(p) => Ok((p + 1) as i64),
                None => Err(lerr(lua, "Range is out of bounds")),
            }
        });
        m.add_method("bytes", |lua, this, _enc: Option<u32>| {
            this.checked(lua)?;
            Ok(ByteArray(this.bytes_vec()))
        });
        m.add_method(
            "raw",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                this.checked(lua)?;
                let off = off.unwrap_or(0).max(0) as usize;
                this.with_bytes(|b| {
                    let off = off.min(b.len());
                    let len = match len {
                        Some(l) if l >= 0 => (l as usize).min(b.len() - off),
                        _ => b.len() - off,
                    };
                    lua_bytes(lua, &b[off..off + len])
                })
            },
        );
        m.add_method(
            "bitfield",
            |lua, this, (pos, len): (Option<u32>, Option<u32>)| {
                this.checked(lua)?;
                let pos = pos.unwrap_or(0);
                let len = len.unwrap_or(1);
                if len == 0 || len > 64 || (pos + len) > this.len * 8 {
                    return Err(lerr(lua, "Range is out of bounds"));
                }
                Ok(this.with_bytes(|b| {
                    let mut v: u64 = 0;
                    for i in pos..pos + len {
                        let bit = (b[(i / 8) as usize] >> (7 - (i % 8))) & 1;
                        v = (v << 1) | bit as u64;
                    }
                    v as i64
                }))
            },
        );
        m.add_method("tvb", |lua, this, ()| {
            this.checked(lua)?;
            Ok(Tvb {
                ctx: this.ctx,
                r: TvbRef {
                    buf: this.tvb.buf,
                    off: this.tvb.off + this.off,
                    len: this.len,
                    reported: this.len,
                    epoch: this.tvb.epoch,
                },
            })
        });
        m.add_method(
            "range",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                this.checked(lua)?;
                let sub = TvbRef {
                    buf: this.tvb.buf,
                    off: this.tvb.off + this.off,
                    len: this.len,
                    reported: this.len,
                    epoch: this.tvb.epoch,
                };
                let r = make_range(lua, this.ctx, sub, off, len)?;
                Ok(TvbRange {
                    ctx: r.ctx,
                    tvb: this.tvb,
                    off: this.off + r.off,
                    len: r.len,
                })
            },
        );
        m.add_method("len", |_, this, ()| Ok(this.len));
        m.add_method("offset", |_, this, ()| Ok(this.off));
        m.add_method("le_nstime", |lua, this, ()| nstime(lua, this, true));
        m.add_method("nstime", |lua, this, _enc: Option<u32>| {
            nstime(lua, this, false)
        });
        m.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            this.checked(lua)?;
            Ok(this.with_bytes(|b| hex_string(b, None)))
        });
        m.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.len));
        m.add_meta_method(
            MetaMethod::Call,
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                // Not in Wireshark's API, but some scripts rely on range(o, l).
                this.checked(lua)?;
                let sub = TvbRef {
                    buf: this.tvb.buf,
                    off: this.tvb.off + this.off,
                    len: this.len,
                    reported: this.len,
                    epoch: this.tvb.epoch,
                };
                let r = make_range(lua, this.ctx, sub, off, len)?;
                Ok(TvbRange {
                    ctx: r.ctx,
                    tvb: this.tvb,
                    off: this.off + r.off,
                    len: r.len,
                })
            },
        );
    }
}

fn nstime(lua: &Lua, r: &TvbRange, le: bool) -> mlua::Result<f64> {
    r.checked(lua)?;
    match r.len {
        4 => Ok(r.uint_any(le) as f64),
        8 => {
            let (s, n) = r.with_bytes(|b| {
                let rd = |x: &[u8]| {
                    if le {
                        u32::from_le_bytes([x[0], x[1], x[2], x[3]])
                    } else {
                        u32::from_be_bytes([x[0], x[1], x[2], x[3]])
                    }
                };
                (rd(&b[0..4]), rd(&b[4..8]))
            });
            Ok(s as f64 + n as f64 / 1e9)
        }
        n => Err(lerr(
            lua,
            format!("TvbRange:nstime(): cannot decode {n} bytes"),
        )),
    }
}

impl TvbRange {
    fn uint_any(&self, le: bool) -> u64 {
        self.with_bytes(|b| {
            if le {
                b.iter().rev().fold(0u64, |a, x| (a << 8) | *x as u64)
            } else {
                b.iter().fold(0u64, |a, x| (a << 8) | *x as u64)
            }
        })
    }
}

impl Tvb {
    /// The methods of `Tvb`.
    pub(crate) fn add_methods(m: &mut Methods<'_, Self>) {
        m.add_method("len", |lua, this, ()| {
            check_gen(lua, &this.ctx, this.r.epoch, "Tvb")?;
            Ok(this.r.len)
        });
        m.add_method("captured_len", |_, this, ()| Ok(this.r.len));
        m.add_method("reported_len", |_, this, ()| Ok(this.r.reported));
        m.add_method("reported_length_remaining", |_, this, off: Option<i64>| {
            let off = off.unwrap_or(0);
            Ok(if off < 0 || off > this.r.reported as i64 {
                -1
            } else {
                this.r.reported as i64 - off
            })
        });
        m.add_method("offset", |_, _this, ()| Ok(0));
        m.add_method(
            "range",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                make_range(lua, this.ctx, this.r, off, len)
            },
        );
        m.add_method(
            "bytes",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                let r = make_range(lua, this.ctx, this.r, off, len)?;
                Ok(ByteArray(r.bytes_vec()))
            },
        );
        m.add_method(
            "raw",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                let r = make_range(lua, this.ctx, this.r, off, len)?;
                r.with_bytes(|b| lua_bytes(lua, b))
            },
        );
        m.add_meta_method(
            MetaMethod::Call,
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                make_range(lua, this.ctx, this.r, off, len)
            },
        );
        m.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.r.len));
        m.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            let r = make_range(lua, this.ctx, this.r, None, None)?;
            Ok(format!(
                "TVB({}) : {}",
                this.r.len,
                r.with_bytes(|b| hex_string(b, None))
            ))
        });
    }
}

/// `ByteArray`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteArray(pub Vec<u8>);

/// Parses hex digits, skipping separators (spaces, `:`, `-`, `.` or `sep`).
pub fn parse_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter_map(|c| (c as char).to_digit(16).map(|d| d as u8))
        .collect();
    digits
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0] << 4) | c[1])
        .collect()
}

impl UserData for ByteArray {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("len", |_, this, ()| Ok(this.0.len()));
        m.add_method("get_index", |lua, this, i: i64| {
            this.0
                .get(i as usize)
                .copied()
                .filter(|_| i >= 0)
                .ok_or_else(|| lerr(lua, "ByteArray:get_index(): index out of range"))
        });
        m.add_method_mut("set_index", |lua, this, (i, v): (i64, u8)| {
            match this.0.get_mut(i as usize).filter(|_| i >= 0) {
                Some(b) => {
                    *b = v;
                    Ok(())
                }
                None => Err(lerr(lua, "ByteArray:set_index(): index out of range")),
            }
        });
        m.add_method_mut("set_size", |_, this, n: usize| {
            this.0.resize(n, 0);
            Ok(())
        });
        m.add_method("subset", |lua, this, (off, len): (i64, i64)| {
            if off < 0 || len < 0 || (off + len) as usize > this.0.len() {
                return Err(lerr(lua, "ByteArray:subset(): out of bounds"));
            }
            Ok(ByteArray(
                this.0[off as usize..(off + len) as usize].to_vec(),
            ))
        });
        m.add_method_mut("append", |_, this, other: AnyUserData| {
            let o = other.borrow::<ByteArray>()?.0.clone();
            this.0.extend_from_slice(&o);
            Ok(())
        });
        m.add_method_mut("prepend", |_, this, other: AnyUserData| {
            let mut o = other.borrow::<ByteArray>()?.0.clone();
            o.extend_from_slice(&this.0);
            this.0 = o;
            Ok(())
        });
        m.add_method(
            "tohex",
            |_, this, (lower, sep): (Option<bool>, Option<String>)| {
                let sep = sep.and_then(|s| s.chars().next());
                let s = hex_string(&this.0, sep);
                Ok(if lower.unwrap_or(false) {
                    s
                } else {
                    s.to_uppercase()
                })
            },
        );
        m.add_method(
            "raw",
            |lua, this, (off, len): (Option<usize>, Option<usize>)| {
                let off = off.unwrap_or(0).min(this.0.len());
                let len = len.unwrap_or(this.0.len() - off).min(this.0.len() - off);
                lua.create_string(&this.0[off..off + len])
            },
        );
        m.add_method("tvb", |lua, this, _name: Option<String>| {
            let ctx = crate::lua_api::shared(lua)?;
            let (buf, epoch) = {
                let mut c = ctx.borrow_mut();
                (c.push_buf(&this.0), c.epoch)
            };
            let len = this.0.len() as u32;
            Ok(Tvb {
                ctx: CtxRef::of(&ctx),
                r: TvbRef {
                    buf,
                    off: 0,
                    len,
                    reported: len,
                    epoch,
                },
            })
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(hex_string(&this.0, None).to_uppercase())
        });
        m.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.len()));
        m.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<ByteArray>()
                .map(|o| o.0 == this.0)
                .unwrap_or(false))
        });
        m.add_meta_function(
            MetaMethod::Concat,
            |_, (a, b): (AnyUserData, AnyUserData)| {
                let mut v = a.borrow::<ByteArray>()?.0.clone();
                v.extend_from_slice(&b.borrow::<ByteArray>()?.0);
                Ok(ByteArray(v))
            },
        );
    }
}

/// `ByteArray.new(hex [, separator])` or `ByteArray.new(raw, true)`.
pub fn bytearray_new(_lua: &Lua, args: Variadic<LuaValue>) -> mlua::Result<ByteArray> {
    let s = match args.first() {
        Some(LuaValue::String(s)) => s.as_bytes().to_vec(),
        _ => return Ok(ByteArray::default()),
    };
    if let Some(LuaValue::Boolean(true)) = args.get(1) {
        return Ok(ByteArray(s));
    }
    Ok(ByteArray(parse_hex(&String::from_utf8_lossy(&s))))
}

/// `Address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address(pub Addr);

impl UserData for Address {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        m.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<Address>()
                .map(|o| o.0 == this.0)
                .unwrap_or(false))
        });
        m.add_meta_method(MetaMethod::Lt, |_, this, other: AnyUserData| {
            Ok(this.0 < other.borrow::<Address>()?.0)
        });
        m.add_meta_method(MetaMethod::Le, |_, this, other: AnyUserData| {
            Ok(this.0 <= other.borrow::<Address>()?.0)
        });
    }
}

/// Parses an address string for `Address.ip/ipv4/ipv6/ether`.
pub fn parse_addr(s: &str) -> Option<Addr> {
    if let Ok(v4) = s.parse::<std::net::Ipv4Addr>() {
        return Some(Addr::V4(v4.octets()));
    }
    if let Ok(v6) = s.parse::<std::net::Ipv6Addr>() {
        return Some(Addr::V6(v6.octets()));
    }
    let b = parse_hex(s);
    if b.len() == 6 && s.len() >= 12 {
        let mut a = [0u8; 6];
        a.copy_from_slice(&b);
        return Some(Addr::Ether(a));
    }
    None
}
