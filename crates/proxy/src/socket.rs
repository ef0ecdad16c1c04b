//! `Socket` (from `core.tcp()`): a LuaSocket-compatible TCP client whose
//! calls suspend the calling script instead of blocking the thread, with
//! `connect_ssl` over rustls (ring provider).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use lua::mlua::{self, Lua, UserData, UserDataMethods, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

#[derive(Default)]
struct SockState {
    stream: Option<Box<dyn Stream>>,
    rbuf: Vec<u8>,
    timeout: Option<Duration>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    busy: bool,
}

/// The `Socket` class.
#[derive(Clone, Default)]
pub struct LuaSocket {
    st: Rc<RefCell<SockState>>,
}

impl LuaSocket {
    /// A new unconnected socket.
    pub fn new() -> LuaSocket {
        LuaSocket::default()
    }
}

/// HAProxy's Lua sockets do not verify the server certificate (`verify
/// none`); moonwire keeps that behaviour so scripts connect to the same
/// servers. The handshake signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn check_runtime(lua: &Lua, what: &str) -> mlua::Result<()> {
    if let Some(c) = lua.app_data_ref::<Rc<crate::lua_api::WorkerCore>>() {
        c.check_socket_ctx(what)?;
    }
    Ok(())
}

type Ret = (Value, Value, Value);

fn nil_err(lua: &Lua, msg: &str) -> mlua::Result<Ret> {
    Ok((
        Value::Nil,
        Value::String(lua.create_string(msg)?),
        Value::Nil,
    ))
}

async fn connect(
    lua: Lua,
    sock: LuaSocket,
    host: String,
    port: Option<i64>,
    tls: bool,
) -> mlua::Result<Ret> {
    check_runtime(
        &lua,
        if tls {
            "Socket.connect_ssl"
        } else {
            "Socket.connect"
        },
    )?;
    let (host, port) = match port {
        Some(p) => (host, p),
        None => match host.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
            None => (host, 0),
        },
    };
    if !(1..65536).contains(&port) {
        return nil_err(&lua, "invalid port");
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let timeout = sock.st.borrow().timeout;
    let fut = tokio::net::TcpStream::connect((host.as_str(), port as u16));
    let tcp = match timeout {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => return nil_err(&lua, "timeout"),
        },
        None => fut.await,
    };
    let tcp = match tcp {
        Ok(s) => s,
        Err(e) => return nil_err(&lua, &format!("connection refused: {e}")),
    };
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok();
    let local = tcp.local_addr().ok();
    let stream: Box<dyn Stream> = if tls {
        let cfg = match tls_config() {
            Ok(c) => c,
            Err(e) => return nil_err(&lua, &e),
        };
        let name = match rustls::pki_types::ServerName::try_from(host.clone()) {
            Ok(n) => n,
            Err(_) => return nil_err(&lua, "invalid server name"),
        };
        let conn = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp);
        let r = match timeout {
            Some(t) => match tokio::time::timeout(t, conn).await {
                Ok(r) => r,
                Err(_) => return nil_err(&lua, "timeout"),
            },
            None => conn.await,
        };
        match r {
            Ok(s) => Box::new(s),
            Err(e) => return nil_err(&lua, &format!("TLS handshake failed: {e}")),
        }
    } else {
        Box::new(tcp)
    };
    let mut st = sock.st.borrow_mut();
    st.stream = Some(stream);
    st.rbuf.clear();
    st.peer = peer;
    st.local = local;
    Ok((Value::Integer(1), Value::Nil, Value::Nil))
}

fn take_stream(sock: &LuaSocket) -> Result<(Box<dyn Stream>, Option<Duration>), &'static str> {
    let mut st = sock.st.borrow_mut();
    if st.busy {
        return Err("socket busy");
    }
    let s = st.stream.take().ok_or("closed")?;
    st.busy = true;
    Ok((s, st.timeout))
}

fn put_stream(sock: &LuaSocket, s: Option<Box<dyn Stream>>) {
    let mut st = sock.st.borrow_mut();
    st.busy = false;
    st.stream = s;
}

enum Pattern {
    All,
    Line,
    Bytes(usize),
}

async fn receive(
    lua: Lua,
    sock: LuaSocket,
    pattern: Value,
    prefix: Option<mlua::LuaString>,
) -> mlua::Result<Ret> {
    check_runtime(&lua, "Socket.receive")?;
    let pat = match &pattern {
        Value::Nil => Pattern::Line,
        Value::Integer(n) => Pattern::Bytes((*n).max(0) as usize),
        Value::Number(n) => Pattern::Bytes(n.max(0.0) as usize),
        Value::String(s) => match s.to_string_lossy().as_str() {
            "*a" | "a" => Pattern::All,
            "*l" | "l" => Pattern::Line,
            other => match other.parse::<usize>() {
                Ok(n) => Pattern::Bytes(n),
                Err(_) => {
                    return Err(mlua::Error::runtime(format!(
                        "Socket.receive: invalid pattern '{other}'"
                    )));
                }
            },
        },
        _ => return Err(mlua::Error::runtime("Socket.receive: invalid pattern")),
    };
    let mut out: Vec<u8> = prefix.map(|p| p.as_bytes().to_vec()).unwrap_or_default();
    let (mut stream, timeout) = match take_stream(&sock) {
        Ok(s) => s,
        Err(e) => return nil_err(&lua, e),
    };
    let mut rbuf = std::mem::take(&mut sock.st.borrow_mut().rbuf);
    let mut err: Option<&'static str> = None;
    loop {
        let done = match pat {
            Pattern::Line => rbuf.iter().position(|b| *b == b'\n').map(|i| {
                let mut line: Vec<u8> = rbuf.drain(..=i).collect();
                line.pop();
                line.retain(|b| *b != b'\r');
                line
            }),
            Pattern::Bytes(n) => (rbuf.len() >= n).then(|| rbuf.drain(..n).collect()),
            Pattern::All => None,
        };
        if let Some(d) = done {
            out.extend_from_slice(&d);
            break;
        }
        let mut tmp = vec![0u8; 16384];
        let r = match timeout {
            Some(t) => match tokio::time::timeout(t, stream.read(&mut tmp)).await {
                Ok(r) => r,
                Err(_) => {
                    err = Some("timeout");
                    break;
                }
            },
            None => stream.read(&mut tmp).await,
        };
        match r {
            Ok(0) => {
                if matches!(pat, Pattern::All) {
                    out.append(&mut rbuf);
                } else {
                    err = Some("closed");
                }
                break;
            }
            Ok(n) => rbuf.extend_from_slice(&tmp[..n]),
            Err(_) => {
                err = Some("closed");
                break;
            }
        }
    }
    let keep = err != Some("closed");
    {
        let mut st = sock.st.borrow_mut();
        st.rbuf = rbuf;
    }
    put_stream(&sock, if keep { Some(stream) } else { None });
    match err {
        None => Ok((
            Value::String(lua.create_string(&out)?),
            Value::Nil,
            Value::Nil,
        )),
        Some(e) => {
            let partial = {
                let mut st = sock.st.borrow_mut();
                out.append(&mut st.rbuf);
                out
            };
            Ok((
                Value::Nil,
                Value::String(lua.create_string(e)?),
                Value::String(lua.create_string(&partial)?),
            ))
        }
    }
}

async fn send(
    lua: Lua,
    sock: LuaSocket,
    data: mlua::LuaString,
    i: Option<i64>,
    j: Option<i64>,
) -> mlua::Result<Ret> {
    check_runtime(&lua, "Socket.send")?;
    let bytes = data.as_bytes().to_vec();
    let len = bytes.len() as i64;
    // string.sub-style indices.
    let norm = |v: i64| if v < 0 { (len + v + 1).max(1) } else { v };
    let start = norm(i.unwrap_or(1)).max(1);
    let end = norm(j.unwrap_or(len)).min(len);
    if start > end {
        return Ok((Value::Integer(end.max(0)), Value::Nil, Value::Nil));
    }
    let slice = &bytes[(start - 1) as usize..end as usize];
    let (mut stream, timeout) = match take_stream(&sock) {
        Ok(s) => s,
        Err(e) => {
            return Ok((
                Value::Nil,
                Value::String(lua.create_string(e)?),
                Value::Integer(start - 1),
            ));
        }
    };
    let r = async {
        stream.write_all(slice).await?;
        stream.flush().await
    };
    let r = match timeout {
        Some(t) => tokio::time::timeout(t, r).await.map_err(|_| "timeout"),
        None => Ok(r.await),
    };
    match r {
        Ok(Ok(())) => {
            put_stream(&sock, Some(stream));
            Ok((Value::Integer(end), Value::Nil, Value::Nil))
        }
        Ok(Err(_)) => {
            put_stream(&sock, None);
            Ok((
                Value::Nil,
                Value::String(lua.create_string("closed")?),
                Value::Integer(start - 1),
            ))
        }
        Err(e) => {
            put_stream(&sock, Some(stream));
            Ok((
                Value::Nil,
                Value::String(lua.create_string(e)?),
                Value::Integer(start - 1),
            ))
        }
    }
}

impl UserData for LuaSocket {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method(
            "connect",
            |lua, this, (host, port): (String, Option<i64>)| {
                connect(lua, this.clone(), host, port, false)
            },
        );
        methods.add_async_method(
            "connect_ssl",
            |lua, this, (host, port): (String, Option<i64>)| {
                connect(lua, this.clone(), host, port, true)
            },
        );
        methods.add_async_method(
            "receive",
            |lua, this, (pattern, prefix): (Value, Option<mlua::LuaString>)| {
                receive(lua, this.clone(), pattern, prefix)
            },
        );
        methods.add_async_method(
            "send",
            |lua, this, (data, i, j): (mlua::LuaString, Option<i64>, Option<i64>)| {
                send(lua, this.clone(), data, i, j)
            },
        );
        methods.add_method(
            "settimeout",
            |_, this, (v, _mode): (f64, Option<String>)| {
                this.st.borrow_mut().timeout = if v < 0.0 {
                    None
                } else {
                    Some(Duration::from_secs_f64(v))
                };
                Ok(1)
            },
        );
        methods.add_method("setoption", |_, _, _: mlua::MultiValue| Ok(true));
        methods.add_method("getpeername", |_, this, ()| {
            Ok(match this.st.borrow().peer {
                Some(a) => (Some(a.ip().to_string()), Some(a.port() as i64)),
                None => (None, None),
            })
        });
        methods.add_method("getsockname", |_, this, ()| {
            Ok(match this.st.borrow().local {
                Some(a) => (Some(a.ip().to_string()), Some(a.port() as i64)),
                None => (None, None),
            })
        });
        methods.add_method("close", |_, this, ()| {
            let mut st = this.st.borrow_mut();
            st.stream = None;
            st.rbuf.clear();
            Ok(1)
        });
    }
}
